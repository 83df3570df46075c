"""Factories and helpers of the commission tests (shared factories: tests.factories)."""

from datetime import UTC, date, datetime
from decimal import Decimal

import factory

from attribution.models import AttributionMethod
from commissions.models import CommissionPlan, FxRate, LedgerEntry, PlanAssignment
from tests.factories import AffiliateFactory, OperatorFactory, PlayerFactory


class CommissionPlanFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CommissionPlan

    operator = factory.SubFactory(OperatorFactory)
    name = factory.Sequence(lambda n: f"Plan {n}")
    currency = "EUR"


class PlanAssignmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PlanAssignment

    plan = factory.SubFactory(CommissionPlanFactory)
    affiliate = factory.SubFactory(
        AffiliateFactory, operator=factory.SelfAttribute("..plan.operator")
    )
    valid_from = date(2020, 1, 1)


class FxRateFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = FxRate

    currency = "USD"
    date = date(2026, 3, 13)
    rate = Decimal("1.2500")


def deal(tenant, *, affiliate=None, valid_from=date(2020, 1, 1), brand=None, **plan_fields):
    """An affiliate of the tenant's operator on a plan built from `plan_fields`."""
    plan = CommissionPlanFactory(operator=tenant.operator, **plan_fields)
    affiliate = affiliate or AffiliateFactory(
        operator=tenant.operator, payout_currency=plan.currency
    )
    PlanAssignmentFactory(plan=plan, affiliate=affiliate, valid_from=valid_from, brand=brand)
    return affiliate, plan


def attributed_player(
    tenant,
    affiliate,
    *,
    ref="player_001",
    registered_at=None,
    country="GB",
    status="active",
    brand=None,
):
    """A player registered and attributed to `affiliate` (as attribution would leave it)."""
    registered_at = registered_at or datetime(2026, 3, 1, 10, tzinfo=UTC)
    return PlayerFactory(
        brand=brand or tenant.brand,
        external_ref=ref,
        registered_at=registered_at,
        country=country,
        status=status,
        affiliate=affiliate,
        attribution_method=AttributionMethod.PROMO_CODE,
        attributed_at=registered_at,
    )


def money(
    tenant,
    event_type,
    key,
    amount,
    *,
    when="2026-03-15T10:00:00Z",
    ref="player_001",
    currency="EUR",
    **extra,
):
    """A money event body for the Event API."""
    body = {
        "event_type": event_type,
        "event_time": when,
        "brand_id": str(tenant.brand.id),
        "player_external_ref": ref,
        "idempotency_key": key,
        "currency": currency,
        "amount": str(amount),
    }
    body.update(extra)
    return body


def send(tenant, *bodies):
    """POST the bodies as one batch; every event must be accepted."""
    response = tenant.post({"events": list(bodies)})
    assert response.status_code == 200, response.content
    results = response.json()["results"]
    assert all(r["status"] == "accepted" for r in results), results
    return [r["event_id"] for r in results]


def entries(**filters) -> list[LedgerEntry]:
    return list(LedgerEntry.objects.filter(**filters).order_by("id"))


def total(**filters) -> Decimal:
    return sum((e.amount for e in LedgerEntry.objects.filter(**filters)), Decimal(0))
