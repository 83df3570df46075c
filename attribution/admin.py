"""Back office of the tracking side, every page scoped to the manager's operator.

Other apps add inlines to the affiliate page by extending `AffiliateAdmin.inlines`
(e.g. commissions' plan assignments): `AffiliateAdmin.inlines.append(AssignmentInline)`."""

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import ValidationError
from django.template.response import TemplateResponse

from revvvs.tenancy import (
    OperatorScopedAdmin,
    OperatorScopedInline,
    user_operator_id,
)

from . import services
from .forms import (
    AffiliateAdminForm,
    AffiliateChildFormSet,
    PlayerReassignForm,
    PromoCodeAdminForm,
    PromoCodeInlineForm,
    TrackingLinkAdminForm,
    TrackingLinkInlineForm,
)
from .models import Affiliate, Click, Player, PromoCode, Reassignment, TrackingLink

RelatedOnly = admin.RelatedOnlyFieldListFilter  # choices limited to the scoped rows


def _adopt(obj, created) -> None:
    """Make the admin's unsaved `obj` the row a service created, so that the admin's
    redirects, messages and inline formsets see it."""
    for f in created._meta.concrete_fields:
        setattr(obj, f.attname, getattr(created, f.attname))
    obj._state.adding = False
    obj._state.db = created._state.db


class ReadOnlyAdminMixin:
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


# --- Affiliates --------------------------------------------------------------------------


class TrackingLinkInline(OperatorScopedInline, admin.TabularInline):
    model = TrackingLink
    form = TrackingLinkInlineForm
    formset = AffiliateChildFormSet
    fields = ["code", "brand", "name", "landing_url", "created_at"]
    readonly_fields = ["code", "created_at"]
    extra = 0
    can_delete = False
    show_change_link = True


class PromoCodeInline(OperatorScopedInline, admin.TabularInline):
    model = PromoCode
    form = PromoCodeInlineForm
    formset = AffiliateChildFormSet
    fields = ["code", "brand", "created_at"]
    readonly_fields = ["created_at"]
    extra = 0
    can_delete = False

    def has_change_permission(self, request, obj=None):
        # Existing codes are shown, not edited (players may have used them); new ones can
        # be added.
        return False


@admin.register(Affiliate)
class AffiliateAdmin(OperatorScopedAdmin):
    operator_path = "operator"
    form = AffiliateAdminForm
    inlines = [TrackingLinkInline, PromoCodeInline]
    list_display = ["email", "company", "status", "referrer", "created_at", "status_changed_at"]
    list_filter = ["status"]
    search_fields = ["email", "company"]
    list_select_related = ["referrer"]
    actions = ["approve", "reject", "suspend"]
    readonly_fields_on_change = ["operator", "email", "status", "status_changed_at", "created_at"]

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        return type(form.__name__, (form,), {"operator_id": user_operator_id(request.user)})

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields_on_change if obj is not None else []

    def get_fields(self, request, obj=None):
        fields = super().get_fields(request, obj)
        if obj is not None:  # the password is set by the affiliate, not on this page
            fields = [f for f in fields if f != "password"]
        return fields

    def save_form(self, request, form, change):
        obj = super().save_form(request, form, change)
        # The inline formsets check brands against the affiliate's operator before saving.
        operator_id = user_operator_id(request.user)
        if operator_id is not None and not change:
            obj.operator_id = operator_id
        return obj

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        profile = {name: data[name] for name in services.AFFILIATE_PROFILE_FIELDS if name in data}
        if change:
            services.affiliate_update(affiliate=obj, referrer=data.get("referrer"), **profile)
            return
        created = services.affiliate_create(
            operator=obj.operator,
            email=data["email"],
            password=data.get("password") or None,
            status=data.get("status") or obj.status,
            referrer=data.get("referrer"),
            **profile,
        )
        _adopt(obj, created)

    def save_formset(self, request, form, formset, change):
        if formset.model not in (TrackingLink, PromoCode):
            formset.save()  # inlines added by other apps save as usual
            return
        affiliate = form.instance
        # The admin's change message reads these, as after formset.save().
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
        for inline_form in formset.forms:
            if not inline_form.has_changed() or not hasattr(inline_form, "cleaned_data"):
                continue
            data = inline_form.cleaned_data
            if inline_form.instance.pk is not None:
                if formset.model is TrackingLink:
                    services.tracking_link_update(
                        link=inline_form.instance,
                        landing_url=data.get("landing_url"),
                        name=data.get("name", ""),
                    )
                    formset.changed_objects.append((inline_form.instance, inline_form.changed_data))
            elif formset.model is TrackingLink:
                formset.new_objects.append(
                    services.tracking_link_create(
                        affiliate=affiliate,
                        brand=data["brand"],
                        landing_url=data.get("landing_url"),
                        name=data.get("name", ""),
                    )
                )
            else:
                formset.new_objects.append(
                    services.promo_code_create(
                        affiliate=affiliate, brand=data["brand"], code=data["code"]
                    )
                )

    def _status_action(self, request, queryset, service, verb):
        done, already, errors = 0, 0, []
        for affiliate in queryset:
            before = affiliate.status
            try:
                service(affiliate=affiliate)
            except ValidationError as exc:
                errors.extend(exc.messages)
                continue
            if affiliate.status == before:
                already += 1  # counted apart: nothing changed for it
            else:
                done += 1
        if done:
            self.message_user(request, f"{done} affiliate(s) {verb}.", messages.SUCCESS)
        if already:
            self.message_user(request, f"{already} affiliate(s) already {verb}.", messages.INFO)
        for error in errors:
            self.message_user(request, error, messages.ERROR)

    @admin.action(description="Approve selected affiliates", permissions=["change"])
    def approve(self, request, queryset):
        self._status_action(request, queryset, services.affiliate_approve, "approved")

    @admin.action(description="Reject selected affiliates", permissions=["change"])
    def reject(self, request, queryset):
        self._status_action(request, queryset, services.affiliate_reject, "rejected")

    @admin.action(description="Suspend selected affiliates", permissions=["change"])
    def suspend(self, request, queryset):
        self._status_action(request, queryset, services.affiliate_suspend, "suspended")


