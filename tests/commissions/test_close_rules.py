"""The close's rules at their edges: the plan of a month whose plan ended in it, the tier
basis over an affiliate's plans and at 0, tier thresholds, the base rate and payout
currency that booked entries fix, and months at the edge of the calendar."""

from datetime import UTC, date, datetime
from decimal import Decimal
from io import StringIO

import pytest
from django.contrib.auth.models import Permission
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.db import IntegrityError
from django.forms import modelform_factory

from attribution.services import affiliate_update
from commissions.forms import CommissionPlanForm, PlanTierForm
from commissions.models import LedgerEntry, LedgerKind, PlanAssignment, PlanTier, TierBasis
from commissions.services.booking import ledger_adjust
from commissions.services.periods import (
    PeriodError,
    month_parse,
    period_close,
    tier_adjustment_compute,
)
from tests.commissions.factories import attributed_player, deal, money, send
from tests.commissions.period_factories import (
    APRIL,
    MARCH,
    PlanFactory,
    affiliate_on_plan,
    entry,
    statement_of,
)
from tests.factories import AffiliateFactory, ManagerFactory, OperatorFactory

pytestmark = pytest.mark.django_db

CPA = LedgerKind.CPA
REVSHARE = LedgerKind.REVSHARE


@pytest.fixture
def operator():
    return OperatorFactory()


def assign(affiliate, plan, valid_from, valid_to=None):
    return PlanAssignment.objects.create(
        affiliate=affiliate, plan=plan, valid_from=valid_from, valid_to=valid_to
    )


# --- the plan of a month whose plan ended in it ---------------------------------------------


def test_a_plan_ended_mid_month_still_resets_its_negative_revshare(operator):
    affiliate = AffiliateFactory(operator=operator)
    ended = PlanFactory(operator=operator, negative_carryover=False)
    assign(affiliate, ended, date(2026, 1, 1), date(2026, 3, 20))
    entry(affiliate, REVSHARE, "-200", plan=ended, activity_date=date(2026, 3, 10))
    following = PlanFactory(operator=operator)  # carryover on
    assign(affiliate, following, APRIL)
    entry(affiliate, REVSHARE, "300", plan=following, period=APRIL)

    period_close(operator=operator, month=MARCH)
    period_close(operator=operator, month=APRIL)

    # March is the ended plan's month: its −200 resets, so April pays its 300 whole.
    assert statement_of(affiliate, MARCH).carryover_out == 0
    assert statement_of(affiliate, APRIL).net_payable == Decimal("300")


def test_a_plan_ended_on_the_30th_still_offsets_its_month(operator):
    affiliate = AffiliateFactory(operator=operator)
    ended = PlanFactory(operator=operator, revshare_offsets_cpa=True, negative_carryover=False)
    assign(affiliate, ended, date(2026, 1, 1), date(2026, 3, 30))
    entry(affiliate, REVSHARE, "-60", plan=ended)
    entry(affiliate, CPA, "100", plan=ended)

    period_close(operator=operator, month=MARCH)

    assert statement_of(affiliate).net_payable == Decimal("40")


def test_the_plan_in_force_at_month_end_wins_over_one_that_ended_in_the_month(operator):
    affiliate = AffiliateFactory(operator=operator)
    ended = PlanFactory(operator=operator, negative_carryover=False)
    current = PlanFactory(operator=operator, negative_carryover=True)
    assign(affiliate, ended, date(2026, 1, 1), date(2026, 3, 15))
    assign(affiliate, current, date(2026, 3, 16))
    entry(affiliate, REVSHARE, "-200", plan=current)

    period_close(operator=operator, month=MARCH)

    assert statement_of(affiliate).carryover_out == Decimal("-200")


# --- the tier basis -------------------------------------------------------------------------


