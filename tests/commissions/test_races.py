"""Races on PostgreSQL, with real threads: reassignments racing each other, the events of their
player and reprocess runs; payout-currency changes racing plan assignments. The money moves
once, no event's effect is lost, nothing deadlocks."""

import threading
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from attribution.models import Affiliate, AttributionMethod, Reassignment
from attribution.services import affiliate_update, player_reassign
from commissions.models import LedgerEntry, LedgerKind, PendingFx, PlanAssignment, PlayerMonthNgr
from commissions.services import pending_fx_reprocess, plan_assign
from events.services import events_ingest
from tests.commissions.factories import (
    CommissionPlanFactory,
    attributed_player,
    deal,
    money,
    send,
    total,
)
from tests.factories import AffiliateFactory, ManagerFactory, PlayerFactory
from tests.threads import Bg, Held

pytestmark = pytest.mark.django_db(transaction=True)

PLAN = dict(
    cpa_amount=Decimal("100"), min_first_deposit=Decimal("10"), revshare_rate=Decimal("0.25")
)


def organic_player(tenant, ref="player_001"):
    at = datetime(2026, 3, 1, 10, tzinfo=UTC)
    return PlayerFactory(
        brand=tenant.brand,
        external_ref=ref,
        registered_at=at,
        country="GB",
        attribution_method=AttributionMethod.NONE,
    )


def ingest(tenant, *bodies):
    outcomes = events_ingest(api_key=tenant.api_key, raw_events=list(bodies))
    assert all(o.status == "accepted" for o in outcomes), outcomes
    return outcomes


def test_a_reassignment_that_waited_for_another_moves_from_where_that_one_left(tenant):
    a, _ = deal(tenant, **PLAN)
    b, _ = deal(tenant, **PLAN)
    c, _ = deal(tenant, **PLAN)
    player = attributed_player(tenant, a)
    send(
        tenant,
        money(tenant, "first_deposit", "ftd1", "50", when="2026-03-02T10:00:00Z"),
        money(tenant, "ngr_update", "n1", "200", when="2026-03-30T10:00:00Z"),
    )
    manager = ManagerFactory(operator=tenant.operator)
    assert total(affiliate=a) == Decimal("150")

    first = Held(
        lambda: player_reassign(player=player, to_affiliate=b, reason="r1", author=manager)
    ).start()
    second = Bg(lambda: player_reassign(player=player, to_affiliate=c, reason="r2", author=manager))
    assert second.blocked(), "the second reassignment waits for the player's lock"
    first.release()
    second.join()
    assert second.error is None, second.error

    assert Reassignment.objects.order_by("id").last().from_affiliate_id == b.pk
    assert (total(affiliate=a), total(affiliate=b)) == (0, 0)
    assert total(affiliate=c) == Decimal("150")
    assert LedgerEntry.objects.filter(kind=LedgerKind.CPA).count() == 1


@pytest.mark.parametrize(
    "event, booked",
    [
        (("ngr_update", "n1", "200", "2026-03-30T10:00:00Z"), Decimal("50")),  # 25 % × 200
        (("first_deposit", "ftd1", "50", "2026-03-02T10:00:00Z"), Decimal("100")),  # the CPA
    ],
    ids=["ngr_update", "first_deposit"],
)
def test_an_organic_players_event_racing_its_reassignment_books_for_the_new_affiliate(
    tenant, event, booked
):
    b, _ = deal(tenant, **PLAN)
    player = organic_player(tenant)
    manager = ManagerFactory(operator=tenant.operator)
    event_type, key, amount, when = event

    # The request has stored the event and holds the player's lock, not yet committed: the
    # reassignment waits for it, then sees the event and moves it to B.
    request = Held(lambda: ingest(tenant, money(tenant, event_type, key, amount, when=when)))
    request.start()
    move = Bg(
        lambda: player_reassign(player=player, to_affiliate=b, reason="proved", author=manager)
    )
    assert move.blocked(), "the reassignment waits for the request's lock on the player"
    request.release()
    move.join()
    assert move.error is None, move.error

    assert total(affiliate=b) == booked


