import uuid

from django.conf import settings
from django.db import models
from django.db.models.functions import Lower

from revvvs.money import MoneyField


class AffiliateStatus(models.TextChoices):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    SUSPENDED = "suspended"


class Affiliate(models.Model):
    """A partner in one operator's programme; logs in to the portal with `user`."""

    operator = models.ForeignKey(
        "revvvs.Operator", on_delete=models.PROTECT, related_name="affiliates"
    )
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="affiliate"
    )
    email = models.EmailField()
    status = models.CharField(
        max_length=10, choices=AffiliateStatus.choices, default=AffiliateStatus.PENDING
    )
    company = models.CharField(max_length=200, blank=True)
    website = models.URLField(max_length=500, blank=True)
    traffic_sources = models.TextField(blank=True)
    country = models.CharField(max_length=2, blank=True)
    payout_currency = models.CharField(max_length=3, default="EUR")
    minimum_payout = MoneyField(default=0)
    payment_details = models.TextField(blank=True)
    referrer = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="referred"
    )
    manager_notes = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    status_changed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["email"]
        constraints = [
            models.UniqueConstraint(
                "operator", Lower("email"), name="affiliate_unique_email_per_operator"
            ),
            models.CheckConstraint(
                condition=~models.Q(referrer=models.F("id")), name="affiliate_not_own_referrer"
            ),
        ]

    def __str__(self):
        return self.company or self.email


class TrackingLink(models.Model):
    affiliate = models.ForeignKey(Affiliate, on_delete=models.PROTECT, related_name="links")
    brand = models.ForeignKey("revvvs.Brand", on_delete=models.PROTECT, related_name="+")
    code = models.CharField(max_length=32, unique=True, editable=False)
    name = models.CharField(max_length=200, blank=True)
    landing_url = models.URLField(max_length=2000)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return self.name or self.code


class PromoCode(models.Model):
    operator = models.ForeignKey("revvvs.Operator", on_delete=models.PROTECT, related_name="+")
    affiliate = models.ForeignKey(Affiliate, on_delete=models.PROTECT, related_name="promo_codes")
    brand = models.ForeignKey("revvvs.Brand", on_delete=models.PROTECT, related_name="+")
    code = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["code"]
        constraints = [
            models.UniqueConstraint(
                "operator", Lower("code"), name="promo_code_unique_per_operator_ci"
            )
        ]

    def __str__(self):
        return self.code


class Click(models.Model):
    """One visit through a tracking link. The raw IP is never stored, only its HMAC."""

    id = models.UUIDField(
        primary_key=True, default=uuid.uuid4, editable=False, verbose_name="click_id"
    )
    # No single-column indexes on the foreign keys: the composite indexes below lead with
    # them, and every index is paid on each redirect's insert.
    link = models.ForeignKey(
        TrackingLink, on_delete=models.PROTECT, related_name="clicks", db_index=False
    )
    affiliate = models.ForeignKey(
        Affiliate, on_delete=models.PROTECT, related_name="clicks", db_index=False
    )
    brand = models.ForeignKey(
        "revvvs.Brand", on_delete=models.PROTECT, related_name="+", db_index=False
    )
    created_at = models.DateTimeField()
    sub1 = models.CharField(max_length=255, blank=True)
    sub2 = models.CharField(max_length=255, blank=True)
    sub3 = models.CharField(max_length=255, blank=True)
    sub4 = models.CharField(max_length=255, blank=True)
    sub5 = models.CharField(max_length=255, blank=True)
    ip_hash = models.CharField(max_length=64, blank=True)
    user_agent = models.TextField(blank=True)
    referrer = models.TextField(blank=True)
    country = models.CharField(max_length=2, blank=True)
    is_unique = models.BooleanField(default=True)
    is_bot = models.BooleanField(default=False)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["brand", "ip_hash", "-created_at"], name="click_brand_ip_time"),
            models.Index(fields=["link", "ip_hash", "-created_at"], name="click_link_ip_time"),
            models.Index(fields=["affiliate", "-created_at"], name="click_affiliate_time"),
        ]

    def __str__(self):
        return str(self.id)


class AttributionMethod(models.TextChoices):
    CLICK_ID = "click_id"
    PROMO_CODE = "promo_code"
    LAST_CLICK = "last_click"
    NONE = "none", "organic"
    MANUAL = "manual", "reassigned by a manager"


class PlayerStatus(models.TextChoices):
    ACTIVE = "active"
    SELF_EXCLUDED = "self_excluded"
    CLOSED = "closed"
    FRAUD = "fraud"


class Player(models.Model):
    """A brand's customer, known by `external_ref`. It exists from the first event that names
    it; `registered_at` is set, and the player attributed, by its registration."""

    brand = models.ForeignKey("revvvs.Brand", on_delete=models.PROTECT, related_name="players")
    external_ref = models.CharField(max_length=128)
    created_at = models.DateTimeField(auto_now_add=True)
    registered_at = models.DateTimeField(null=True, blank=True)
    registration_event_id = models.UUIDField(null=True, blank=True)
    country = models.CharField(max_length=2, blank=True)
    status = models.CharField(
        max_length=15, choices=PlayerStatus.choices, default=PlayerStatus.ACTIVE
    )
    # The event_time of the player_status event that set `status`: a later-sent but
    # earlier-dated status event must not overwrite a newer one.
    status_event_time = models.DateTimeField(null=True, blank=True, editable=False)
    affiliate = models.ForeignKey(
        Affiliate, on_delete=models.PROTECT, null=True, blank=True, related_name="players"
    )
    click = models.ForeignKey(
        Click, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    promo_code = models.ForeignKey(
        PromoCode, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    attribution_method = models.CharField(
        max_length=12, choices=AttributionMethod.choices, blank=True
    )
    attributed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["brand", "external_ref"], name="player_unique_ref_per_brand"
            )
        ]
        indexes = [models.Index(fields=["affiliate", "registered_at"], name="player_affiliate_reg")]

    def __str__(self):
        return self.external_ref


class Reassignment(models.Model):
    """Audit of a manager moving a player from one affiliate to another."""

    player = models.ForeignKey(Player, on_delete=models.PROTECT, related_name="reassignments")
    from_affiliate = models.ForeignKey(
        Affiliate, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    to_affiliate = models.ForeignKey(
        Affiliate, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    from_method = models.CharField(
        max_length=12,
        choices=AttributionMethod.choices,
        blank=True,
        help_text="How the player was attributed before the move.",
    )
    reason = models.TextField()
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.player} → {self.to_affiliate or 'organic'}"
