"""The commission demo data: every ledger kind the booking engine writes has rows, the JSON
has each affiliate's plans, and a second run changes nothing."""

from commissions.models import (
    CommissionPlan,
    LedgerEntry,
    LedgerKind,
    PendingFx,
    Period,
    PlanAssignment,
    Statement,
)
from revvvs.demo import seed_demo


def _snapshot():
    return (
        list(LedgerEntry.objects.order_by("id").values_list("id", "kind", "amount")),
        PendingFx.objects.count(),
        PlanAssignment.objects.count(),
        CommissionPlan.objects.count(),
        list(Statement.objects.order_by("id").values_list("id", "net_payable", "status")),
        list(Period.objects.order_by("month").values_list("month", "status")),
    )


def test_seed_demo_books_every_kind_and_is_idempotent(db):
    first = seed_demo()
    kinds = set(LedgerEntry.objects.values_list("kind", flat=True))
    assert {"cpa", "cpa_reversal", "revshare", "manual_adjustment", "reattribution"} <= kinds
    assert LedgerEntry.objects.filter(kind="revshare", amount__lt=0).exists()
    assert LedgerEntry.objects.filter(kind="revshare", fx_rate__isnull=False).exists()
    assert PendingFx.objects.filter(resolved_at__isnull=True, from_currency="NOK").exists()
    names = {plan["name"] for plan in first["plans"]}
    assert len(names) == 4
    with_plans = [a for a in first["affiliates"] if a.get("plans")]
    assert len(with_plans) == 3
    referrer = next(p for a in with_plans for p in a["plans"] if p["sub_affiliate_rate"] != "0")
    assert referrer["sub_affiliate_rate"] == "0.050000"
    assert any(p["tiers"] for a in with_plans for p in a["plans"])
    # Past months are closed, so statements and the close's own kinds have data too.
    assert first["closed_periods"]
    assert Statement.objects.exists()
    assert set(LedgerKind.values) == kinds

    before = _snapshot()
    second = seed_demo()
    assert _snapshot() == before
    assert second["plans"] == first["plans"]
    assert second["ledger_entries"] == first["ledger_entries"]
