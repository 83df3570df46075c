"""Forms of the commission admin: they validate; services write."""

from datetime import date, timedelta
from decimal import Decimal

import pycountry
from django import forms
from django.core.exceptions import ValidationError
from django.db.models import Exists, OuterRef, Q

from attribution.models import Affiliate, Player, Reassignment
from revvvs.money import quantize

from .models import CommissionPlan, FxRate, LedgerEntry, LedgerKind, PlanAssignment
from .services.booking import (
    MAX_ADJUSTMENT,
    plan_assignment_validate,
    plan_assignments_overlap_check,
)
from .services.fx import FX_RATE_QUANTUM

CURRENCIES = frozenset(c.alpha_3 for c in pycountry.currencies)
# One entry's amount (a CPA, a manual adjustment): far below the 14 integer digits of the
# ledger and the statements, so that a month's sums cannot overflow them.
MAX_ENTRY_AMOUNT = Decimal(10) ** 10
FX_DATE_MIN = date(1999, 1, 4)
COUNTRIES = frozenset(c.alpha_2 for c in pycountry.countries)


class CommissionPlanForm(forms.ModelForm):
    class Meta:
        model = CommissionPlan
        fields = [
            "operator",
            "name",
            "currency",
            "cpa_amount",
            "min_first_deposit",
            "min_total_deposits",
            "qualification_days",
            "cpa_countries",
            "clawback_days",
            "revshare_rate",
            "admin_fee_percent",
            "tier_basis",
            "tier_mode",
            "negative_carryover",
            "revshare_offsets_cpa",
            "sub_affiliate_rate",
        ]

    def clean_currency(self):
        currency = self.cleaned_data["currency"].strip().upper()
        if currency not in CURRENCIES:
            raise ValidationError(f"'{currency}' is not an ISO 4217 currency code, e.g. EUR")
        plan = self.instance
        if plan.pk and currency != plan.currency and _plan_in_use(plan):
            # An affiliate is paid in one currency (plan_assignment_validate checks it at
            # assignment); a plan's new currency would split its affiliates' ledgers, and
            # their statements could not be built (period_close refuses mixed currencies).
            raise ValidationError(
                f"the plan is assigned or has booked entries in {plan.currency}; its currency "
                f"cannot change. Create a plan in {currency} and assign it from the date it "
                "should apply (ending this plan's assignments the day before)"
            )
        return currency

    def clean_cpa_countries(self):
        codes = [c.strip().upper() for c in self.cleaned_data["cpa_countries"].split(",")]
        codes = [c for c in codes if c]
        unknown = [c for c in codes if c not in COUNTRIES]
        if unknown:
            raise ValidationError(
                f"not ISO 3166-1 alpha-2 codes: {', '.join(unknown)} (e.g. GB, DE, IE)"
            )
        return ", ".join(sorted(set(codes)))

    def _fraction(self, name):
        value = self.cleaned_data.get(name)
        if value is not None and not (Decimal(0) <= value <= Decimal(1)):
            raise ValidationError("a fraction between 0 and 1: 0.25 is 25 %")
        return value

    def clean_revshare_rate(self):
        rate = self._fraction("revshare_rate")
        plan = self.instance
        if (
            plan.pk
            and rate != plan.revshare_rate
            and LedgerEntry.objects.filter(plan=plan, kind=LedgerKind.REVSHARE).exists()
        ):
            # The close reads a month's NGR back from its RevShare entries (amount ÷ base
            # rate) for the tiers; entries booked at the old rate would be read at the new.
            raise ValidationError(
                f"the plan has RevShare booked at {plan.revshare_rate}; its rate cannot change. "
                "Create a plan with the new rate and assign it from the date it should apply "
                "(ending this plan's assignments the day before)"
            )
        return rate

    def clean_sub_affiliate_rate(self):
        return self._fraction("sub_affiliate_rate")

    def clean_admin_fee_percent(self):
        value = self.cleaned_data["admin_fee_percent"]
        if not (0 <= value <= 100):
            raise ValidationError("a percentage between 0 and 100")
        return value

    # The CPA terms a clawback is judged against (booking._book_clawback reads the plan as
    # it is): changed after CPAs were booked, they would claw back CPAs earned under others.
    CPA_CLAWBACK_TERMS = (
        "min_first_deposit",
        "min_total_deposits",
        "qualification_days",
        "clawback_days",
    )

    def _check_cpa_terms_unchanged(self, data):
        plan = self.instance
        if not plan.pk:
            return
        changed = [
            name
            for name in self.CPA_CLAWBACK_TERMS
            if name in data and data[name] != getattr(plan, name)
        ]
        if changed and LedgerEntry.objects.filter(plan=plan, kind=LedgerKind.CPA).exists():
            for name in changed:
                self.add_error(
                    name,
                    f"the plan has CPAs booked under {name} = {getattr(plan, name)}, and their "
                    "clawbacks are judged by it; it cannot change. Create a plan with the new "
                    "terms and assign it from the date it should apply (ending this plan's "
                    "assignments the day before)",
                )

    def clean(self):
        data = super().clean()
        self._check_cpa_terms_unchanged(data)
        for name in ("cpa_amount", "min_first_deposit", "min_total_deposits"):
            if data.get(name) is not None and data[name] < 0:
                self.add_error(name, "must not be negative")
            elif data.get(name) is not None and data[name] >= MAX_ENTRY_AMOUNT:
                self.add_error(name, f"must be less than {MAX_ENTRY_AMOUNT:,}")
        plan = self.instance
        operator = data.get("operator")
        if plan.pk and operator is not None and operator.pk != plan.operator_id:
            if _plan_in_use(plan):
                # Its assignments and entries belong to its operator's affiliates: moved, the
                # plan would put one operator's deal terms in another's hands.
                self.add_error(
                    "operator",
                    "the plan is assigned or has booked entries; it stays with its operator",
                )
        return data


