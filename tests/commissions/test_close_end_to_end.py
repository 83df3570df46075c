"""End to end: events through the Event API, booked by the engine, then the month closed."""

from datetime import date
from decimal import Decimal

from commissions.models import LedgerEntry, LedgerKind, PlanAssignment, PlanTier
from commissions.services.periods import period_close
from tests.commissions.period_factories import PlanFactory, statement_of
from tests.conftest import event
from tests.factories import AffiliateFactory, PromoCodeFactory

OCTOBER, NOVEMBER = date(2026, 10, 1), date(2026, 11, 1)


def post(tenant, **fields):
    response = tenant.post(event(tenant.brand, **fields))
    assert response.status_code == 201, response.content
    return response.json()["event_id"]


def money(tenant, event_type, key, amount, when):
    return post(
        tenant,
        event_type=event_type,
        event_time=when,
        idempotency_key=key,
        currency="EUR",
        amount=amount,
    )


def test_events_booked_then_closed_then_a_late_event(tenant):
    affiliate = AffiliateFactory(operator=tenant.operator)
    plan = PlanFactory(
        operator=tenant.operator, cpa_amount=Decimal("50"), revshare_rate=Decimal("0.25")
    )
    PlanTier.objects.create(plan=plan, threshold=Decimal("1000"), rate=Decimal("0.30"))
    PlanAssignment.objects.create(affiliate=affiliate, plan=plan, valid_from=date(2026, 1, 1))
    PromoCodeFactory(affiliate=affiliate, brand=tenant.brand, code="WELCOME")

    post(tenant, event_time="2026-10-02T10:00:00Z", promo_code="WELCOME", idempotency_key="reg")
    money(tenant, "first_deposit", "ftd", "100", "2026-10-02T11:00:00Z")
    money(tenant, "ngr_update", "ngr1", "800", "2026-10-10T00:00:00Z")
    money(tenant, "ngr_update", "ngr2", "2000", "2026-10-20T00:00:00Z")
    booked = LedgerEntry.objects.filter(affiliate=affiliate, period=OCTOBER)
    assert sorted(booked.values_list("kind", flat=True)) == ["cpa", "revshare", "revshare"]

    result = period_close(operator=tenant.operator, month=OCTOBER)

    assert result.created and result.tier_adjustments == 1
    october = statement_of(affiliate, OCTOBER)
    # RevShare 2,000 × 25 % = 500 at the base rate; the 30 % tier adds 100.
    assert (october.cpa, october.revshare, october.revshare_tier_adjustment) == (
        Decimal("50"),
        Decimal("500"),
        Decimal("100"),
    )
    assert october.net_payable == Decimal("650")

    # A late October update books its difference into the open November, keeping its date.
    money(tenant, "ngr_update", "ngr3", "2400", "2026-10-31T23:00:00Z")
    late = LedgerEntry.objects.get(affiliate=affiliate, kind=LedgerKind.REVSHARE, period=NOVEMBER)
    assert (late.amount, late.activity_date) == (Decimal("100"), date(2026, 10, 31))
    assert period_close(operator=tenant.operator, month=OCTOBER).created is False
    october.refresh_from_db()
    assert october.net_payable == Decimal("650")
