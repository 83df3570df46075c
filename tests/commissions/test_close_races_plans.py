"""The close racing a plan assignment, with a real thread on PostgreSQL (the other
races checked with it passed: test_races.py)."""

import threading
from datetime import date
from decimal import Decimal

import pytest

from commissions.services import periods, plan_assign
from commissions.services.periods import period_close
from tests.commissions.close_invariants import ledger_agrees_with_statements
from tests.commissions.factories import CommissionPlanFactory, attributed_player, deal, money, send
from tests.threads import Bg

pytestmark = pytest.mark.django_db(transaction=True)

MARCH = date(2026, 3, 1)
PLAN = dict(
    cpa_amount=Decimal("100"), min_first_deposit=Decimal("10"), revshare_rate=Decimal("0.25")
)


def test_a_plan_assigned_while_the_close_runs_does_not_crash_the_close(tenant, monkeypatch):
    """A new plan assigned (for one brand, from a date in the month) while the close is
    between its steps: the close read the operator's plans once at its start, then looks the
    new assignment's plan up in that dict."""
    a, _ = deal(tenant, **PLAN)
    attributed_player(tenant, a, ref="p1")
    send(tenant, money(tenant, "ngr_update", "n1", "200", ref="p1", when="2026-03-10T10:00:00Z"))

    paused, go = threading.Event(), threading.Event()
    original = periods._book_tier_adjustments

    def tiers_then_wait(*args, **kwargs):
        booked = original(*args, **kwargs)
        paused.set()
        go.wait(timeout=30)
        return booked

    monkeypatch.setattr(periods, "_book_tier_adjustments", tiers_then_wait)
    closing = Bg(lambda: period_close(operator=tenant.operator, month=MARCH))
    assert paused.wait(timeout=30)
    new_plan = CommissionPlanFactory(operator=tenant.operator, revshare_rate=Decimal("0.3"))
    plan_assign(affiliate=a, plan=new_plan, brand=tenant.brand, valid_from=date(2026, 3, 20))
    go.set()
    closing.join()

    assert closing.error is None, repr(closing.error)
    assert ledger_agrees_with_statements(tenant.operator) == []