def _plan_in_use(plan: CommissionPlan) -> bool:
    return (
        PlanAssignment.objects.filter(plan=plan).exists()
        or LedgerEntry.objects.filter(plan=plan).exists()
    )


class PlanTierForm(forms.ModelForm):
    def clean_threshold(self):
        threshold = self.cleaned_data["threshold"]
        if threshold < 0:
            raise ValidationError(
                "a threshold is a monthly NGR or a CPA count from 0 up: below the lowest "
                "threshold the base rate applies"
            )
        return threshold

    def clean_rate(self):
        rate = self.cleaned_data["rate"]
        if not (Decimal(0) <= rate <= Decimal(1)):
            raise ValidationError("a fraction between 0 and 1: 0.30 is 30 %")
        return rate


class PlanTierFormSet(forms.BaseInlineFormSet):
    """A plan's tiers: they scale the base RevShare (the tier basis is base RevShare ÷ base
    rate, docs/commissions.md), so a plan with tiers needs a base rate above 0."""

    def clean(self):
        super().clean()
        tiers = [
            form
            for form in self.forms
            if form.cleaned_data and not form.cleaned_data.get("DELETE", False)
        ]
        if tiers and not self.instance.revshare_rate:
            raise ValidationError(
                "tiers need a base RevShare rate above 0: entries accrue at the base rate and "
                "the close books the tier adjustment from them; set the rate or remove the tiers"
            )


class PlanAssignmentForm(forms.ModelForm):
    """Checks operator, currency and overlaps with a clear message before the service runs
    (the service checks again under the affiliate's lock)."""

    class Meta:
        model = PlanAssignment
        fields = ["affiliate", "plan", "brand", "valid_from", "valid_to"]

    def clean(self):
        data = super().clean()
        affiliate = data.get("affiliate") or getattr(self.instance, "affiliate", None)
        plan, valid_from = data.get("plan"), data.get("valid_from")
        if affiliate is None or plan is None or valid_from is None:
            return data
        try:
            plan_assignment_validate(
                affiliate=affiliate,
                plan=plan,
                brand=data.get("brand"),
                valid_from=valid_from,
                valid_to=data.get("valid_to"),
                exclude_pk=self.instance.pk,
                check_overlaps=affiliate.pk is not None,
                exclude_pks=getattr(self, "page_pks", frozenset()),
            )
        except ValidationError as exc:
            for name, errors in exc.message_dict.items():
                self.add_error(name if name in self.fields else None, errors)
        return data


def _overlap(a, b) -> bool:
    a_from, a_to = a
    b_from, b_to = b
    return a_from <= (b_to or a_from.max) and b_from <= (a_to or b_from.max)


class PlanAssignmentFormSet(forms.BaseInlineFormSet):
    """The affiliate page's assignments: overlaps between the rows of the page are errors
    too, and rows are saved through the assignment services."""

    def _construct_form(self, i, **kwargs):
        form = super()._construct_form(i, **kwargs)
        # The rows of this page are checked against each other here (clean), and saved
        # existing rows first: each row checks the database without them, so that ending
        # an assignment and adding its successor is one save.
        form.page_pks = frozenset(obj.pk for obj in self.get_queryset())
        return form

    def clean(self):
        super().clean()
        seen = []
        for form in self.forms:
            data = getattr(form, "cleaned_data", None)
            if not data or data.get("DELETE") or not data.get("valid_from"):
                continue
            span = (data["valid_from"], data.get("valid_to"))
            brand = data.get("brand")
            if any(b == brand and _overlap(span, s) for b, s in seen):
                form.add_error("valid_from", "overlaps another assignment on this page")
            seen.append((brand, span))

    def save_new(self, form, commit=True):
        from .services.booking import plan_assign

        data = form.cleaned_data
        return plan_assign(
            affiliate=self.instance,
            plan=data["plan"],
            brand=data.get("brand"),
            valid_from=data["valid_from"],
            valid_to=data.get("valid_to"),
        )

    def save_existing(self, form, obj, commit=True):
        from .services.booking import plan_assignment_change

        data = form.cleaned_data
        # Checked against the page's other rows by clean(), with their new dates; saved one
        # by one, a row would clash with another's old dates (moving a switch earlier).
        return plan_assignment_change(
            assignment=obj,
            plan=data["plan"],
            brand=data.get("brand"),
            valid_from=data["valid_from"],
            valid_to=data.get("valid_to"),
            exclude_pks=form.page_pks,
        )

    def save(self, commit=True):
        saved = super().save(commit=commit)
        if commit and self.instance.pk:
            plan_assignments_overlap_check(affiliate=self.instance)
        return saved


