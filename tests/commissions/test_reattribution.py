"""Reassignment moves the player's commission (SPEC §4, §5), through attribution's service."""

from datetime import date
from decimal import Decimal

import pytest
from django.utils import timezone

from attribution.services import player_reassign
from commissions.models import LedgerKind, Period, PeriodStatus, PlayerMonthNgr
from tests.commissions.factories import attributed_player, deal, entries, money, send, total
from tests.factories import ManagerFactory

A_PLAN = dict(
    cpa_amount=Decimal("100"), min_first_deposit=Decimal("10"), revshare_rate=Decimal("0.25")
)
B_PLAN = dict(
    cpa_amount=Decimal("80"), min_first_deposit=Decimal("10"), revshare_rate=Decimal("0.4")
)


@pytest.fixture
def moved(tenant):
    """Player earned A a CPA and RevShare in March and April; then moved to B."""
    a, _ = deal(tenant, **A_PLAN)
    b, b_plan = deal(tenant, **B_PLAN)
    player = attributed_player(tenant, a)
    send(
        tenant,
        money(tenant, "first_deposit", "ftd1", "50", when="2026-03-02T10:00:00Z"),
        money(tenant, "ngr_update", "n_mar", "200", when="2026-03-30T10:00:00Z"),
        money(tenant, "ngr_update", "n_apr", "-40", when="2026-04-30T10:00:00Z"),
    )
    assert total(affiliate=a) == Decimal("100") + Decimal("50") - Decimal("10")
    manager = ManagerFactory(operator=tenant.operator)
    Period.objects.create(
        operator=tenant.operator, month=date(2026, 3, 1), status=PeriodStatus.CLOSED
    )
    player_reassign(
        player=player, to_affiliate=b, reason="affiliate B proved the referral", author=manager
    )
    return a, b, player, manager


def test_old_affiliate_is_reversed_and_new_one_booked_in_the_open_period(tenant, moved):
    a, b, player, manager = moved
    assert total(affiliate=a) == 0
    assert total(affiliate=b) == Decimal("80") + Decimal("80") - Decimal("16")
    today = timezone.now().date()
    moves = entries(player=player, kind=LedgerKind.REATTRIBUTION)
    assert {(e.affiliate, e.reattributed_kind, e.amount) for e in moves} == {
        (a, "cpa", Decimal("-100")),
        (a, "revshare", Decimal("-40")),
        (b, "cpa", Decimal("80")),
        (b, "revshare", Decimal("80")),
        (b, "revshare", Decimal("-16")),
    }
    for entry in moves:
        assert entry.period == today.replace(day=1)
        assert entry.author == manager
        assert entry.memo
    # The original rows are untouched: the CPA is still the single `cpa` row of the player.
    assert [e.affiliate for e in entries(player=player, kind=LedgerKind.CPA)] == [a]


def test_later_events_book_for_the_new_affiliate_from_the_moved_state(tenant, moved):
    a, b, player, _ = moved
    send(tenant, money(tenant, "ngr_update", "n_apr2", "10", when="2026-04-30T11:00:00Z"))
    # April now 10: B's RevShare for April is 4, after -16 was moved: +20.
    assert entries(player=player, kind=LedgerKind.REVSHARE)[-1].amount == Decimal("20")
    assert entries(player=player, kind=LedgerKind.REVSHARE)[-1].affiliate == b
    state = PlayerMonthNgr.objects.get(player=player, month=date(2026, 4, 1))
    assert state.revshare_booked == Decimal("4")
    send(tenant, money(tenant, "first_deposit", "ftd2", "50", when="2026-03-03T10:00:00Z"))
    assert len(entries(player=player, kind=LedgerKind.CPA)) == 1  # still once per player
    assert total(affiliate=a) == 0


def test_a_chargeback_after_the_move_claws_back_the_new_affiliates_cpa(tenant, moved):
    a, b, player, _ = moved
    send(tenant, money(tenant, "chargeback", "cb1", "50", when="2026-04-01T10:00:00Z"))
    (reversal,) = entries(player=player, kind=LedgerKind.CPA_REVERSAL)
    assert (reversal.affiliate, reversal.amount) == (b, Decimal("-80"))
    assert total(affiliate=a) == 0


def test_moving_to_organic_only_reverses(tenant, moved):
    a, b, player, manager = moved
    player.refresh_from_db()
    player_reassign(player=player, to_affiliate=None, reason="fraudulent referral", author=manager)
    assert total(affiliate=b) == 0
    send(tenant, money(tenant, "ngr_update", "n_apr2", "1000", when="2026-04-30T12:00:00Z"))
    assert total(player=player) == 0


def test_moving_back_restores_the_first_affiliate(tenant, moved):
    a, b, player, manager = moved
    player.refresh_from_db()
    player_reassign(player=player, to_affiliate=a, reason="back", author=manager)
    assert total(affiliate=b) == 0
    assert total(affiliate=a) == Decimal("140")


def test_new_affiliate_without_cpa_in_its_plan_gets_only_revshare(tenant):
    a, _ = deal(tenant, **A_PLAN)
    b, _ = deal(tenant, revshare_rate=Decimal("0.5"))
    player = attributed_player(tenant, a)
    send(
        tenant,
        money(tenant, "first_deposit", "ftd1", "50", when="2026-03-02T10:00:00Z"),
        money(tenant, "ngr_update", "n1", "100", when="2026-03-30T10:00:00Z"),
    )
    player_reassign(
        player=player, to_affiliate=b, reason="r", author=ManagerFactory(operator=tenant.operator)
    )
    assert total(affiliate=a) == 0
    assert total(affiliate=b) == Decimal("50")


def test_a_clawed_back_cpa_does_not_move(tenant):
    a, _ = deal(tenant, **A_PLAN)
    b, _ = deal(tenant, **B_PLAN)
    player = attributed_player(tenant, a)
    send(
        tenant,
        money(tenant, "first_deposit", "ftd1", "50", when="2026-03-02T10:00:00Z"),
        money(tenant, "chargeback", "cb1", "50", when="2026-03-03T10:00:00Z"),
    )
    assert total(affiliate=a) == 0
    player_reassign(
        player=player, to_affiliate=b, reason="r", author=ManagerFactory(operator=tenant.operator)
    )
    assert entries(player=player, kind=LedgerKind.REATTRIBUTION) == []


def test_a_player_without_cpa_qualifies_under_the_new_affiliates_plan(tenant):
    a, _ = deal(tenant, revshare_rate=Decimal("0.5"))  # no CPA in A's deal
    b, b_plan = deal(tenant, **B_PLAN)
    player = attributed_player(tenant, a)
    (ftd,) = send(tenant, money(tenant, "first_deposit", "ftd1", "50", when="2026-03-02T10:00:00Z"))
    assert entries(player=player) == []
    player_reassign(
        player=player, to_affiliate=b, reason="r", author=ManagerFactory(operator=tenant.operator)
    )
    (cpa,) = entries(player=player, kind=LedgerKind.CPA)
    assert (cpa.affiliate, cpa.amount, cpa.plan, str(cpa.source_event_id)) == (
        b,
        Decimal("80"),
        b_plan,
        ftd,
    )
