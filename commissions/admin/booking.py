"""Admin: plans (tiers inline), assignments (also inline on affiliates), the read-only ledger
with its manual adjustment form, pending-FX events (reprocess), FX rates (edit, import).

Every page is scoped to the manager's operator (revvvs.tenancy); a superuser sees all. FX
rates are ECB reference data shared by every operator: managers see them, only superusers
change or import them (a manager's edit would move other operators' conversions)."""

from datetime import date
from decimal import Decimal

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from attribution.models import Affiliate
from revvvs.tenancy import (
    HandEditedRequestsMixin,
    OperatorOwnedAdmin,
    OperatorScopedAdmin,
    OperatorScopedInline,
    ScopedRelatedFieldListFilter,
    register_operator_path,
    scope_queryset,
    user_operator_id,
)

from ..forms import (
    CommissionPlanForm,
    FxImportForm,
    FxRateForm,
    LedgerAdjustForm,
    PlanAssignmentForm,
    PlanAssignmentFormSet,
    PlanTierForm,
    PlanTierFormSet,
)
from ..models import CommissionPlan, FxRate, LedgerEntry, PendingFx, PlanAssignment, PlanTier
from ..services.booking import (
    ledger_adjust,
    pending_fx_reprocess,
    plan_assign,
    plan_assignment_change,
)
from ..services.fx import FxImportError, fx_rates_import

register_operator_path("commissions.commissionplan", "operator")
register_operator_path("commissions.plantier", "plan__operator")
register_operator_path("commissions.planassignment", "affiliate__operator")
register_operator_path("commissions.ledgerentry", "operator")
register_operator_path("commissions.pendingfx", "operator")
register_operator_path("commissions.playermonthngr", "player__brand__operator")

Scoped = ScopedRelatedFieldListFilter


class _NoDelete:
    def has_delete_permission(self, request, obj=None):
        return False


def money_text(amount: Decimal) -> str:
    """1E+5 as 100,000.00; 12.3456 keeps its 4 places."""
    if amount == amount.quantize(Decimal("0.01")):
        return f"{amount:,.2f}"
    return f"{amount:,.4f}"


# --- Plans ------------------------------------------------------------------------------


class PlanTierInline(OperatorScopedInline, admin.TabularInline):
    model = PlanTier
    form = PlanTierForm
    formset = PlanTierFormSet
    extra = 0


@admin.register(CommissionPlan)
class CommissionPlanAdmin(OperatorOwnedAdmin):
    operator_path = "operator"
    form = CommissionPlanForm
    inlines = [PlanTierInline]
    list_display = ["name", "currency", "cpa_amount", "revshare_rate", "sub_affiliate_rate"]
    superuser_list_filter = (("operator", admin.RelatedFieldListFilter),)
    list_filter = ["currency"]
    search_fields = ["name"]
    fieldsets = [
        (None, {"fields": ["operator", "name", "currency"]}),
        (
            "CPA (leave the amount empty for no CPA)",
            {
                "fields": [
                    "cpa_amount",
                    "min_first_deposit",
                    "min_total_deposits",
                    "qualification_days",
                    "cpa_countries",
                    "clawback_days",
                ]
            },
        ),
        (
            "RevShare (leave the rate empty for no RevShare; tiers below)",
            {
                "fields": [
                    "revshare_rate",
                    "admin_fee_percent",
                    "tier_basis",
                    "tier_mode",
                    "negative_carryover",
                    "revshare_offsets_cpa",
                    "sub_affiliate_rate",
                ]
            },
        ),
    ]

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if request.user.is_superuser:
            return fieldsets
        first = dict(fieldsets[0][1], fields=["name", "currency"])
        return [(None, first), *fieldsets[1:]]


# --- Assignments ------------------------------------------------------------------------


class PlanAssignmentInline(OperatorScopedInline, admin.TabularInline):
    """On the affiliate page. Rows are ended (valid_to), never deleted: entries were booked
    under them."""

    model = PlanAssignment
    form = PlanAssignmentForm
    formset = PlanAssignmentFormSet
    fields = ["plan", "brand", "valid_from", "valid_to"]
    extra = 0
    can_delete = False
    verbose_name = "plan assignment"