class LedgerAdjustForm(forms.Form):
    affiliate = forms.ModelChoiceField(queryset=Affiliate.objects.none())
    amount = forms.DecimalField(help_text="Positive credits, negative debits.")
    currency = forms.CharField(
        max_length=3, required=False, help_text="Empty: the affiliate's payout currency."
    )
    player_external_ref = forms.CharField(
        max_length=128, required=False, help_text="Optional: the player this is about."
    )
    memo = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), help_text="Why; required.")

    def __init__(self, *args, affiliates, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["affiliate"].queryset = affiliates

    def clean_amount(self):
        # 12.30000 is 12.30: trailing zeros are not decimal places (the Event API reads them
        # the same way); the service refuses what has more than 4 and what is too large.
        amount = self.cleaned_data["amount"]
        if abs(amount) >= MAX_ADJUSTMENT:  # checked first: too large to quantize
            raise ValidationError(f"must be less than {MAX_ADJUSTMENT:,} in absolute value")
        if amount != quantize(amount):
            raise ValidationError("at most 4 decimal places")
        return quantize(amount)

    def clean(self):
        data = super().clean()
        affiliate = data.get("affiliate")
        if affiliate is None:
            return data
        data["currency"] = (data.get("currency") or affiliate.payout_currency).strip().upper()
        data["player"] = None
        ref = (data.get("player_external_ref") or "").strip()
        if ref:
            # The affiliate's players, and those it earned from before they were reassigned
            # (a correction of what it gave back names them).
            players = list(
                Player.objects.filter(brand__operator_id=affiliate.operator_id, external_ref=ref)
                .filter(
                    Q(affiliate=affiliate)
                    | Exists(
                        LedgerEntry.objects.filter(player_id=OuterRef("pk"), affiliate=affiliate)
                    )
                    | Exists(
                        Reassignment.objects.filter(
                            player_id=OuterRef("pk"), from_affiliate=affiliate
                        )
                    )
                )
                .distinct()[:2]
            )
            if not players:
                self.add_error("player_external_ref", f"{affiliate} has no player '{ref}'")
            elif len(players) > 1:
                self.add_error(
                    "player_external_ref", f"'{ref}' is a player of several brands; leave empty"
                )
            else:
                data["player"] = players[0]
        return data


class FxImportForm(forms.Form):
    file = forms.FileField(help_text="eurofxref.csv or eurofxref-hist.csv (unzipped).")

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > 20 * 1024 * 1024:
            raise ValidationError("the file is over 20 MiB; the ECB history is about 1.5 MiB")
        try:
            return upload.read().decode("utf-8-sig")
        except UnicodeDecodeError:
            raise ValidationError("not a UTF-8 CSV file (unzip eurofxref-hist.zip first)") from None


class FxRateForm(forms.ModelForm):
    """A rate a conversion can use: an ISO 4217 code other than EUR (the base: 1 EUR = rate),
    a date conversions can reach, a rate above 0 at the stored precision."""

    class Meta:
        model = FxRate
        fields = ["currency", "date", "rate", "source"]

    def clean_currency(self):
        currency = self.cleaned_data["currency"].strip().upper()
        if currency not in CURRENCIES:
            raise ValidationError(f"'{currency}' is not an ISO 4217 currency code, e.g. USD")
        if currency == "EUR":
            raise ValidationError("rates are per 1 EUR: EUR itself needs none")
        return currency

    def clean_date(self):
        day = self.cleaned_data["date"]
        if not FX_DATE_MIN <= day <= date.today() + timedelta(days=1):
            raise ValidationError(
                f"a rate's date is from {FX_DATE_MIN} (the first ECB rates) to today"
            )
        return day

    def clean_rate(self):
        rate = self.cleaned_data["rate"]
        if rate is None or rate.quantize(FX_RATE_QUANTUM) <= 0:
            raise ValidationError("the rate is units of the currency per 1 EUR: above 0")
        return rate
