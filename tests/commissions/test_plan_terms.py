"""Editing a plan's CPA terms must not claw back CPAs already earned under them.

SPEC §5 / docs/commissions.md: a chargeback within clawback_days "that brings the player's
deposits net of chargebacks below the qualification thresholds" books a cpa_reversal.
_book_clawback (commissions/services/booking.py) re-checks the thresholds with the plan row
as it is *now* (credit_entry.plan, read from the database), so a manager who raises a
plan's baseline for new players makes every earlier player's tiniest chargeback claw back
a CPA whose deposits still meet the terms it was earned under. The plan admin
(commissions/forms.py CommissionPlanForm) locks the RevShare rate once RevShare is booked
("new terms are a new plan") but not the CPA terms.
"""

from decimal import Decimal

import pytest

from commissions.models import CommissionPlan, LedgerKind
from tests.commissions.bad_input.helpers import manager_of, plan_form
from tests.commissions.factories import attributed_player, deal, entries, money, send, total

pytestmark = pytest.mark.django_db


def test_raising_a_plans_deposit_baseline_does_not_claw_back_earlier_cpas(client, tenant):
    affiliate, plan = deal(
        tenant,
        cpa_amount=Decimal("100"),
        min_first_deposit=Decimal("20"),
        min_total_deposits=Decimal("50"),
        clawback_days=90,
    )
    player = attributed_player(tenant, affiliate)
    send(
        tenant,
        money(tenant, "first_deposit", "ftd1", "30", when="2026-03-02T10:00:00Z"),
        money(tenant, "deposit", "dep1", "30", when="2026-03-03T10:00:00Z"),
    )
    assert len(entries(player=player, kind=LedgerKind.CPA)) == 1  # 60 >= 50: earned

    # New terms for new players: the manager raises the baseline on the plan page.
    client.force_login(manager_of(tenant.operator))
    response = client.post(
        f"/admin/commissions/commissionplan/{plan.pk}/change/",
        plan_form(
            name=plan.name,
            cpa_amount="100",
            min_first_deposit="20",
            min_total_deposits="100",
            clawback_days="90",
        ),
    )
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "the plan has CPAs booked under min_total_deposits = 50" in str(
        errors["min_total_deposits"]
    )
    assert CommissionPlan.objects.get(pk=plan.pk).min_total_deposits == Decimal("50")

    # A 1.00 chargeback: net deposits 59, still above the 50 the CPA was earned under.
    send(tenant, money(tenant, "chargeback", "cb1", "1", when="2026-04-01T10:00:00Z"))

    assert entries(player=player, kind=LedgerKind.CPA_REVERSAL) == []
    assert total(affiliate=affiliate) == Decimal("100")
