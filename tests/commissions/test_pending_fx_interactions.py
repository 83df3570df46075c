"""Pending FX combined with batches, chargebacks and out-of-order arrival.

Each test compares what the reprocess books with what the same stream books when the rate
was there on time (docs/commissions.md, FX: "books them as if each rate had been there on
time"). Each stream, with the rate created before the events are sent, books exactly
the asserted result (checked when the tests were written); only the pending path
differs."""

from datetime import date
from decimal import Decimal

import pytest

from commissions.models import LedgerKind
from commissions.services import pending_fx_reprocess
from tests.commissions.factories import (
    CommissionPlanFactory,
    FxRateFactory,
    PlanAssignmentFactory,
    attributed_player,
    deal,
    entries,
    money,
    send,
    total,
)

pytestmark = pytest.mark.django_db

TERMS = dict(min_first_deposit=Decimal("20"), min_total_deposits=Decimal("100"))


def _two_plans(tenant):
    """P1 (CPA 100) until 03-15, P2 (CPA 150) from 03-16."""
    affiliate, _ = deal(tenant, cpa_amount=Decimal("100"), valid_from=date(2026, 1, 1), **TERMS)
    first = affiliate.plan_assignments.get()
    first.valid_to = date(2026, 3, 15)
    first.save()
    p2 = CommissionPlanFactory(operator=tenant.operator, cpa_amount=Decimal("150"), **TERMS)
    PlanAssignmentFactory(plan=p2, affiliate=affiliate, valid_from=date(2026, 3, 16))
    return affiliate


def test_batch_pending_ftd_then_qualifying_deposit_books_the_deposits_cpa(tenant):
    """The same stream as test_the_deposit_that_qualifies_books_the_cpa_also_after_a_reprocess,
    but sent as ONE batch: FTD 30 USD (24 EUR) on 03-02, deposit 80 EUR on 03-20. The 03-20
    deposit makes the player qualify: P2's 150 dated 03-20. Sent one by one this holds; in
    one batch the reprocess misses the deposit (same received_at) and books P1's 100 on the
    FTD's date."""
    affiliate = _two_plans(tenant)
    player = attributed_player(tenant, affiliate)
    send(
        tenant,
        money(tenant, "first_deposit", "ftd", "30", currency="USD", when="2026-03-02T10:00:00Z"),
        money(tenant, "deposit", "dep", "80", when="2026-03-20T10:00:00Z"),
    )
    FxRateFactory(currency="USD", date=date(2026, 3, 2), rate=Decimal("1.25"))
    pending_fx_reprocess()
    (cpa,) = entries(player=player, kind=LedgerKind.CPA)
    assert (cpa.amount, cpa.activity_date) == (Decimal("150"), date(2026, 3, 20))


def test_two_pending_deposits_of_one_batch_replay_in_event_time_order(tenant):
    """FTD 30 USD (03-02, key 'z_ftd') and deposit 100 USD (03-20, key 'a_dep') in one batch,
    both waiting for USD. On time: the FTD (24 EUR) does not qualify, the 03-20 deposit does
    (P2: 150 on 03-20). Reprocess sorts the batch's events by (received_at, key), so the
    deposit is replayed before the FTD and the FTD books P1's 100 dated 03-02."""
    affiliate = _two_plans(tenant)
    player = attributed_player(tenant, affiliate)
    rates = [
        dict(currency="USD", date=date(2026, 3, 2), rate=Decimal("1.25")),
        dict(currency="USD", date=date(2026, 3, 20), rate=Decimal("1.25")),
    ]
    send(
        tenant,
        money(tenant, "first_deposit", "z_ftd", "30", currency="USD", when="2026-03-02T10:00:00Z"),
        money(tenant, "deposit", "a_dep", "100", currency="USD", when="2026-03-20T10:00:00Z"),
    )
    for r in rates:
        FxRateFactory(**r)
    pending_fx_reprocess()
    (cpa,) = entries(player=player, kind=LedgerKind.CPA)
    assert (cpa.amount, cpa.activity_date) == (Decimal("150"), date(2026, 3, 20))


