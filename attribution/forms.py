"""Admin forms of the tracking side. They validate; the admin saves through the services."""

from django import forms
from django.core.exceptions import ValidationError

from revvvs.models import User

from .models import Affiliate, PromoCode, TrackingLink
from .selectors import affiliates_for_reassignment
from .services import (
    PROMO_CODE_RE,
    affiliate_currency_check,
    landing_url_clean,
    referrer_cycle_check,
)


class AffiliateAdminForm(forms.ModelForm):
    """`operator_id` is set by the admin: the manager's operator (None for a superuser, who
    picks the operator in the form)."""

    operator_id: int | None = None

    website = forms.URLField(max_length=500, required=False, assume_scheme="https")
    password = forms.CharField(
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="The affiliate's portal password. Leave empty to let them set one through "
        "password reset.",
    )

    class Meta:
        model = Affiliate
        fields = [
            "operator",
            "email",
            "status",
            "company",
            "website",
            "traffic_sources",
            "country",
            "payout_currency",
            "minimum_payout",
            "payment_details",
            "referrer",
            "manager_notes",
        ]

    def clean(self):
        cleaned = super().clean()
        referrer = cleaned.get("referrer")
        operator = cleaned.get("operator")
        operator_id = self.operator_id or (operator.pk if operator else self.instance.operator_id)
        if referrer is not None:
            if operator_id is not None and referrer.operator_id != operator_id:
                self.add_error(
                    "referrer", "the referrer must be an affiliate of the same operator's programme"
                )
            try:
                referrer_cycle_check(affiliate_id=self.instance.pk, referrer=referrer)
            except ValidationError as exc:
                for name, errors in exc.message_dict.items():
                    self.add_error(name, errors)
        email = (cleaned.get("email") or "").strip().lower()
        if email and self.instance.pk is None and operator_id is not None:
            # The manager's form has no operator field, so the model's (operator, email)
            # constraint is not checked by the form; nor is the login, which is global.
            if Affiliate.objects.filter(operator_id=operator_id, email__iexact=email).exists():
                self.add_error("email", "an affiliate with this email is already in the programme")
            elif User.objects.filter(username__iexact=email).exists():
                self.add_error("email", "this email already has a login here; use another address")
        if cleaned.get("payout_currency") and not self.errors:
            try:
                affiliate_currency_check(
                    affiliate_id=self.instance.pk,
                    payout_currency=cleaned["payout_currency"],
                    referrer=referrer,
                )
            except ValidationError as exc:
                for name, errors in exc.message_dict.items():
                    self.add_error(name, errors)
        return cleaned


class _LinkFormMixin:
    def _check_landing(self, brand, affiliate_operator_id):
        if brand is None:
            return
        if affiliate_operator_id is not None and brand.operator_id != affiliate_operator_id:
            self.add_error("brand", "the brand must belong to the affiliate's operator")
            return
        if "landing_url" in self.fields:
            try:
                self.cleaned_data["landing_url"] = landing_url_clean(
                    brand=brand, url=self.cleaned_data.get("landing_url")
                )
            except ValidationError as exc:
                self.add_error("landing_url", exc)


def _landing_url_field():
    return forms.URLField(
        max_length=2000,
        required=False,
        assume_scheme="https",
        help_text="Empty: the brand's default landing URL. A deep link must be http(s) on one "
        "of the brand's allowed domains.",
    )


class TrackingLinkAdminForm(_LinkFormMixin, forms.ModelForm):
    landing_url = _landing_url_field()

    class Meta:
        model = TrackingLink
        fields = ["affiliate", "brand", "name", "landing_url"]

    def clean(self):
        cleaned = super().clean()
        affiliate = cleaned.get("affiliate") or (
            self.instance.affiliate if self.instance.affiliate_id else None
        )
        brand = cleaned.get("brand") or (self.instance.brand if self.instance.brand_id else None)
        self._check_landing(brand, affiliate.operator_id if affiliate else None)
        return cleaned


class PromoCodeAdminForm(forms.ModelForm):
    class Meta:
        model = PromoCode
        fields = ["affiliate", "brand", "code"]

    def clean(self):
        cleaned = super().clean()
        affiliate, brand, code = (cleaned.get(k) for k in ("affiliate", "brand", "code"))
        if affiliate and brand and brand.operator_id != affiliate.operator_id:
            self.add_error("brand", "the brand must belong to the affiliate's operator")
        if code is not None:
            _check_promo_code(self, code, affiliate.operator_id if affiliate else None)
        return cleaned


def _check_promo_code(form, code: str, operator_id: int | None) -> None:
    code = code.strip()
    if not PROMO_CODE_RE.match(code):
        form.add_error("code", "a promo code is 1–64 letters, digits, '-' or '_'")
    elif (
        operator_id is not None
        and PromoCode.objects.filter(operator_id=operator_id, code__iexact=code).exists()
    ):
        # For a clear message; the case-insensitive unique constraint still decides.
        form.add_error("code", f"the promo code {code} is already used in this programme")


class TrackingLinkInlineForm(_LinkFormMixin, forms.ModelForm):
    landing_url = _landing_url_field()

    class Meta:
        model = TrackingLink
        fields = ["brand", "name", "landing_url"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None:
            # A link's brand is fixed, as on the link's own page: its clicks were recorded
            # for that brand (the service updates the name and landing URL only).
            self.fields["brand"].disabled = True


class PromoCodeInlineForm(forms.ModelForm):
    class Meta:
        model = PromoCode
        fields = ["brand", "code"]


class AffiliateChildFormSet(forms.BaseInlineFormSet):
    """Checks each new or changed link / promo code against the affiliate's operator."""

    def clean(self):
        super().clean()
        operator_id = self.instance.operator_id
        for form in self.forms:
            if not form.has_changed() or not hasattr(form, "cleaned_data"):
                continue
            if form.cleaned_data.get("DELETE"):
                continue
            brand = form.cleaned_data.get("brand")
            if isinstance(form, TrackingLinkInlineForm):
                form._check_landing(brand, operator_id)
            elif form.instance.pk is None:
                if brand is not None and operator_id and brand.operator_id != operator_id:
                    form.add_error("brand", "the brand must belong to the affiliate's operator")
                if form.cleaned_data.get("code"):
                    _check_promo_code(form, form.cleaned_data["code"], operator_id)


class PlayerReassignForm(forms.Form):
    to_affiliate = forms.ModelChoiceField(
        queryset=Affiliate.objects.none(), label="Move to affiliate", required=False
    )
    to_organic = forms.BooleanField(
        required=False,
        label="Or make organic",
        help_text="No affiliate: what the players earned their affiliate is reversed.",
    )
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Required; kept in the audit trail.",
    )

    def __init__(self, *args, operator_id: int | None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["to_affiliate"].queryset = affiliates_for_reassignment(operator_id=operator_id)

    def clean(self):
        data = super().clean()
        chosen = data.get("to_affiliate") is not None
        if "to_affiliate" in self.errors:
            return data
        if chosen == bool(data.get("to_organic")):
            # Both or neither: making players organic must be asked for, never a blank.
            self.add_error(
                "to_affiliate", "choose an affiliate, or tick 'Or make organic' (not both)"
            )
        return data
