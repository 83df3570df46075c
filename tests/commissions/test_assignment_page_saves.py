"""The affiliate page's plan assignments, moving a plan switch date in one save.

PlanAssignmentForm.clean checks each row against the database *without* the page's rows
(exclude_pks=page_pks) and PlanAssignmentFormSet.clean checks the page's rows among
themselves, so a page that moves the switch between two assignments earlier (old plan ends
sooner, new plan starts sooner) validates. But the rows are then saved one by one through
plan_assignment_change (commissions/forms.py PlanAssignmentFormSet.save_existing), each
re-validated against the database with only itself excluded: the later row, saved first
(the inline lists -valid_from first), clashes with the earlier row's *old* end date and
plan_assignment_change raises ValidationError inside the admin's save -> a 500.
"""

from datetime import date
from decimal import Decimal

from django.core.exceptions import ValidationError

from commissions.models import PlanAssignment
from tests.commissions.bad_input.helpers import affiliate_page_data, manager_of
from tests.commissions.factories import CommissionPlanFactory, deal


def test_moving_a_plan_switch_earlier_on_the_affiliate_page_is_not_a_500(client, tenant):
    affiliate, old = deal(tenant, cpa_amount=Decimal("10"))
    first = PlanAssignment.objects.get(affiliate=affiliate)
    first.valid_to = date(2026, 6, 30)
    first.save()
    new = CommissionPlanFactory(operator=tenant.operator, cpa_amount=Decimal("20"))
    PlanAssignment.objects.create(affiliate=affiliate, plan=new, valid_from=date(2026, 7, 1))
    client.force_login(manager_of(tenant.operator))
    data = affiliate_page_data(client, affiliate)
    rows = {
        data[f"plan_assignments-{i}-id"]: i
        for i in range(int(data["plan_assignments-TOTAL_FORMS"]))
    }
    later = PlanAssignment.objects.get(affiliate=affiliate, plan=new)
    # The switch moves from 1 July to 1 April: old plan to 31 March, new plan from 1 April.
    data[f"plan_assignments-{rows[first.pk]}-valid_to"] = "2026-03-31"
    data[f"plan_assignments-{rows[later.pk]}-valid_from"] = "2026-04-01"

    try:
        response = client.post(f"/admin/attribution/affiliate/{affiliate.pk}/change/", data)
    except ValidationError as exc:
        raise AssertionError(f"500: the save raised {exc}") from None

    assert response.status_code == 302
    assert list(
        PlanAssignment.objects.filter(affiliate=affiliate)
        .order_by("valid_from")
        .values_list("valid_from", "valid_to")
    ) == [(date(2020, 1, 1), date(2026, 3, 31)), (date(2026, 4, 1), None)]


def test_saving_a_page_with_an_all_brands_and_a_brand_assignment(client, tenant):
    """The page's final overlap check sees assignments with a brand and without one (brand
    ids are UUIDs: they must never be compared with a missing brand)."""
    affiliate, _ = deal(tenant, cpa_amount=Decimal("10"))
    branded = CommissionPlanFactory(operator=tenant.operator, cpa_amount=Decimal("20"))
    PlanAssignment.objects.create(
        affiliate=affiliate, plan=branded, brand=tenant.brand, valid_from=date(2026, 1, 1)
    )
    client.force_login(manager_of(tenant.operator))
    data = affiliate_page_data(client, affiliate)
    data["company"] = "Renamed Media"

    response = client.post(f"/admin/attribution/affiliate/{affiliate.pk}/change/", data)

    assert response.status_code == 302
    affiliate.refresh_from_db()
    assert affiliate.company == "Renamed Media"
    assert PlanAssignment.objects.filter(affiliate=affiliate).count() == 2
