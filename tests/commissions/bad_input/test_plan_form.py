"""The plan admin: tiers formset and the fields guarded once a plan is in use."""

from datetime import date
from decimal import Decimal

from django.db import IntegrityError

from commissions.models import CommissionPlan, LedgerKind, PlanTier
from commissions.services.periods import period_close
from tests.commissions.factories import deal
from tests.commissions.period_factories import MARCH, AssignmentFactory, PlanFactory, entry
from tests.factories import AffiliateFactory

from .helpers import manager_of, plan_form, superuser


def test_swapping_two_tier_thresholds_is_not_a_500(client, tenant):
    # Each tier form is checked alone against the database (the unique check on (plan,
    # threshold) is not run for the inline's rows), then the rows are saved one by one:
    # the first UPDATE hits tier_unique_threshold -> IntegrityError, a 500.
    client.force_login(manager_of(tenant.operator))
    plan = PlanFactory(operator=tenant.operator, revshare_rate=Decimal("0.25"))
    low = PlanTier.objects.create(plan=plan, threshold=Decimal("1000"), rate=Decimal("0.30"))
    high = PlanTier.objects.create(plan=plan, threshold=Decimal("2000"), rate=Decimal("0.35"))
    data = plan_form(
        name=plan.name,
        revshare_rate="0.25",
        **{
            "tiers-TOTAL_FORMS": "2",
            "tiers-INITIAL_FORMS": "2",
            "tiers-0-id": low.pk,
            "tiers-0-plan": plan.pk,
            "tiers-0-threshold": "2000",
            "tiers-0-rate": "0.30",
            "tiers-1-id": high.pk,
            "tiers-1-plan": plan.pk,
            "tiers-1-threshold": "1000",
            "tiers-1-rate": "0.35",
        },
    )
    try:
        response = client.post(f"/admin/commissions/commissionplan/{plan.pk}/change/", data)
    except IntegrityError as exc:
        raise AssertionError(f"500: {exc}") from None
    assert response.status_code in (200, 302)


def test_clearing_the_base_rate_of_a_plan_with_revshare_does_not_cut_the_tier(client, tenant):
    # commissions/forms.py clean_revshare_rate refuses a new rate once RevShare is booked,
    # but not an empty one (`rate is not None`). The close then leaves that plan's RevShare
    # out of the affiliate's monthly NGR (periods.py _book_tier_adjustments skips plans
    # without a rate), so the tier of the affiliate's other plan is not reached.
    operator = tenant.operator
    affiliate = AffiliateFactory(operator=operator)
    old = PlanFactory(operator=operator, name="old", revshare_rate=Decimal("0.25"))
    new = PlanFactory(
        operator=operator, name="new", revshare_rate=Decimal("0.25"), tiers=[("1500", "0.30")]
    )
    AssignmentFactory(
        affiliate=affiliate, plan=old, valid_from=date(2020, 1, 1), valid_to=date(2026, 3, 15)
    )
    AssignmentFactory(affiliate=affiliate, plan=new, valid_from=date(2026, 3, 16))
    entry(affiliate, LedgerKind.REVSHARE, "250", plan=old)  # NGR 1,000
    entry(affiliate, LedgerKind.REVSHARE, "250", plan=new)  # NGR 1,000: month 2,000 >= 1,500
    client.force_login(manager_of(operator))
    client.post(
        f"/admin/commissions/commissionplan/{old.pk}/change/",
        plan_form(name="old", revshare_rate=""),
    )
    period_close(operator=operator, month=MARCH)
    adjustment = sum(
        e.amount for e in affiliate.ledger.filter(kind=LedgerKind.REVSHARE_TIER_ADJUSTMENT)
    )
    # 250 x (0.30 - 0.25) / 0.25 = 50 on the new plan's RevShare, as before the edit.
    rate_now = CommissionPlan.objects.get(pk=old.pk).revshare_rate
    assert adjustment == Decimal("50"), f"tier adjustment {adjustment}; the rate now {rate_now}"


def test_a_superuser_cannot_move_an_assigned_plan_to_another_operator(client, tenant, other_tenant):
    # The superuser's plan form has the operator field and nothing checks it against the
    # plan's assignments/entries (only the currency is guarded): operator B's plan is then
    # assigned to operator A's affiliate, B's managers edit A's affiliate's terms, and A's
    # booking keeps using it.
    affiliate, plan = deal(tenant, cpa_amount=Decimal("10"))
    client.force_login(superuser())
    client.post(
        f"/admin/commissions/commissionplan/{plan.pk}/change/",
        plan_form(name=plan.name, cpa_amount="10", operator=other_tenant.operator.pk),
    )
    plan.refresh_from_db()
    assert plan.operator_id == tenant.operator.pk, (
        "the plan assigned to an affiliate of operator A now belongs to operator B"
    )
