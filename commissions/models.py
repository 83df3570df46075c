"""Commission plans, the append-only ledger, FX rates, periods and statements (SPEC §5)."""

from django.conf import settings
from django.db import models
from django.db.models import Q

from revvvs.money import MoneyField

RATE_DIGITS = {"max_digits": 7, "decimal_places": 6}  # a fraction: 0.250000 = 25 %


class TierBasis(models.TextChoices):
    NGR = "ngr", "monthly NGR"
    CPA_COUNT = "cpa_count", "monthly qualified CPA count"


class TierMode(models.TextChoices):
    TIERED = "tiered", "tiered (whole month at the reached rate)"
    LADDER = "ladder", "ladder (each band at its own rate)"


class CommissionPlan(models.Model):
    """A deal: a CPA part, a RevShare part, or both (hybrid)."""

    operator = models.ForeignKey("revvvs.Operator", on_delete=models.PROTECT, related_name="+")
    name = models.CharField(max_length=200)
    currency = models.CharField(max_length=3, default="EUR")
    # CPA part (no cpa_amount: no CPA)
    cpa_amount = MoneyField(null=True, blank=True)
    min_first_deposit = MoneyField(default=0)
    min_total_deposits = MoneyField(
        default=0, help_text="Deposit baseline within qualification_days."
    )
    qualification_days = models.PositiveSmallIntegerField(default=30)
    cpa_countries = models.CharField(
        max_length=1000, blank=True, help_text="ISO alpha-2 codes, comma separated; empty = all."
    )
    clawback_days = models.PositiveSmallIntegerField(default=90)
    # RevShare part (no revshare_rate: no RevShare)
    revshare_rate = models.DecimalField(null=True, blank=True, **RATE_DIGITS)
    admin_fee_percent = models.DecimalField(max_digits=5, decimal_places=2, default=0)
    tier_basis = models.CharField(max_length=10, choices=TierBasis.choices, default=TierBasis.NGR)
    tier_mode = models.CharField(max_length=10, choices=TierMode.choices, default=TierMode.TIERED)
    negative_carryover = models.BooleanField(default=True)
    revshare_offsets_cpa = models.BooleanField(default=False)
    sub_affiliate_rate = models.DecimalField(default=0, **RATE_DIGITS)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["operator", "name"], name="plan_unique_name_per_operator"
            )
        ]

    def __str__(self):
        return self.name


class PlanTier(models.Model):
    plan = models.ForeignKey(CommissionPlan, on_delete=models.CASCADE, related_name="tiers")
    threshold = MoneyField(help_text="Monthly NGR (plan currency) or CPA count reaching this tier.")
    rate = models.DecimalField(**RATE_DIGITS)

    class Meta:
        ordering = ["plan", "threshold"]
        constraints = [
            # Deferred: the plan admin saves its tiers one by one, and two tiers swapping their
            # thresholds collide midway; the formset has already refused real duplicates.
            models.UniqueConstraint(
                fields=["plan", "threshold"],
                name="tier_unique_threshold",
                deferrable=models.Deferrable.DEFERRED,
            ),
            models.CheckConstraint(
                condition=models.Q(threshold__gte=0), name="tier_threshold_not_negative"
            ),
        ]

    def __str__(self):
        return f"≥ {self.threshold}: {self.rate}"