@admin.register(PlanAssignment)
class PlanAssignmentAdmin(_NoDelete, OperatorScopedAdmin):
    operator_path = "affiliate__operator"
    form = PlanAssignmentForm
    list_display = ["affiliate", "plan", "brand", "valid_from", "valid_to"]
    list_filter = [("plan", Scoped), ("brand", Scoped)]
    search_fields = ["affiliate__email", "plan__name"]
    list_select_related = ["affiliate", "plan", "brand"]

    def get_readonly_fields(self, request, obj=None):
        # An assignment stays its affiliate's: its months were booked and closed under it.
        # Another affiliate gets an assignment of its own.
        return ["affiliate"] if obj is not None else []

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        fields = dict(
            plan=data["plan"],
            brand=data.get("brand"),
            valid_from=data["valid_from"],
            valid_to=data.get("valid_to"),
        )
        if change:
            plan_assignment_change(assignment=obj, **fields)
            return
        created = plan_assign(affiliate=data["affiliate"], **fields)
        obj.pk = created.pk
        obj._state.adding = False


def _add_assignment_inline() -> None:
    try:
        from attribution.admin import AffiliateAdmin
    except ImportError:  # the tracking side's admin is not there: assignments have their page
        return
    if PlanAssignmentInline not in AffiliateAdmin.inlines:
        AffiliateAdmin.inlines = [*AffiliateAdmin.inlines, PlanAssignmentInline]


_add_assignment_inline()


# --- Ledger -----------------------------------------------------------------------------


class PeriodFilter(admin.SimpleListFilter):
    title = "period"
    parameter_name = "period"

    def lookups(self, request, model_admin):
        months = (
            model_admin.get_queryset(request)
            .order_by("-period")
            .values_list("period", flat=True)
            .distinct()
        )
        return [(m.isoformat(), m.strftime("%Y-%m")) for m in months]

    def queryset(self, request, queryset):
        if not self.value():
            return queryset
        try:
            month = date.fromisoformat(self.value())
        except ValueError:
            return queryset.none()  # not a month (a hand-edited URL): nothing matches
        return queryset.filter(period=month)


@admin.register(LedgerEntry)
class LedgerEntryAdmin(OperatorScopedAdmin):
    """Read-only: entries are never changed or deleted; a correction is a new entry (the
    manual adjustment form)."""

    operator_path = "operator"
    change_list_template = "admin/commissions/ledgerentry/change_list.html"
    list_display = [
        "id",
        "created_at",
        "kind",
        "affiliate",
        "player",
        "brand",
        "amount",
        "currency",
        "period_month",
        "activity_date",
        "event_link",
        "author",
    ]
    list_filter = ["kind", ("affiliate", Scoped), PeriodFilter, ("brand", Scoped)]
    search_fields = ["player__external_ref", "memo", "affiliate__email"]
    list_select_related = ["affiliate", "player", "brand", "author"]
    date_hierarchy = "activity_date"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    @admin.display(description="period", ordering="period")
    def period_month(self, obj):
        return obj.period.strftime("%Y-%m")

    @admin.display(description="source event")
    def event_link(self, obj):
        if obj.source_event_id is None:
            return "—"
        url = reverse("admin:events_event_change", args=[obj.source_event_id])
        return format_html('<a href="{}">{}</a>', url, str(obj.source_event_id)[:8])

    def get_urls(self):
        return [
            path(
                "adjust/",
                self.admin_site.admin_view(self.adjust_view),
                name="commissions_ledgerentry_adjust",
            ),
            *super().get_urls(),
        ]

    def can_adjust(self, request) -> bool:
        return request.user.has_perm("commissions.add_ledgerentry")

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "can_adjust": self.can_adjust(request)}
        return super().changelist_view(request, extra_context)

    def adjust_view(self, request):
        if not self.can_adjust(request):
            raise PermissionDenied
        affiliates = scope_queryset(Affiliate.objects.all(), request.user, "operator")
        form = LedgerAdjustForm(request.POST or None, affiliates=affiliates)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                entry = ledger_adjust(
                    affiliate=data["affiliate"],
                    amount=data["amount"],
                    currency=data["currency"],
                    memo=data["memo"],
                    author=request.user,
                    player=data["player"],
                )
            except ValidationError as exc:
                for name, errors in exc.message_dict.items():
                    form.add_error(name if name in form.fields else None, errors)
            else:
                self.message_user(
                    request,
                    f"Manual adjustment of {money_text(entry.amount)} {entry.currency} booked for "
                    f"{entry.affiliate} in {entry.period:%Y-%m}.",
                    messages.SUCCESS,
                )
                return HttpResponseRedirect(reverse("admin:commissions_ledgerentry_changelist"))
        return TemplateResponse(
            request,
            "admin/form_page.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.model._meta,
                "title": "Manual adjustment",
                "intro": "A new ledger entry in the open period, with you as its author. "
                "Entries are never edited: to correct one, book the difference.",
                "form": form,
                "submit": "Book the adjustment",
                "multipart": False,
            },
        )