# --- Links and promo codes ---------------------------------------------------------------


@admin.register(TrackingLink)
class TrackingLinkAdmin(OperatorScopedAdmin):
    operator_path = "affiliate__operator"
    form = TrackingLinkAdminForm
    list_display = ["code", "name", "affiliate", "brand", "landing_url", "created_at"]
    list_filter = [("affiliate", RelatedOnly), ("brand", RelatedOnly)]
    search_fields = ["code", "name", "affiliate__email"]
    list_select_related = ["affiliate", "brand"]

    def get_readonly_fields(self, request, obj=None):
        return ["code", "affiliate", "brand", "created_at"] if obj is not None else []

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        if change:
            services.tracking_link_update(
                link=obj, landing_url=data.get("landing_url"), name=data.get("name", "")
            )
            return
        created = services.tracking_link_create(
            affiliate=data["affiliate"],
            brand=data["brand"],
            landing_url=data.get("landing_url"),
            name=data.get("name", ""),
        )
        _adopt(obj, created)


@admin.register(PromoCode)
class PromoCodeAdmin(OperatorScopedAdmin):
    operator_path = "operator"
    form = PromoCodeAdminForm
    list_display = ["code", "affiliate", "brand", "created_at"]
    list_filter = [("affiliate", RelatedOnly), ("brand", RelatedOnly)]
    search_fields = ["code", "affiliate__email"]
    list_select_related = ["affiliate", "brand"]

    def has_change_permission(self, request, obj=None):
        return False  # a code players may have used is not edited; add a new one instead

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        created = services.promo_code_create(
            affiliate=data["affiliate"], brand=data["brand"], code=data["code"]
        )
        _adopt(obj, created)


# --- Clicks, players, reassignments (read-only) -------------------------------------------


@admin.register(Click)
class ClickAdmin(ReadOnlyAdminMixin, OperatorScopedAdmin):
    operator_path = "affiliate__operator"
    list_display = [
        "id",
        "created_at",
        "affiliate",
        "brand",
        "link",
        "sub1",
        "country",
        "is_unique",
        "is_bot",
    ]
    list_filter = [
        ("affiliate", RelatedOnly),
        ("brand", RelatedOnly),
        "created_at",
        "is_unique",
        "is_bot",
    ]
    date_hierarchy = "created_at"
    search_fields = ["=id", "link__code", "sub1"]
    list_select_related = ["affiliate", "brand", "link"]
    show_full_result_count = False


class ReassignmentInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = Reassignment
    fields = ["created_at", "from_affiliate", "from_method", "to_affiliate", "author", "reason"]
    readonly_fields = fields
    extra = 0


@admin.register(Player)
class PlayerAdmin(ReadOnlyAdminMixin, OperatorScopedAdmin):
    operator_path = "brand__operator"
    list_display = [
        "external_ref",
        "brand",
        "registered_at",
        "affiliate",
        "attribution_method",
        "country",
        "status",
    ]
    list_filter = [
        "attribution_method",
        "status",
        ("brand", RelatedOnly),
        ("affiliate", RelatedOnly),
        "registered_at",
    ]
    search_fields = ["external_ref"]
    list_select_related = ["brand", "affiliate"]
    inlines = [ReassignmentInline]
    actions = ["reassign"]

    def has_reassign_permission(self, request):
        return request.user.has_perm("attribution.change_player")

    @admin.action(
        description="Reassign selected players to another affiliate", permissions=["reassign"]
    )
    def reassign(self, request, queryset):
        operator_id = user_operator_id(request.user)
        if "apply" in request.POST:
            form = PlayerReassignForm(request.POST, operator_id=operator_id)
            if form.is_valid():
                done, errors = 0, []
                for player in queryset.select_related("brand"):
                    try:
                        services.player_reassign(
                            player=player,
                            to_affiliate=form.cleaned_data["to_affiliate"],
                            reason=form.cleaned_data["reason"],
                            author=request.user,
                        )
                        done += 1
                    except ValidationError as exc:
                        errors.append(f"{player}: {'; '.join(exc.messages)}")
                if done:
                    self.message_user(request, f"{done} player(s) reassigned.", messages.SUCCESS)
                for error in errors:
                    self.message_user(request, error, messages.ERROR)
                return None
        else:
            form = PlayerReassignForm(operator_id=operator_id)
        return TemplateResponse(
            request,
            "attribution/admin/reassign_players.html",
            {
                **self.admin_site.each_context(request),
                "title": "Reassign players",
                "opts": self.model._meta,
                "form": form,
                "players": queryset.select_related("brand", "affiliate"),
                "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            },
        )


@admin.register(Reassignment)
class ReassignmentAdmin(ReadOnlyAdminMixin, OperatorScopedAdmin):
    operator_path = "player__brand__operator"
    list_display = ["created_at", "player", "from_affiliate", "to_affiliate", "author", "reason"]
    list_filter = [("from_affiliate", RelatedOnly), ("to_affiliate", RelatedOnly)]
    search_fields = ["player__external_ref", "reason"]
    list_select_related = ["player", "from_affiliate", "to_affiliate", "author"]
