"""Admin: periods (close a month), statements (approve, mark paid, CSV), the admin index figures.

Every page is scoped to the manager's operator (revvvs.tenancy); a superuser sees all. The
admin only parses, calls a service and renders: the rules are in commissions.services.periods.
"""

import csv
import io
import zipfile
from datetime import date

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, path, reverse
from django.utils import timezone
from django.utils.html import format_html

from revvvs.models import Operator
from revvvs.tenancy import (
    OperatorOwnedAdmin,
    ScopedRelatedFieldListFilter,
    register_operator_path,
    scope_queryset,
    user_operator_id,
)

from ..models import Period, PeriodStatus, Statement
from ..period_selectors import STATEMENT_AMOUNTS, admin_index_figures, statement_lines
from ..services.periods import (
    PeriodError,
    StatementTransitionError,
    month_parse,
    period_close,
    periods_to_close_record,
    statement_approve,
    statement_mark_paid,
)

register_operator_path("commissions.period", "operator")
register_operator_path("commissions.statement", "operator")


# --- periods ------------------------------------------------------------------------------


class ClosePeriodForm(forms.Form):
    month = forms.CharField(
        max_length=7, help_text="The month to close, YYYY-MM (UTC). It must have ended."
    )
    operator = forms.ModelChoiceField(queryset=Operator.objects.none(), required=False)

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        if user_operator_id(user) is None:
            self.fields["operator"].queryset = Operator.objects.all()
            self.fields["operator"].required = True
        else:
            del self.fields["operator"]

    def clean_month(self) -> date:
        try:
            return month_parse(self.cleaned_data["month"])
        except ValueError as exc:
            raise forms.ValidationError(f"{str(exc)[0].upper()}{str(exc)[1:]}.") from None

    def operator_to_close(self) -> Operator:
        return self.cleaned_data.get("operator") or self.user.operator


@admin.register(Period)
class PeriodAdmin(OperatorOwnedAdmin):
    list_display = ("month_display", "operator", "status", "closed_at", "closed_by", "statements")
    list_select_related = ("operator", "closed_by")
    list_filter = ("status",)
    superuser_list_filter = (("operator", ScopedRelatedFieldListFilter),)
    fields = ("operator", "month", "status", "closed_at", "closed_by")
    readonly_fields = fields
    actions = ["close_selected"]

    @admin.display(description="month", ordering="month")
    def month_display(self, obj):
        return f"{obj.month:%Y-%m}"

    @admin.display(description="statements")
    def statements(self, obj):
        if obj.status != PeriodStatus.CLOSED:
            return "—"
        url = reverse("admin:commissions_statement_changelist") + f"?period={obj.pk}"
        return format_html('<a href="{}">statements</a>', url)

    def has_add_permission(self, request):
        return False  # a period is created by closing it (the "Close a month" page)

    def has_change_permission(self, request, obj=None):
        return False  # a period changes only by being closed

    def has_delete_permission(self, request, obj=None):
        return False

    def has_close_permission(self, request):
        return request.user.has_perm("commissions.change_period")

    def get_urls(self):
        return [
            path(
                "close/",
                self.admin_site.admin_view(self.close_view),
                name="commissions_period_close",
            ),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        # The ended months with entries are listed (open) beside the closed ones, so that the
        # action below can close them; a month without entries closes on the "Close a
        # month" page.
        if request.method == "GET" and self.has_view_permission(request):
            periods_to_close_record(operator_id=user_operator_id(request.user))
        extra_context = {**(extra_context or {}), "can_close": self.has_close_permission(request)}
        return super().changelist_view(request, extra_context)

    def close_view(self, request):
        if not self.has_close_permission(request):
            raise PermissionDenied
        form = ClosePeriodForm(request.POST or None, user=request.user)
        if request.method == "POST" and form.is_valid():
            operator = form.operator_to_close()
            if operator is None:
                raise PermissionDenied  # a staff user without an operator
            try:
                result = self._close(request, operator, form.cleaned_data["month"])
            except PeriodError as exc:
                form.add_error("month", str(exc))
            else:
                url = reverse("admin:commissions_statement_changelist")
                return HttpResponseRedirect(f"{url}?period={result.period.pk}")
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "form": form,
            "title": "Close a month",
        }
        return TemplateResponse(request, "admin/commissions/period/close.html", context)

    @admin.action(description="Close the selected periods", permissions=["close"])
    def close_selected(self, request, queryset):
        for period in queryset.select_related("operator").order_by("operator", "month"):
            try:
                self._close(request, period.operator, period.month)
            except PeriodError as exc:
                self.message_user(request, f"{period}: {exc}", messages.ERROR)

    def _close(self, request, operator, month):
        result = period_close(operator=operator, month=month, user=request.user)
        count = result.statements.count()
        if result.created:
            self.message_user(
                request,
                f"{month:%Y-%m} closed for {operator}: {count} statements, "
                f"{result.tier_adjustments} tier adjustments, "
                f"{result.sub_affiliate_entries} sub-affiliate entries.",
                messages.SUCCESS,
            )
        else:
            self.message_user(
                request, f"{month:%Y-%m} was already closed for {operator}; nothing changed."
            )
        return result


