"""CPA booking at its edges: chargebacks of deposits outside the window, pending-FX rows
reopened by a replay, clawbacks that need no rate, the player's status as of the event, and
the pending-FX admin action with nothing in scope."""

from datetime import date
from decimal import Decimal

import pytest

from attribution.services import player_reassign
from commissions.models import LedgerKind, PendingFx
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
from tests.factories import ManagerFactory, PermittedManagerFactory

pytestmark = pytest.mark.django_db

CPA = dict(
    cpa_amount=Decimal("100"),
    min_first_deposit=Decimal("20"),
    min_total_deposits=Decimal("50"),
    qualification_days=30,
    clawback_days=90,
)


def cpa_net(player):
    return total(player=player, kind__in=[LedgerKind.CPA, LedgerKind.CPA_REVERSAL])


def test_a_chargeback_of_a_deposit_after_the_window_does_not_claw_back(tenant):
    """The qualifying deposits (FTD 100 within the window) are untouched; the chargeback names
    a later deposit that never counted toward qualification. SPEC: a clawback needs a
    chargeback 'that brings the player's deposits net of chargebacks below the thresholds'."""
    affiliate, _ = deal(tenant, **CPA)
    player = attributed_player(tenant, affiliate)  # registered 2026-03-01 10:00
    send(tenant, money(tenant, "first_deposit", "ftd", "100", when="2026-03-02T10:00:00Z"))
    assert cpa_net(player) == Decimal("100")
    send(
        tenant,
        money(tenant, "deposit", "late_dep", "500", when="2026-04-15T10:00:00Z"),
        money(
            tenant,
            "chargeback",
            "cb_late",
            "500",
            when="2026-04-16T10:00:00Z",
            deposit_idempotency_key="late_dep",
        ),
    )
    # All deposits 600 − chargebacks 500 = 100; window deposits 100 untouched. Either way
    # the thresholds (first 100 ≥ 20, total ≥ 50) still hold: the CPA must stand.
    assert cpa_net(player) == Decimal("100")


def test_a_pending_fx_row_resolved_while_organic_reopens_when_a_reassignment_replays_it(tenant):
    """FTD waits for a USD rate; the player is made organic and a reprocess run resolves the
    row (nothing to book for an organic player). The manager then reassigns the player to
    B: the replay of its deposits waits again for the rate, but the PendingFx row stays
    resolved (bulk_create ignore_conflicts), so the CPA is never booked."""
    a, _ = deal(tenant, **CPA)
    b, _ = deal(tenant, **CPA)
    manager = ManagerFactory(operator=tenant.operator)
    player = attributed_player(tenant, a)
    send(
        tenant,
        money(tenant, "first_deposit", "ftd", "100", currency="USD", when="2026-03-02T10:00Z"),
    )
    assert PendingFx.objects.filter(resolved_at__isnull=True).count() == 1
    player_reassign(player=player, to_affiliate=None, reason="fraud check", author=manager)
    pending_fx_reprocess()  # no rate yet, but the row is marked resolved
    player.refresh_from_db()
    player_reassign(player=player, to_affiliate=b, reason="B proved it", author=manager)
    waiting = PendingFx.objects.filter(resolved_at__isnull=True).count()
    FxRateFactory(currency="USD", date=date(2026, 3, 2), rate=Decimal("1.25"))
    pending_fx_reprocess()
    booked = len(entries(player=player, kind=LedgerKind.CPA, affiliate=b))
    # The FTD's effect must have stayed visible as pending FX, then booked B's CPA.
    assert (waiting, booked) == (1, 1)


@pytest.mark.parametrize(
    "charged_back, cpa_left, waits",
    [
        # The first deposit charged back in full: unmet whatever the ARS deposit converts
        # to (a later deposit only adds to the total), so the clawback books at once.
        ("100", Decimal("0"), False),
        # Only part of it: an ARS deposit of unknown value might keep the total ≥ 50, so
        # the chargeback waits for its rate (ARS has none: the ECB does not quote it).
        ("30", Decimal("100"), True),
    ],
)
def test_a_clawback_waits_only_for_a_rate_that_can_change_the_answer(
    tenant, charged_back, cpa_left, waits
):
    affiliate, _ = deal(tenant, **CPA)
    player = attributed_player(tenant, affiliate)
    send(tenant, money(tenant, "first_deposit", "ftd", "100", when="2026-03-02T10:00:00Z"))
    send(
        tenant, money(tenant, "deposit", "ars", "5000", currency="ARS", when="2026-03-03T10:00:00Z")
    )
    send(
        tenant,
        money(
            tenant,
            "chargeback",
            "cb",
            charged_back,
            when="2026-03-05T10:00:00Z",
            deposit_idempotency_key="ftd",
        ),
    )
    assert cpa_net(player) == cpa_left
    pending = PendingFx.objects.filter(event__idempotency_key="cb", resolved_at__isnull=True)
    assert pending.exists() == waits


