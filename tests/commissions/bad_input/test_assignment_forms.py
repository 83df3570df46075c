"""The plan-assignment forms: standalone change page and the affiliate page's inline."""

from decimal import Decimal

from commissions.models import PlanAssignment
from tests.commissions.factories import attributed_player, deal, money, send
from tests.factories import AffiliateFactory

from .helpers import manager_of


def test_an_assignment_cannot_be_moved_to_another_affiliate(client, tenant):
    # PlanAssignmentAdmin's change form keeps the `affiliate` field and save_model's
    # plan_assignment_change saves the whole row: an assignment with a CPA booked under it
    # leaves its affiliate (whose statements lose their month-end plan) for another one that
    # never earned under it. Assignments are "ended, never deleted" (docs/commissions.md).
    affiliate, plan = deal(tenant, cpa_amount=Decimal("10"))
    attributed_player(tenant, affiliate, ref="p1")
    send(tenant, money(tenant, "first_deposit", "ftd-p1", "20", ref="p1"))
    assignment = PlanAssignment.objects.get(affiliate=affiliate)
    other = AffiliateFactory(operator=tenant.operator)
    client.force_login(manager_of(tenant.operator))
    client.post(
        f"/admin/commissions/planassignment/{assignment.pk}/change/",
        {"affiliate": other.pk, "plan": plan.pk, "valid_from": "2020-01-01"},
    )
    assignment.refresh_from_db()
    assert assignment.affiliate_id == affiliate.pk, "the assignment moved to another affiliate"