def test_a_chargeback_after_the_clawback_window_does_not_cancel_a_pending_cpa(tenant):
    """FTD 100 USD on 03-02 qualifies (CPA 100, clawback 30 days). A chargeback of it dated
    05-01, after the clawback window, never claws back: with the rate on time the CPA
    stands. When the FTD waited for its rate and the chargeback arrived meanwhile, the
    reprocess counts that chargeback against the qualification and the CPA is lost."""
    affiliate, _ = deal(
        tenant, cpa_amount=Decimal("100"), min_first_deposit=Decimal("20"), clawback_days=30
    )
    player = attributed_player(tenant, affiliate)
    send(
        tenant,
        money(tenant, "first_deposit", "ftd", "100", currency="USD", when="2026-03-02T10:00:00Z"),
    )
    send(
        tenant,
        money(
            tenant,
            "chargeback",
            "cb",
            "100",
            currency="USD",
            when="2026-05-01T10:00:00Z",
            deposit_idempotency_key="ftd",
        ),
    )
    FxRateFactory(currency="USD", date=date(2026, 3, 2), rate=Decimal("1.25"))
    pending_fx_reprocess()
    assert total(player=player, kind__in=[LedgerKind.CPA, LedgerKind.CPA_REVERSAL]) == Decimal(
        "100"
    )


def test_a_chargeback_arriving_before_its_deposit_after_the_window_does_not_cancel_the_cpa(tenant):
    """Single vs batch: sent as one batch [FTD 03-02, chargeback of it 05-01] the CPA books
    and stands (the chargeback is after the 30-day clawback window). Sent as two requests in
    the other order (the FTD retried late), the FTD counts that chargeback and books no
    CPA: the result depends on arrival order."""
    affiliate, _ = deal(
        tenant, cpa_amount=Decimal("100"), min_first_deposit=Decimal("20"), clawback_days=30
    )
    player = attributed_player(tenant, affiliate)
    send(
        tenant,
        money(
            tenant,
            "chargeback",
            "cb",
            "100",
            when="2026-05-01T10:00:00Z",
            deposit_idempotency_key="ftd",
        ),
    )
    send(tenant, money(tenant, "first_deposit", "ftd", "100", when="2026-03-02T10:00:00Z"))
    assert total(player=player, kind__in=[LedgerKind.CPA, LedgerKind.CPA_REVERSAL]) == Decimal(
        "100"
    )


def test_a_pending_row_names_the_rate_it_still_waits_for_after_a_reprocess(tenant):
    """FTD 100 USD waits for USD. A 10 GBP chargeback (no GBP rate) arrives meanwhile. The
    USD rate is added and reprocessed: the FTD now waits for the chargeback's GBP rate
    (docs: the row 'names the conversion it waits for'). The row, the admin's pending-FX
    list and GET /events/{id} still say USD→EUR on 03-02, a rate that exists: the manager
    is told to add a rate that is already there, and never learns GBP is missing."""
    from commissions.models import PendingFx

    affiliate, _ = deal(tenant, cpa_amount=Decimal("100"), min_first_deposit=Decimal("20"))
    attributed_player(tenant, affiliate)
    send(
        tenant,
        money(tenant, "first_deposit", "ftd", "100", currency="USD", when="2026-03-02T10:00:00Z"),
    )
    send(tenant, money(tenant, "chargeback", "cb", "10", currency="GBP", when="2026-03-05T10:00Z"))
    FxRateFactory(currency="USD", date=date(2026, 3, 2), rate=Decimal("1.25"))
    result = pending_fx_reprocess()
    assert result.still_pending == 1  # it does still wait
    row = PendingFx.objects.get(event__idempotency_key="ftd")
    assert (row.from_currency, row.to_currency, row.rate_date) == ("GBP", "EUR", date(2026, 3, 5))
