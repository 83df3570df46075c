"""Factories for the period and statement tests: plans, assignments and ledger entries built
directly, without going through the booking engine."""

from datetime import date
from decimal import Decimal

import factory

from commissions.models import (
    CommissionPlan,
    LedgerEntry,
    LedgerKind,
    PlanAssignment,
    PlanTier,
    Statement,
)
from tests.factories import AffiliateFactory, OperatorFactory

MARCH = date(2026, 3, 1)
APRIL = date(2026, 4, 1)
MAY = date(2026, 5, 1)


class PlanFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CommissionPlan
        skip_postgeneration_save = True

    operator = factory.SubFactory(OperatorFactory)
    name = factory.Sequence(lambda n: f"Plan {n}")
    currency = "EUR"
    revshare_rate = Decimal("0.25")

    @factory.post_generation
    def tiers(obj, create, extracted, **kwargs):  # noqa: N805
        """`PlanFactory(tiers=[("1000", "0.30"), ...])`: (threshold, rate) pairs."""
        for threshold, rate in extracted or []:
            PlanTier.objects.create(plan=obj, threshold=Decimal(threshold), rate=Decimal(rate))


class AssignmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PlanAssignment

    affiliate = factory.SubFactory(AffiliateFactory)
    plan = factory.SubFactory(PlanFactory, operator=factory.SelfAttribute("..affiliate.operator"))
    valid_from = date(2020, 1, 1)


class LedgerEntryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = LedgerEntry

    affiliate = factory.SubFactory(AffiliateFactory)
    operator = factory.SelfAttribute("affiliate.operator")
    kind = LedgerKind.REVSHARE
    amount = Decimal("100.0000")
    currency = "EUR"
    period = MARCH
    activity_date = factory.LazyAttribute(lambda e: e.period.replace(day=15))


def entry(affiliate, kind, amount, *, period=MARCH, plan=None, **fields) -> LedgerEntry:
    return LedgerEntryFactory(
        affiliate=affiliate,
        kind=kind,
        amount=Decimal(amount),
        period=period,
        plan=plan,
        currency=plan.currency if plan else fields.pop("currency", "EUR"),
        **fields,
    )


def affiliate_on_plan(operator, **plan_fields):
    """An approved affiliate of `operator` with an all-brands plan; returns (affiliate, plan)."""
    minimum_payout = plan_fields.pop("minimum_payout", Decimal("0"))
    referrer = plan_fields.pop("referrer", None)
    affiliate = AffiliateFactory(
        operator=operator, minimum_payout=minimum_payout, referrer=referrer
    )
    plan = PlanFactory(operator=operator, **plan_fields)
    AssignmentFactory(affiliate=affiliate, plan=plan)
    return affiliate, plan


def statement_of(affiliate, month=MARCH) -> Statement:
    return Statement.objects.get(affiliate=affiliate, period__month=month)