def test_a_plan_change_mid_month_keeps_the_affiliates_monthly_ngr_tier(tenant):
    """One player, NGR 1,200 for March; the affiliate moved from plan X to plan Y (same
    RevShare and tiers) on 16 March, so its RevShare is booked 200 under X and 100 under Y.
    Its month's NGR is 1,200 ≥ 1,000: the whole month at 30 % = 360, adjustment 60."""
    affiliate = AffiliateFactory(operator=tenant.operator)
    x, y = (
        PlanFactory(operator=tenant.operator, name=name, tiers=[("1000", "0.30")]) for name in "XY"
    )
    assign(affiliate, x, date(2026, 1, 1), date(2026, 3, 15))
    assign(affiliate, y, date(2026, 3, 16))
    attributed_player(tenant, affiliate)
    send(
        tenant,
        money(tenant, "ngr_update", "n1", "800", when="2026-03-10T10:00:00Z"),
        money(tenant, "ngr_update", "n2", "1200", when="2026-03-20T10:00:00Z"),
    )
    by_plan = {
        e.plan_id: e.amount for e in LedgerEntry.objects.filter(affiliate=affiliate, kind=REVSHARE)
    }
    assert by_plan == {x.pk: Decimal("200"), y.pk: Decimal("100")}

    period_close(operator=tenant.operator, month=MARCH)

    statement = statement_of(affiliate)
    assert statement.revshare_tier_adjustment == Decimal("60")
    assert statement.net_payable == Decimal("360")
    adjustments = LedgerEntry.objects.filter(affiliate=affiliate, kind="revshare_tier_adjustment")
    assert {e.plan_id: e.amount for e in adjustments} == {x.pk: Decimal("40"), y.pk: Decimal("20")}


def test_a_ladder_over_two_plans_pays_each_plan_the_average_rate_of_the_month(operator):
    # Base 25 %; bands 25 % to 1,000, then 35 %. March NGR 1,000 + 1,000 = 2,000: the month
    # earns 1,000 × 25 % + 1,000 × 35 % = 600, an average of 30 %; each plan's 1,000 is
    # paid 300, an adjustment of 50 each: the same 100 as one plan with all 2,000.
    affiliate = AffiliateFactory(operator=operator)
    plans = [
        PlanFactory(operator=operator, tier_mode="ladder", tiers=[("1000", "0.35")])
        for _ in range(2)
    ]
    for plan in plans:
        entry(affiliate, REVSHARE, "250", plan=plan)

    period_close(operator=operator, month=MARCH)

    assert statement_of(affiliate).revshare_tier_adjustment == Decimal("100")


def test_a_negative_plan_lowers_the_month_the_tiers_see(operator):
    # 1,200 on the tiered plan, −400 on another: the month's NGR is 800, below 1,000.
    affiliate = AffiliateFactory(operator=operator)
    tiered = PlanFactory(operator=operator, tiers=[("1000", "0.30")])
    other = PlanFactory(operator=operator)
    entry(affiliate, REVSHARE, "300", plan=tiered)
    entry(affiliate, REVSHARE, "-100", plan=other)

    period_close(operator=operator, month=MARCH)

    assert statement_of(affiliate).revshare_tier_adjustment == 0


@pytest.mark.parametrize("mode", ["tiered", "ladder"])
def test_a_threshold_0_tier_replaces_the_base_rate_also_with_no_cpa(operator, mode):
    tiers = [("0", "0.20"), ("5", "0.30")]
    plan_fields = {"tier_basis": TierBasis.CPA_COUNT, "tier_mode": mode, "tiers": tiers}
    without_cpa, plan_a = affiliate_on_plan(operator, **plan_fields)
    with_one_cpa, plan_b = affiliate_on_plan(operator, **plan_fields)
    entry(without_cpa, REVSHARE, "250", plan=plan_a)
    entry(with_one_cpa, REVSHARE, "250", plan=plan_b)
    entry(with_one_cpa, CPA, "10", plan=plan_b)

    period_close(operator=operator, month=MARCH)

    # 20 % instead of 25 % in both: 1,000 × 20 % − 250.
    assert statement_of(with_one_cpa).revshare_tier_adjustment == Decimal("-50")
    assert statement_of(without_cpa).revshare_tier_adjustment == Decimal("-50")


def test_without_a_threshold_0_tier_no_cpa_keeps_the_base_rate():
    adjustment = tier_adjustment_compute(
        revshare_booked=Decimal("250"),
        base_rate=Decimal("0.25"),
        tiers=[(Decimal("5"), Decimal("0.30"))],
        mode="ladder",
        basis=TierBasis.CPA_COUNT,
        cpa_count=0,
    )
    assert adjustment == 0


# --- what booked entries fix ------------------------------------------------------------------


