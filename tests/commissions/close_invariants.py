"""Shared checks of the close race tests: the ledger and the statements agree."""

from collections import defaultdict
from decimal import Decimal

from commissions.models import LedgerEntry, LedgerKind, Period, PeriodStatus, Statement

KINDS = [k.value for k in LedgerKind]


def ledger_agrees_with_statements(operator):
    """Every entry of a closed month is on its affiliate's statement of that month (kind by
    kind); ledger total = statements' totals + entries of open months. Returns problems."""
    problems = []
    closed = {
        p.month: p for p in Period.objects.filter(operator=operator, status=PeriodStatus.CLOSED)
    }
    sums = defaultdict(Decimal)
    open_total = Decimal(0)
    for e in LedgerEntry.objects.filter(operator=operator):
        if e.period in closed:
            sums[(e.period, e.affiliate_id, e.kind)] += e.amount
            if e.created_at > closed[e.period].closed_at:
                problems.append(f"{e.kind} {e.amount} booked into closed {e.period} after close")
        else:
            open_total += e.amount
    statements = {
        (s.period.month, s.affiliate_id): s
        for s in Statement.objects.filter(operator=operator).select_related("period")
    }
    stmt_total = Decimal(0)
    for s in statements.values():
        for kind in KINDS:
            stmt_total += getattr(s, kind)
    for (month, affiliate_id, kind), amount in sums.items():
        s = statements.get((month, affiliate_id))
        if s is None:
            problems.append(f"no statement {month} affiliate {affiliate_id} for {kind} {amount}")
        elif getattr(s, kind) != amount:
            problems.append(
                f"statement {month} affiliate {affiliate_id} {kind} {getattr(s, kind)} != "
                f"ledger {amount}"
            )
    all_total = sum((e.amount for e in LedgerEntry.objects.filter(operator=operator)), Decimal(0))
    if all_total != stmt_total + open_total:
        problems.append(f"ledger {all_total} != statements {stmt_total} + open {open_total}")
    return problems
