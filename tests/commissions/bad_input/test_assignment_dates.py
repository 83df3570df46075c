"""Dates before the first period (1970-01): an assignment or an event dated then would crash
the Event API (FX) or book an entry into a month that can never be closed, which blocks
every later close of the operator. Both are refused."""

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from commissions.models import LedgerEntry, Period, PeriodStatus, PlanAssignment
from commissions.services.booking import plan_assign
from tests.commissions.factories import CommissionPlanFactory, attributed_player, money, send
from tests.factories import AffiliateFactory

from .helpers import manager_of


@pytest.mark.parametrize("valid_from", ["0001-01-01", "1900-01-01"])
def test_the_assignment_form_refuses_a_date_before_the_first_period(client, tenant, valid_from):
    # commissions/services/booking.py plan_assignment_validate: no range check on the dates.
    client.force_login(manager_of(tenant.operator))
    plan = CommissionPlanFactory(operator=tenant.operator, cpa_amount=Decimal("10"))
    affiliate = AffiliateFactory(operator=tenant.operator)
    response = client.post(
        "/admin/commissions/planassignment/add/",
        {"affiliate": affiliate.pk, "plan": plan.pk, "valid_from": valid_from},
    )
    assert response.status_code == 200, "accepted an assignment from " + valid_from
    assert response.context["adminform"].form.errors.get("valid_from")
    assert not PlanAssignment.objects.filter(affiliate=affiliate).exists()


def _assign_or_refused(tenant, valid_from):
    """The affiliate on a EUR CPA plan from `valid_from`, through the service the admin
    calls; None when the service refuses the date (then nothing below can happen)."""
    plan = CommissionPlanFactory(operator=tenant.operator, cpa_amount=Decimal("10"))
    affiliate = AffiliateFactory(operator=tenant.operator, payout_currency="EUR")
    try:
        plan_assign(affiliate=affiliate, plan=plan, valid_from=valid_from)
    except ValidationError:
        return None
    return affiliate


def test_an_fx_event_in_the_first_days_of_year_1_is_not_a_500(tenant):
    # commissions/services/fx.py:100 fx_table_load: min(days) - timedelta(days=10) raises
    # OverflowError for a day before 0001-01-11; the Event API answers 500 (SPEC §8).
    affiliate = _assign_or_refused(tenant, date(1, 1, 1))
    if affiliate is None:
        return
    attributed_player(tenant, affiliate, ref="ancient", registered_at=datetime(1, 1, 1, tzinfo=UTC))
    body = money(
        tenant,
        "first_deposit",
        "ftd-ancient",
        "20",
        when="0001-01-03T00:00:00Z",
        ref="ancient",
        currency="USD",
    )
    try:
        response = tenant.post(body)
    except OverflowError as exc:
        pytest.fail(f"the Event API crashed: OverflowError {exc}")
    assert response.status_code in (200, 201, 400)


def test_an_entry_booked_before_1970_does_not_block_every_close(client, tenant):
    # The entry books into period 1900-01; the close demands that month first ("months
    # close in order"), and month_parse refuses it (before 1970-01): no month of the
    # operator can ever be closed again, and the ledger is append-only.
    affiliate = _assign_or_refused(tenant, date(1900, 1, 1))
    if affiliate is None:
        return
    attributed_player(tenant, affiliate, ref="old", registered_at=datetime(1900, 1, 1, tzinfo=UTC))
    send(
        tenant,
        money(tenant, "first_deposit", "ftd-old", "20", when="1900-01-02T00:00:00Z", ref="old"),
    )
    attributed_player(tenant, affiliate, ref="new")
    send(tenant, money(tenant, "first_deposit", "ftd-new", "20", ref="new"))  # March 2026
    assert LedgerEntry.objects.filter(affiliate=affiliate).count() == 2
    client.force_login(manager_of(tenant.operator))
    response = client.post("/admin/commissions/period/close/", {"month": "2026-03"})
    errors = response.context["form"].errors if response.status_code == 200 else None
    assert Period.objects.filter(
        operator=tenant.operator, month=date(2026, 3, 1), status=PeriodStatus.CLOSED
    ).exists(), f"2026-03 cannot be closed: {errors}"