def tier_form(**data):
    return modelform_factory(PlanTier, form=PlanTierForm, fields=["threshold", "rate"])(data=data)


def test_a_tier_threshold_below_zero_is_refused_by_the_form_and_the_database(operator):
    form = tier_form(threshold="-1000", rate="0.30")
    assert not form.is_valid()
    assert "from 0 up" in str(form.errors["threshold"])
    assert tier_form(threshold="0", rate="0.30").is_valid()
    plan = PlanFactory(operator=operator)
    with pytest.raises(IntegrityError):
        PlanTier.objects.create(plan=plan, threshold=Decimal("-1"), rate=Decimal("0.3"))


def plan_form(plan, **changes):
    plan = type(plan).objects.get(pk=plan.pk)  # a form's validation changes its instance
    data = {
        name: "" if value is None else value
        for name, value in CommissionPlanForm(instance=plan).initial.items()
    }
    data["operator"] = plan.operator_id
    data.update(changes)
    return CommissionPlanForm(data=data, instance=plan)


def test_the_base_rate_of_a_plan_with_booked_revshare_cannot_change(operator):
    affiliate, plan = affiliate_on_plan(operator, tiers=[("1000", "0.30")])
    assert plan_form(plan, revshare_rate="0.20").is_valid()  # nothing booked yet
    entry(affiliate, REVSHARE, "250", plan=plan)

    form = plan_form(plan, revshare_rate="0.20")

    assert not form.is_valid()
    assert "RevShare booked at 0.25" in str(form.errors["revshare_rate"])
    assert plan_form(plan, name="Renamed").is_valid()
    assert plan_form(plan, revshare_rate="0.250").is_valid()  # the same rate


def test_a_cpa_only_entry_does_not_fix_the_base_rate(operator):
    affiliate, plan = affiliate_on_plan(operator)
    entry(affiliate, CPA, "100", plan=plan)
    assert plan_form(plan, revshare_rate="0.20").is_valid()


def test_payout_currency_cannot_change_with_entries_in_an_open_month(operator):
    manager = ManagerFactory(operator=operator)
    affiliate = AffiliateFactory(operator=operator, payout_currency="EUR")
    ledger_adjust(
        affiliate=affiliate, amount=Decimal("30"), currency="EUR", memo="bonus", author=manager
    )
    month = datetime.now(UTC).date().replace(day=1)

    with pytest.raises(ValidationError) as refused:
        affiliate_update(affiliate=affiliate, payout_currency="USD")

    message = str(refused.value.message_dict["payout_currency"])
    assert f"it has EUR entries in {month:%Y-%m}, not yet closed" in message
    affiliate.refresh_from_db()
    assert affiliate.payout_currency == "EUR"


def test_payout_currency_changes_once_the_month_is_closed_and_nothing_is_carried(operator):
    affiliate = AffiliateFactory(operator=operator, payout_currency="EUR")
    entry(affiliate, LedgerKind.MANUAL_ADJUSTMENT, "30", plan=None)  # March
    with pytest.raises(ValidationError):
        affiliate_update(affiliate=affiliate, payout_currency="USD")

    period_close(operator=operator, month=MARCH)

    affiliate_update(affiliate=affiliate, payout_currency="USD")
    affiliate.refresh_from_db()
    assert affiliate.payout_currency == "USD"


def test_payout_currency_cannot_change_while_a_balance_is_carried(operator):
    affiliate = AffiliateFactory(operator=operator, payout_currency="EUR", minimum_payout=100)
    entry(affiliate, LedgerKind.MANUAL_ADJUSTMENT, "30", plan=None)  # below the minimum
    period_close(operator=operator, month=MARCH)

    with pytest.raises(ValidationError) as refused:
        affiliate_update(affiliate=affiliate, payout_currency="USD")

    assert "statement carries a EUR balance" in str(refused.value)


def test_payout_currency_cannot_change_under_an_assigned_plan(operator):
    affiliate, plan = affiliate_on_plan(operator, currency="EUR")
    affiliate.payout_currency = "EUR"
    affiliate.save()

    with pytest.raises(ValidationError) as refused:
        affiliate_update(affiliate=affiliate, payout_currency="USD")

    assert f"it is assigned {plan.name} (EUR)" in str(refused.value)