# --- statements ---------------------------------------------------------------------------


class StatementPeriodFilter(admin.SimpleListFilter):
    """The periods the user may see (Django's related filter would list every operator's)."""

    title = "period"
    parameter_name = "period"

    def lookups(self, request, model_admin):
        periods = scope_queryset(
            Period.objects.filter(status=PeriodStatus.CLOSED).select_related("operator"),
            request.user,
            "operator",
        ).order_by("-month", "operator__name")[:36]
        several = user_operator_id(request.user) is None
        return [
            (str(p.pk), f"{p.month:%Y-%m}" + (f" · {p.operator}" if several else ""))
            for p in periods
        ]

    def queryset(self, request, queryset):
        value = self.value()
        if not value:
            return queryset
        if value.isascii() and value.isdigit() and len(value) <= 18:
            return queryset.filter(period_id=int(value))
        return queryset.none()  # not a period id (a hand-edited URL): nothing matches


class MarkPaidForm(forms.Form):
    method = forms.CharField(max_length=100, help_text="e.g. bank transfer, Skrill, USDT")
    reference = forms.CharField(
        max_length=200, required=False, help_text="The payment's reference, if it has one."
    )
    paid_on = forms.DateField(
        initial=lambda: timezone.now().date(), help_text="The date of the payment."
    )


_CSV_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _text_cell(value: str) -> str:
    # A spreadsheet would run a cell starting with "=" etc. as a formula (CSV injection).
    return "'" + value if value.startswith(_CSV_FORMULA_START) else value


class _Echo:
    def write(self, value):
        return value


def _statement_csv_rows(statement: Statement):
    yield ["date", "kind", "player_ref", "brand", "amount", "currency", "memo", "event_id"]
    for line in statement_lines(statement=statement):
        yield [
            line.date.isoformat(),
            line.kind,
            _text_cell(line.player_ref),
            _text_cell(line.brand),
            str(line.amount),
            line.currency,
            _text_cell(line.memo),
            line.event_id,
        ]
    yield []
    for name in STATEMENT_AMOUNTS:
        yield ["total", name, "", "", str(getattr(statement, name)), statement.currency, "", ""]


def _statement_csv_name(statement: Statement) -> str:
    return f"statement-{statement.period.month:%Y-%m}-affiliate-{statement.affiliate_id}.csv"