def status(tenant, key, value, when):
    return {
        "event_type": "player_status",
        "event_time": when,
        "brand_id": str(tenant.brand.id),
        "player_external_ref": "player_001",
        "idempotency_key": key,
        "status": value,
    }


def test_a_pending_fx_cpa_of_an_active_player_stands_after_a_later_self_exclusion(tenant):
    """The FTD qualified an active player; only its USD rate was missing. The player
    self-excludes three days later; when the rate arrives the reprocess books nothing and
    resolves the row. With the rate present on time the same events book the CPA, so the
    pending-FX effect is not what 'applies when the rate is added'."""
    affiliate, _ = deal(tenant, **CPA)
    player = attributed_player(tenant, affiliate)
    send(
        tenant,
        money(tenant, "first_deposit", "ftd", "100", currency="USD", when="2026-03-02T10:00:00Z"),
    )
    send(tenant, status(tenant, "st1", "self_excluded", "2026-03-05T10:00:00Z"))
    FxRateFactory(currency="USD", date=date(2026, 3, 2), rate=Decimal("1.25"))
    pending_fx_reprocess()
    assert total(player=player, kind=LedgerKind.CPA) == Decimal("100")


def test_a_first_deposit_while_self_excluded_books_no_cpa_even_with_the_reactivation_in_its_batch(
    tenant,
):
    """Sent one by one, a first deposit made while self-excluded books no CPA. Sent in one
    batch with the later reactivation, it books the CPA: the outcome depends on batching."""
    affiliate, _ = deal(tenant, **CPA)
    player = attributed_player(tenant, affiliate)
    send(
        tenant,
        status(tenant, "st1", "self_excluded", "2026-03-01T11:00:00Z"),
        money(tenant, "first_deposit", "ftd", "50", when="2026-03-02T10:00:00Z"),
        status(tenant, "st2", "active", "2026-03-20T10:00:00Z"),
    )
    assert total(player=player, kind=LedgerKind.CPA) == Decimal("0")


def test_a_same_batch_reactivation_before_the_first_deposit_lets_it_qualify(tenant):
    affiliate, _ = deal(tenant, **CPA)
    player = attributed_player(tenant, affiliate)
    send(
        tenant,
        status(tenant, "st1", "self_excluded", "2026-03-01T11:00:00Z"),
        status(tenant, "st2", "active", "2026-03-02T09:00:00Z"),
        money(tenant, "first_deposit", "ftd", "60", when="2026-03-02T10:00:00Z"),
        status(tenant, "st3", "closed", "2026-03-20T10:00:00Z"),
    )
    assert total(player=player, kind=LedgerKind.CPA) == Decimal("100")


def test_the_reprocess_action_with_nothing_in_scope_answers_without_an_error(client):
    user = PermittedManagerFactory(operator=None)
    client.force_login(user)
    response = client.post(
        "/admin/commissions/pendingfx/",
        {"action": "reprocess", "index": "0", "_selected_action": ["1"]},
        follow=True,
    )
    assert response.status_code == 200
    assert not PendingFx.objects.exists()


@pytest.mark.parametrize("rate_on_time", [False, True], ids=["reprocessed", "rate_on_time"])
def test_the_deposit_that_qualifies_books_the_cpa_also_after_a_reprocess(tenant, rate_on_time):
    """Plan P1 (CPA 100) until 03-15, P2 (CPA 150) from 03-16. An FTD of 30 USD (24 EUR) on
    03-02, then a 03-20 EUR deposit brings the total to 104 ≥ 100: the 03-20 deposit makes
    the player qualify, so the CPA is P2's 150 dated 03-20, whether the USD rate was there
    on time or the FTD waited for it and was reprocessed (not P1's 100 dated 03-02, which
    would also start the clawback window 18 days early)."""
    terms = dict(min_first_deposit=Decimal("20"), min_total_deposits=Decimal("100"))
    affiliate, _ = deal(tenant, cpa_amount=Decimal("100"), valid_from=date(2026, 1, 1), **terms)
    first = affiliate.plan_assignments.get()
    first.valid_to = date(2026, 3, 15)
    first.save()
    p2 = CommissionPlanFactory(operator=tenant.operator, cpa_amount=Decimal("150"), **terms)
    PlanAssignmentFactory(plan=p2, affiliate=affiliate, valid_from=date(2026, 3, 16))
    player = attributed_player(tenant, affiliate)
    if rate_on_time:
        FxRateFactory(currency="USD", date=date(2026, 3, 2), rate=Decimal("1.25"))
    send(
        tenant,
        money(tenant, "first_deposit", "ftd", "30", currency="USD", when="2026-03-02T10:00:00Z"),
    )
    send(tenant, money(tenant, "deposit", "dep", "80", when="2026-03-20T10:00:00Z"))
    if not rate_on_time:
        FxRateFactory(currency="USD", date=date(2026, 3, 2), rate=Decimal("1.25"))
        pending_fx_reprocess()
    (cpa,) = entries(player=player, kind=LedgerKind.CPA)
    assert (cpa.amount, cpa.activity_date) == (Decimal("150"), date(2026, 3, 20))