def test_an_organic_players_event_after_its_reassignment_books_for_the_new_affiliate(tenant):
    # The other order: the reassignment holds the player; the request stored its event and
    # waits, then books it under the affiliate the reassignment left.
    b, _ = deal(tenant, **PLAN)
    player = organic_player(tenant)
    manager = ManagerFactory(operator=tenant.operator)

    move = Held(
        lambda: player_reassign(player=player, to_affiliate=b, reason="proved", author=manager)
    ).start()
    request = Bg(
        lambda: ingest(
            tenant, money(tenant, "ngr_update", "n1", "200", when="2026-03-30T10:00:00Z")
        )
    )
    assert request.blocked(), "the booking waits for the reassignment's lock on the player"
    move.release()
    request.join()
    assert request.error is None, request.error

    assert total(affiliate=b) == Decimal("50")
    assert PlayerMonthNgr.objects.get(player=player).ngr_total == Decimal("200")


def test_a_reprocess_run_and_a_reassignment_of_the_same_player_do_not_deadlock(tenant):
    # A booking and a reassignment lock the player, then its pending-FX row; a reprocess run
    # that took them the other way round deadlocked with a reassignment in most rounds.
    a, _ = deal(tenant, revshare_rate=Decimal("0.25"))
    targets = [deal(tenant, revshare_rate=Decimal("0.25"))[0] for _ in range(2)]
    manager = ManagerFactory(operator=tenant.operator)
    player = attributed_player(tenant, a)
    # NOK has no rate: the update waits as pending FX under every plan.
    send(
        tenant,
        money(tenant, "ngr_update", "n1", "2000", currency="NOK", when="2026-03-30T10:00:00Z"),
    )
    errors = []
    for round_ in range(15):
        barrier = threading.Barrier(2)
        to = targets[round_ % 2]

        def move(to=to, barrier=barrier):
            barrier.wait()
            player_reassign(player=player, to_affiliate=to, reason="r", author=manager)

        def reprocess(barrier=barrier):
            barrier.wait()
            pending_fx_reprocess(operator=tenant.operator)

        for name, thread in (("player_reassign", Bg(move)), ("reprocess", Bg(reprocess))):
            thread.join()
            if thread.error is not None:
                errors.append(f"{name}: {thread.error!r}"[:120])
    assert errors == []
    assert PendingFx.objects.filter(resolved_at__isnull=True).count() == 1


def _assignments_in_another_currency(affiliate):
    affiliate = Affiliate.objects.get(pk=affiliate.pk)
    return list(
        PlanAssignment.objects.filter(affiliate=affiliate)
        .exclude(plan__currency=affiliate.payout_currency)
        .values_list("plan__currency", flat=True)
    )


def test_a_payout_currency_change_waits_for_an_assignment_being_made(tenant):
    affiliate = AffiliateFactory(operator=tenant.operator, payout_currency="EUR")
    plan = CommissionPlanFactory(operator=tenant.operator, currency="EUR")
    assigning = Held(
        lambda: plan_assign(affiliate=affiliate, plan=plan, valid_from=date(2026, 3, 1))
    ).start()
    update = Bg(
        lambda: affiliate_update(
            affiliate=Affiliate.objects.get(pk=affiliate.pk), payout_currency="USD"
        )
    )
    assert update.blocked(), "the currency change waits for the affiliate's lock"
    assigning.release()
    update.join()

    assert "it is assigned" in str(update.error)
    assert _assignments_in_another_currency(affiliate) == []


def test_plan_assign_checks_the_currency_of_the_row_it_locked(tenant):
    affiliate = AffiliateFactory(operator=tenant.operator, payout_currency="EUR")
    plan = CommissionPlanFactory(operator=tenant.operator, currency="EUR")
    stale = Affiliate.objects.get(pk=affiliate.pk)  # e.g. read by a form before the change
    affiliate_update(affiliate=Affiliate.objects.get(pk=affiliate.pk), payout_currency="USD")

    with pytest.raises(ValidationError):
        plan_assign(affiliate=stale, plan=plan, valid_from=date(2026, 3, 1))

    assert _assignments_in_another_currency(affiliate) == []