@admin.register(Statement)
class StatementAdmin(OperatorOwnedAdmin):
    list_display = (
        "affiliate",
        "month",
        "currency",
        "cpa",
        "cpa_reversal",
        "revshare",
        "revshare_tier_adjustment",
        "sub_affiliate",
        "manual_adjustment",
        "reattribution",
        "net_payable",
        "status",
        "csv",
    )
    list_select_related = ("affiliate", "period", "operator")
    list_filter = ("status", StatementPeriodFilter)
    superuser_list_filter = (("operator", ScopedRelatedFieldListFilter),)
    search_fields = ("affiliate__email", "affiliate__company")
    actions = ["approve", "mark_paid", "download_csv"]
    fieldsets = (
        (None, {"fields": ("operator", "period", "affiliate", "currency", "status", "csv")}),
        (
            "Totals by kind",
            {
                "fields": (
                    "cpa",
                    "cpa_reversal",
                    "revshare",
                    "revshare_tier_adjustment",
                    "sub_affiliate",
                    "manual_adjustment",
                    "reattribution",
                )
            },
        ),
        (
            "Balance",
            {
                "fields": (
                    "carryover_in",
                    "rollover_in",
                    "carryover_out",
                    "revshare_written_off",
                    "rollover_out",
                    "net_payable",
                )
            },
        ),
        (
            "Approval and payment",
            {
                "fields": (
                    "approved_at",
                    "approved_by",
                    "paid_on",
                    "payment_method",
                    "payment_reference",
                    "created_at",
                )
            },
        ),
    )

    def get_readonly_fields(self, request, obj=None):
        return [f for fieldset in self.fieldsets for f in fieldset[1]["fields"]]

    @admin.display(description="period", ordering="period__month")
    def month(self, obj):
        return f"{obj.period.month:%Y-%m}"

    @admin.display(description="lines")
    def csv(self, obj):
        url = reverse("admin:commissions_statement_csv", args=[obj.pk])
        return format_html('<a href="{}">CSV</a>', url)

    def has_add_permission(self, request):
        return False  # statements are built by closing a period

    def has_change_permission(self, request, obj=None):
        return False  # the numbers are read-only; the state moves through the actions

    def has_delete_permission(self, request, obj=None):
        return False

    def has_approve_permission(self, request):
        return request.user.has_perm("commissions.change_statement")

    has_pay_permission = has_approve_permission

    def get_urls(self):
        return [
            path(
                "<int:statement_id>/csv/",
                self.admin_site.admin_view(self.csv_view),
                name="commissions_statement_csv",
            ),
            *super().get_urls(),
        ]

    def csv_view(self, request, statement_id):
        statement = self.get_object(request, str(statement_id))  # scoped: another's is None
        if statement is None or not self.has_view_permission(request, statement):
            raise Http404("No statement here.")
        writer = csv.writer(_Echo())
        response = StreamingHttpResponse(
            (writer.writerow(row) for row in _statement_csv_rows(statement)),
            content_type="text/csv; charset=utf-8",
        )
        response["Content-Disposition"] = f'attachment; filename="{_statement_csv_name(statement)}"'
        return response

    @admin.action(description="Approve the selected statements", permissions=["approve"])
    def approve(self, request, queryset):
        approved = 0
        for statement in queryset:
            try:
                statement_approve(statement=statement, user=request.user)
                approved += 1
            except StatementTransitionError as exc:
                self.message_user(request, str(exc), messages.ERROR)
        if approved:
            self.message_user(request, f"{approved} statement(s) approved.", messages.SUCCESS)

    @admin.action(description="Mark the selected statements paid…", permissions=["pay"])
    def mark_paid(self, request, queryset):
        form = MarkPaidForm(request.POST if "apply" in request.POST else None)
        if "apply" in request.POST and form.is_valid():
            paid = 0
            for statement in queryset:
                try:
                    statement_mark_paid(
                        statement=statement,
                        method=form.cleaned_data["method"],
                        reference=form.cleaned_data["reference"],
                        paid_on=form.cleaned_data["paid_on"],
                        user=request.user,
                    )
                    paid += 1
                except StatementTransitionError as exc:
                    self.message_user(request, str(exc), messages.ERROR)
            if paid:
                self.message_user(request, f"{paid} statement(s) marked paid.", messages.SUCCESS)
            return None
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Mark statements paid",
            "statements": queryset.select_related("affiliate", "period"),
            "form": form,
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/commissions/statement/mark_paid.html", context)

    @admin.action(description="Download the selected statements' lines (CSV)")
    def download_csv(self, request, queryset):
        statements = list(queryset.select_related("period").order_by("period__month", "pk"))
        if len(statements) == 1:
            response = HttpResponse(content_type="text/csv; charset=utf-8")
            csv.writer(response).writerows(_statement_csv_rows(statements[0]))
            name = _statement_csv_name(statements[0])
            response["Content-Disposition"] = f'attachment; filename="{name}"'
            return response
        archive = io.BytesIO()
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped:
            for statement in statements:
                text = io.StringIO()
                csv.writer(text).writerows(_statement_csv_rows(statement))
                zipped.writestr(_statement_csv_name(statement), text.getvalue())
        response = HttpResponse(archive.getvalue(), content_type="application/zip")
        response["Content-Disposition"] = 'attachment; filename="statements.zip"'
        return response


# --- the admin index ----------------------------------------------------------------------


def _changelist(name: str, query: str = "") -> str | None:
    try:
        return reverse(f"admin:{name}_changelist") + query
    except NoReverseMatch:
        return None


def admin_index(request, extra_context=None):
    """The stock index plus the month's figures and what needs attention, scoped to what
    the user may see (templates/admin/index.html shows them)."""
    figures = admin_index_figures(user=request.user, today=timezone.now().date())
    user = request.user
    # Each figure only for a login that may open the list it comes from: a clerk handling
    # applications does not see the operator's money.
    can = {
        "players": user.has_perm("attribution.view_player"),
        "ledger": user.has_perm("commissions.view_ledgerentry"),
        "applications": user.has_perm("attribution.view_affiliate"),
        "pending_fx": user.has_perm("commissions.view_pendingfx"),
        "statements": user.has_perm("commissions.view_statement"),
    }
    ledger = f"?period__exact={figures.month}"
    context = {
        "figures": figures,
        "can": can,
        "net_rows": [
            # One link per currency: the entries that make up that currency's figure.
            (
                currency,
                amount,
                _changelist("commissions_ledgerentry", f"{ledger}&currency__exact={currency}"),
            )
            for currency, amount in figures.net.items()
        ]
        if can["ledger"]
        else [],
        "figure_links": {
            "ledger": _changelist("commissions_ledgerentry", ledger),
            "applications": _changelist("attribution_affiliate", "?status__exact=pending"),
            "pending_fx": _changelist("commissions_pendingfx", "?resolved_at__isnull=True"),
            "statements": _changelist("commissions_statement", "?status__exact=draft"),
        },
    }
    return _stock_index(request, {**context, **(extra_context or {})})


# The admin site is Django's default instance; its index view is replaced here (before the
# URLs are built) rather than swapping the whole site class in the settings.
_stock_index = admin.site.index
admin.site.index = admin_index