# --- Pending FX -------------------------------------------------------------------------


class PendingStateFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [("waiting", "waiting for a rate"), ("applied", "applied")]

    def queryset(self, request, queryset):
        if self.value() == "waiting":
            return queryset.filter(resolved_at__isnull=True)
        if self.value() == "applied":
            return queryset.filter(resolved_at__isnull=False)
        return queryset


@admin.register(PendingFx)
class PendingFxAdmin(OperatorScopedAdmin):
    operator_path = "operator"
    list_display = [
        "event_key",
        "event_type",
        "from_currency",
        "to_currency",
        "rate_date",
        "created_at",
        "resolved_at",
    ]
    list_filter = [PendingStateFilter, "from_currency"]
    search_fields = ["event__idempotency_key", "event__player__external_ref"]
    list_select_related = ["event"]
    actions = ["reprocess"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="event", ordering="event__idempotency_key")
    def event_key(self, obj):
        return obj.event.idempotency_key

    @admin.display(description="type")
    def event_type(self, obj):
        return obj.event.event_type

    def has_reprocess_permission(self, request):
        # Reprocessing books ledger entries: more than the view permission the list needs.
        return request.user.has_perm("commissions.change_pendingfx")

    @admin.action(
        description="Reprocess selected events (apply the FX rate when it exists)",
        permissions=["reprocess"],
    )
    def reprocess(self, request, queryset):
        operator_id = user_operator_id(request.user)
        ids = list(queryset.filter(resolved_at__isnull=True).values_list("pk", flat=True))
        if not ids:
            # Nothing waiting among the selection (a staff user without an operator sees
            # none: user_operator_id is then an id no operator has).
            self.message_user(request, "None of the selected events is waiting for a rate.")
            return
        scope = None
        if operator_id is not None:
            from revvvs.models import Operator

            scope = Operator.objects.filter(pk=operator_id).first()
            if scope is None:
                return
        result = pending_fx_reprocess(operator=scope, pending_ids=ids)
        self.message_user(
            request,
            f"{result.applied} event(s) applied; {result.still_pending} still waiting for a rate.",
            messages.SUCCESS if not result.still_pending else messages.WARNING,
        )

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions


# --- FX rates ---------------------------------------------------------------------------


@admin.register(FxRate)
class FxRateAdmin(HandEditedRequestsMixin, admin.ModelAdmin):
    form = FxRateForm
    change_list_template = "admin/commissions/fxrate/change_list.html"
    list_display = ["date", "currency", "rate", "source", "created_at"]
    list_filter = ["currency", "source"]
    date_hierarchy = "date"
    fields = ["currency", "date", "rate", "source"]

    def has_add_permission(self, request):
        return request.user.is_superuser

    def has_change_permission(self, request, obj=None):
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser

    def get_urls(self):
        return [
            path(
                "import/",
                self.admin_site.admin_view(self.import_view),
                name="commissions_fxrate_import",
            ),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "can_import": request.user.is_superuser}
        return super().changelist_view(request, extra_context)

    def import_view(self, request):
        if not request.user.is_superuser:
            raise PermissionDenied
        form = FxImportForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            try:
                result = fx_rates_import(text=form.cleaned_data["file"])
            except FxImportError as exc:
                form.add_error("file", str(exc))
            else:
                self.message_user(
                    request,
                    f"{result.created} rates created, {result.updated} updated, "
                    f"{result.unchanged} unchanged, {result.skipped} N/A cells skipped. "
                    "Reprocess the pending-FX events to apply them.",
                    messages.SUCCESS,
                )
                return HttpResponseRedirect(reverse("admin:commissions_fxrate_changelist"))
        return TemplateResponse(
            request,
            "admin/form_page.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.model._meta,
                "title": "Import ECB reference rates",
                "intro": "The ECB CSV: 1 EUR = rate units. 'N/A' cells are skipped; importing "
                "a file twice changes nothing.",
                "form": form,
                "submit": "Import",
                "multipart": True,
            },
        )
