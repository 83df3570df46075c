"""The plan-assignment forms: standalone change page and the affiliate page's inline."""

from datetime import date
from decimal import Decimal

from commissions.models import PlanAssignment
from tests.commissions.factories import attributed_player, deal, money, send
from tests.factories import AffiliateFactory

from .helpers import affiliate_page_data, manager_of


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


def test_ending_an_assignment_and_adding_its_successor_on_one_page(client, tenant):
    # Ending the open row (valid_to 2029-12-31) and adding the next plan from 2030-01-01 is
    # one save: each row is checked against the page as it leaves it, not the database.
    affiliate, plan = deal(tenant, cpa_amount=Decimal("10"))
    client.force_login(manager_of(tenant.operator))
    data = affiliate_page_data(client, affiliate)
    data["plan_assignments-0-valid_to"] = "2029-12-31"
    data["plan_assignments-TOTAL_FORMS"] = "2"
    data.update(
        {
            "plan_assignments-1-affiliate": affiliate.pk,
            "plan_assignments-1-plan": plan.pk,
            "plan_assignments-1-brand": "",
            "plan_assignments-1-valid_from": "2030-01-01",
            "plan_assignments-1-valid_to": "",
        }
    )
    response = client.post(f"/admin/attribution/affiliate/{affiliate.pk}/change/", data)
    errors = None
    if response.status_code == 200:
        errors = [f.formset.errors for f in response.context["inline_admin_formsets"]]
    assert response.status_code == 302, errors
    assert list(
        PlanAssignment.objects.filter(affiliate=affiliate)
        .order_by("valid_from")
        .values_list("valid_from", "valid_to")
    ) == [(date(2020, 1, 1), date(2029, 12, 31)), (date(2030, 1, 1), None)]