class PlanAssignment(models.Model):
    """An affiliate's plan, for all brands or one, from valid_from to valid_to (inclusive)."""

    affiliate = models.ForeignKey(
        "attribution.Affiliate", on_delete=models.PROTECT, related_name="plan_assignments"
    )
    plan = models.ForeignKey(CommissionPlan, on_delete=models.PROTECT, related_name="assignments")
    brand = models.ForeignKey(
        "revvvs.Brand", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    valid_from = models.DateField()
    valid_to = models.DateField(null=True, blank=True)

    class Meta:
        ordering = ["affiliate", "-valid_from"]

    def __str__(self):
        return f"{self.affiliate} → {self.plan}"


class LedgerKind(models.TextChoices):
    CPA = "cpa"
    CPA_REVERSAL = "cpa_reversal"
    REVSHARE = "revshare"
    REVSHARE_TIER_ADJUSTMENT = "revshare_tier_adjustment"
    SUB_AFFILIATE = "sub_affiliate"
    MANUAL_ADJUSTMENT = "manual_adjustment"
    REATTRIBUTION = "reattribution"


class LedgerEntry(models.Model):
    """One commission entry. Never updated or deleted: corrections are new entries."""

    # No single-column indexes on operator, affiliate and player: the composite indexes
    # below lead with them, and every index is paid on each booking's insert.
    operator = models.ForeignKey(
        "revvvs.Operator", on_delete=models.PROTECT, related_name="+", db_index=False
    )
    affiliate = models.ForeignKey(
        "attribution.Affiliate", on_delete=models.PROTECT, related_name="ledger", db_index=False
    )
    kind = models.CharField(max_length=30, choices=LedgerKind.choices)
    amount = MoneyField()
    currency = models.CharField(max_length=3)
    period = models.DateField(help_text="First day of the month the entry books into.")
    player = models.ForeignKey(
        "attribution.Player",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )
    brand = models.ForeignKey(
        "revvvs.Brand", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    source_event = models.ForeignKey(
        "events.Event",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="ledger_entries",
    )
    activity_date = models.DateField(
        help_text="The date of what was earned (the event's own date)."
    )
    plan = models.ForeignKey(
        CommissionPlan, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    original_amount = MoneyField(null=True, blank=True, help_text="Before FX conversion.")
    original_currency = models.CharField(max_length=3, blank=True)
    fx_rate = models.DecimalField(max_digits=20, decimal_places=10, null=True, blank=True)
    ngr_amount = MoneyField(
        null=True,
        blank=True,
        help_text="RevShare entries: the change of the player's month-to-date NGR (before the "
        "admin fee, plan currency) this entry books; the NGR tier basis.",
    )
    reverses = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="reversed_by"
    )
    reattributed_kind = models.CharField(
        max_length=30,
        choices=LedgerKind.choices,
        blank=True,
        help_text="For a reattribution entry: the kind of commission it moves (cpa, revshare…).",
    )
    memo = models.TextField(blank=True)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "ledger entries"
        constraints = [
            # CPA at most once per player, ever.
            models.UniqueConstraint(
                fields=["player"], condition=Q(kind="cpa"), name="ledger_cpa_once_per_player"
            ),
            # A CPA is clawed back at most once (there is at most one CPA to claw back).
            models.UniqueConstraint(
                fields=["player"],
                condition=Q(kind="cpa_reversal"),
                name="ledger_cpa_reversal_once_per_player",
            ),
        ]
        indexes = [
            models.Index(fields=["affiliate", "period"], name="ledger_affiliate_period"),
            models.Index(fields=["operator", "period", "kind"], name="ledger_operator_period_kind"),
            models.Index(fields=["player", "kind"], name="ledger_player_kind"),
        ]

    def __str__(self):
        return f"{self.kind} {self.amount} {self.currency}"


class PlayerMonthNgr(models.Model):
    """RevShare state per player and month: the latest NGR total and what is booked for it."""

    # (player, month) is unique: that index serves every lookup by player.
    player = models.ForeignKey(
        "attribution.Player", on_delete=models.PROTECT, related_name="+", db_index=False
    )
    month = models.DateField()
    latest_event = models.ForeignKey("events.Event", on_delete=models.PROTECT, related_name="+")
    latest_event_time = models.DateTimeField()
    # Tie-break between updates with the same event_time: the larger idempotency key wins,
    # so the outcome does not depend on the order the updates arrive in.
    latest_idempotency_key = models.CharField(max_length=255, default="")
    ngr_total = MoneyField(help_text="In the event's currency.")
    currency = models.CharField(max_length=3)
    ngr_total_plan = MoneyField(null=True, blank=True, help_text="In the plan currency.")
    revshare_booked = MoneyField(default=0, help_text="In revshare_currency.")
    revshare_currency = models.CharField(max_length=3, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["player", "month"], name="ngr_one_row_per_player_month")
        ]

    def __str__(self):
        return f"{self.player_id} {self.month:%Y-%m}: {self.ngr_total} {self.currency}"


class FxRate(models.Model):
    """ECB reference rate: 1 EUR = `rate` units of `currency` on `date`."""

    currency = models.CharField(max_length=3)
    date = models.DateField()
    rate = models.DecimalField(max_digits=20, decimal_places=10)
    source = models.CharField(max_length=50, default="ecb")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-date", "currency"]
        verbose_name = "FX rate"
        constraints = [
            models.UniqueConstraint(fields=["currency", "date"], name="fx_one_rate_per_day"),
            models.CheckConstraint(condition=Q(rate__gt=0), name="fx_rate_positive"),
        ]

    def __str__(self):
        return f"{self.date} EUR/{self.currency} {self.rate}"


class PendingFx(models.Model):
    """An accepted event whose commission effect waits for an FX rate."""

    event = models.OneToOneField(
        "events.Event", on_delete=models.PROTECT, related_name="pending_fx"
    )
    operator = models.ForeignKey("revvvs.Operator", on_delete=models.PROTECT, related_name="+")
    from_currency = models.CharField(max_length=3)
    to_currency = models.CharField(max_length=3)
    rate_date = models.DateField()
    created_at = models.DateTimeField(auto_now_add=True)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at"]
        verbose_name = "pending-FX event"
        indexes = [
            models.Index(
                fields=["operator", "created_at"],
                condition=Q(resolved_at__isnull=True),
                name="pendingfx_open",
            )
        ]

    def __str__(self):
        return f"{self.event} needs {self.from_currency}→{self.to_currency} on {self.rate_date}"


class PeriodStatus(models.TextChoices):
    OPEN = "open"
    CLOSED = "closed"


class Period(models.Model):
    """A calendar month (UTC) of one operator's programme."""

    operator = models.ForeignKey("revvvs.Operator", on_delete=models.PROTECT, related_name="+")
    month = models.DateField(help_text="First day of the month.")
    status = models.CharField(
        max_length=10, choices=PeriodStatus.choices, default=PeriodStatus.OPEN
    )
    closed_at = models.DateTimeField(null=True, blank=True)
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["-month"]
        constraints = [
            models.UniqueConstraint(
                fields=["operator", "month"], name="period_one_per_operator_month"
            )
        ]

    def __str__(self):
        return self.month.strftime("%Y-%m")


class StatementStatus(models.TextChoices):
    DRAFT = "draft"
    APPROVED = "approved"
    PAID = "paid"


class Statement(models.Model):
    """An affiliate's closed account for one period."""

    operator = models.ForeignKey("revvvs.Operator", on_delete=models.PROTECT, related_name="+")
    period = models.ForeignKey(Period, on_delete=models.PROTECT, related_name="statements")
    affiliate = models.ForeignKey(
        "attribution.Affiliate", on_delete=models.PROTECT, related_name="statements"
    )
    currency = models.CharField(max_length=3)
    cpa = MoneyField(default=0)
    cpa_reversal = MoneyField(default=0)
    revshare = MoneyField(default=0)
    revshare_tier_adjustment = MoneyField(default=0)
    sub_affiliate = MoneyField(default=0)
    manual_adjustment = MoneyField(default=0)
    reattribution = MoneyField(default=0)
    carryover_in = MoneyField(default=0, help_text="Negative balance brought from the last period.")
    rollover_in = MoneyField(default=0, help_text="Unpaid amount below minimum payout brought in.")
    carryover_out = MoneyField(default=0)
    revshare_written_off = MoneyField(
        default=0,
        help_text="Negative RevShare reset to zero at the close (the plan carries no negative "
        "balance): added back, so the statement adds up.",
    )
    rollover_out = MoneyField(default=0)
    net_payable = MoneyField(default=0)
    status = models.CharField(
        max_length=10, choices=StatementStatus.choices, default=StatementStatus.DRAFT
    )
    created_at = models.DateTimeField(auto_now_add=True)
    approved_at = models.DateTimeField(null=True, blank=True)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    paid_on = models.DateField(null=True, blank=True)
    payment_method = models.CharField(max_length=100, blank=True)
    payment_reference = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-period__month", "affiliate"]
        constraints = [
            models.UniqueConstraint(
                fields=["period", "affiliate"], name="statement_one_per_affiliate_period"
            )
        ]

    def __str__(self):
        return f"{self.affiliate} {self.period}"