# --- months at the edge of the calendar ---------------------------------------------------


@pytest.mark.parametrize("value", ["9999-12", "0001-01", "1969-12", "2026-13", "march"])
def test_month_parse_refuses_what_is_not_a_period(value):
    with pytest.raises(ValueError, match="bad month"):
        month_parse(value)


def test_month_parse_reads_a_month():
    assert month_parse(" 2026-03 ") == MARCH


@pytest.mark.parametrize("value", ["9999-12", "0001-01"])
def test_the_close_page_answers_a_month_off_the_calendar_with_a_form_error(client, value):
    operator = OperatorFactory()
    manager = ManagerFactory(operator=operator)
    manager.user_permissions.add(
        *Permission.objects.filter(content_type__app_label__in=["commissions", "attribution"])
    )
    client.force_login(manager)

    response = client.post("/admin/commissions/period/close/", {"month": value})

    assert response.status_code == 200
    assert "a period is a month from 1970-01 to 9998-12" in response.content.decode()


def test_the_command_refuses_a_month_off_the_calendar():
    OperatorFactory()
    with pytest.raises(CommandError, match="a period is a month from 1970-01"):
        call_command("close_period", "9999-12", stdout=StringIO(), stderr=StringIO())


@pytest.mark.parametrize("month", [date(9999, 12, 1), date(1, 1, 1)])
def test_the_service_refuses_a_month_off_the_calendar(operator, month):
    with pytest.raises(PeriodError, match="is not a period"):
        period_close(operator=operator, month=month)


# --- the NGR basis is the NGR itself, before the admin fee ----------------------------------


def test_the_ngr_tier_threshold_is_on_the_months_ngr_before_the_admin_fee(tenant):
    # NGR 1,000 with a 10 % admin fee: RevShare 25 % × 900 = 225. The month's NGR reaches
    # the 1,000 tier: 30 % of the commissionable 900 = 270, an adjustment of 45.
    affiliate, plan = deal(tenant, revshare_rate=Decimal("0.25"), admin_fee_percent=Decimal("10"))
    PlanTier.objects.create(plan=plan, threshold=Decimal("1000"), rate=Decimal("0.30"))
    attributed_player(tenant, affiliate)
    send(
        tenant,
        money(tenant, "ngr_update", "n1", "800", when="2026-03-10T10:00:00Z"),
        money(tenant, "ngr_update", "n2", "1000", when="2026-03-20T10:00:00Z"),
    )
    booked = LedgerEntry.objects.filter(affiliate=affiliate, kind=REVSHARE).order_by("id")
    assert [(e.amount, e.ngr_amount) for e in booked] == [
        (Decimal("180"), Decimal("800")),
        (Decimal("45"), Decimal("200")),
    ]

    period_close(operator=tenant.operator, month=MARCH)

    assert statement_of(affiliate).revshare_tier_adjustment == Decimal("45")


def test_an_older_or_negative_update_moves_the_ngr_basis_with_the_revshare(tenant):
    affiliate, plan = deal(tenant, revshare_rate=Decimal("0.25"), admin_fee_percent=Decimal("20"))
    PlanTier.objects.create(plan=plan, threshold=Decimal("1000"), rate=Decimal("0.30"))
    attributed_player(tenant, affiliate)
    send(
        tenant,
        money(tenant, "ngr_update", "n2", "1500", when="2026-03-20T10:00:00Z"),
        money(tenant, "ngr_update", "n1", "5000", when="2026-03-10T10:00:00Z"),  # older
        money(tenant, "ngr_update", "n3", "-200", when="2026-03-25T10:00:00Z"),
        money(tenant, "ngr_update", "n4", "1100", when="2026-03-30T10:00:00Z"),
    )
    booked = LedgerEntry.objects.filter(affiliate=affiliate, kind=REVSHARE)
    assert sum(e.ngr_amount for e in booked) == Decimal("1100")  # the latest total
    assert sum(e.amount for e in booked) == Decimal("220")  # 25 % × 1,100 × 80 %

    period_close(operator=tenant.operator, month=MARCH)

    # NGR 1,100 ≥ 1,000: 30 % of the commissionable 880 = 264.
    assert statement_of(affiliate).revshare_tier_adjustment == Decimal("44")
