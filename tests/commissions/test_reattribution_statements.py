"""What a reassignment does to the statements: moved RevShare and CPA count in the RevShare and
CPA lines (the plan's carryover and offset rules apply to them), and the old affiliate gives
back what its closed statements paid for the player, not more."""

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from attribution.services import player_reassign
from commissions.models import LedgerEntry, LedgerKind, Statement
from commissions.services.periods import figures_compute, month_next, period_close
from tests.commissions.factories import attributed_player, deal, money, send
from tests.commissions.period_factories import entry
from tests.factories import ManagerFactory

MARCH = date(2026, 3, 1)
FUTURE = datetime(2027, 1, 1, tzinfo=UTC)


def this_month():
    return datetime.now(UTC).date().replace(day=1)


def close_through(operator, last, first=MARCH):
    month = first
    while month <= last:
        period_close(operator=operator, month=month, now=FUTURE)
        month = month_next(month)


def statement_of(affiliate, month):
    return Statement.objects.filter(affiliate=affiliate, period__month=month).first()


def reassign(tenant, player, to_affiliate):
    player.refresh_from_db()
    player_reassign(
        player=player,
        to_affiliate=to_affiliate,
        reason="the referral was proved",
        author=ManagerFactory(operator=tenant.operator),
    )


def moved_revshare(affiliate):
    return sum(
        e.amount
        for e in LedgerEntry.objects.filter(
            affiliate=affiliate, kind=LedgerKind.REATTRIBUTION, reattributed_kind="revshare"
        )
    )


def test_a_negative_month_the_close_reset_is_not_given_back_and_does_not_eat_the_new_cpa(tenant):
    a, _ = deal(tenant, revshare_rate=Decimal("0.25"), negative_carryover=False)
    b, b_plan = deal(tenant, revshare_rate=Decimal("0.25"), negative_carryover=False)
    player = attributed_player(tenant, a)
    send(tenant, money(tenant, "ngr_update", "n_mar", "-1000", when="2026-03-30T10:00:00Z"))
    period_close(operator=tenant.operator, month=MARCH)
    assert statement_of(a, MARCH).net_payable == 0  # the −250 was reset: it cost A nothing

    reassign(tenant, player, b)
    entry(b, LedgerKind.CPA, "100", plan=b_plan, period=this_month())
    close_through(tenant.operator, this_month(), first=month_next(MARCH))

    assert moved_revshare(a) == 0  # nothing to give back
    assert statement_of(a, this_month()) is None
    # B's plan resets negative RevShare and does not offset it: its CPA is paid whole.
    b_month = statement_of(b, this_month())
    assert moved_revshare(b) == Decimal("-250")
    assert (b_month.net_payable, b_month.rollover_out) == (Decimal("100"), 0)


def test_a_closed_month_gives_back_only_what_its_statement_paid_for_the_player(tenant):
    a, _ = deal(tenant, revshare_rate=Decimal("0.25"), negative_carryover=False)
    b, _ = deal(tenant, revshare_rate=Decimal("0.25"))
    player = attributed_player(tenant, a)
    attributed_player(tenant, a, ref="player_002")
    send(
        tenant,
        money(tenant, "ngr_update", "n1", "1200", when="2026-03-30T10:00:00Z"),  # +300
        money(tenant, "ngr_update", "n2", "-800", when="2026-03-30T10:00:00Z", ref="player_002"),
    )
    period_close(operator=tenant.operator, month=MARCH)
    assert statement_of(a, MARCH).net_payable == Decimal("100")  # 300 − 200

    reassign(tenant, player, b)

    # Without the player March was −200, reset: A was paid 100 for it, not 300.
    assert moved_revshare(a) == Decimal("-100")
    assert moved_revshare(b) == Decimal("300")


def test_a_move_inside_the_open_month_nets_in_its_revshare_line(tenant):
    a, _ = deal(tenant, revshare_rate=Decimal("0.25"), negative_carryover=False)
    b, _ = deal(tenant, revshare_rate=Decimal("0.25"), negative_carryover=False)
    player = attributed_player(tenant, a)
    attributed_player(tenant, a, ref="player_002")
    month = this_month()
    when = f"{month:%Y-%m}-01T10:00:00Z"
    send(
        tenant,
        money(tenant, "ngr_update", "n1", "-1000", when=when),  # −250
        money(tenant, "ngr_update", "n2", "400", when=when, ref="player_002"),  # +100
    )

    reassign(tenant, player, b)
    period_close(operator=tenant.operator, month=month, now=FUTURE)

    # Without the player A's month is 100; the move nets −250 + 250 in the RevShare line
    # (as a line of its own it paid 250 on top of a reset −150).
    assert statement_of(a, month).net_payable == Decimal("100")
    # B's moved −250 resets under its own plan.
    assert (statement_of(b, month).net_payable, statement_of(b, month).rollover_out) == (0, 0)


def test_a_carried_negative_is_cancelled_by_its_move():
    # Carryover on: March's −250 carried in; the move gives it back in the RevShare line.
    figures = figures_compute(
        totals={LedgerKind.REATTRIBUTION: Decimal("250")},
        previous_carryover_out=Decimal("-250"),
        previous_rollover_out=Decimal("0"),
        negative_carryover=True,
        revshare_offsets_cpa=False,
        minimum_payout=Decimal("0"),
        reattributed_revshare=Decimal("250"),
    )
    assert (figures.carryover_out, figures.net_payable) == (0, 0)


@pytest.mark.parametrize("offsets", [False, True])
def test_moved_negative_revshare_follows_the_offset_rule(offsets):
    figures = figures_compute(
        totals={LedgerKind.CPA: Decimal("100"), LedgerKind.REATTRIBUTION: Decimal("-60")},
        previous_carryover_out=Decimal("0"),
        previous_rollover_out=Decimal("0"),
        negative_carryover=False,
        revshare_offsets_cpa=offsets,
        minimum_payout=Decimal("0"),
        reattributed_revshare=Decimal("-60"),
    )
    assert figures.net_payable == (Decimal("40") if offsets else Decimal("100"))


def test_moved_cpa_counts_as_cpa_for_the_offset():
    figures = figures_compute(
        totals={LedgerKind.REVSHARE: Decimal("-30"), LedgerKind.REATTRIBUTION: Decimal("80")},
        previous_carryover_out=Decimal("0"),
        previous_rollover_out=Decimal("0"),
        negative_carryover=False,
        revshare_offsets_cpa=True,
        minimum_payout=Decimal("0"),
        reattributed_cpa=Decimal("80"),
    )
    assert figures.net_payable == Decimal("50")
