"""The affiliate's lifecycle and the player's status, against SPEC §4/§5 and docs."""

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from attribution.models import Affiliate, AffiliateStatus, Player
from attribution.services import (
    affiliate_approve,
    affiliate_suspend,
    player_reassign,
)
from commissions.models import LedgerKind
from tests.commissions.factories import attributed_player, deal, money, send, total
from tests.factories import AffiliateFactory, ManagerFactory

CPA = dict(cpa_amount=Decimal("100.00"), min_first_deposit=Decimal("20"))


def status(tenant, key, value, when, ref="player_001"):
    return {
        "event_type": "player_status",
        "event_time": when,
        "brand_id": str(tenant.brand.id),
        "player_external_ref": ref,
        "idempotency_key": key,
        "status": value,
    }


# --- player status and CPA: arrival order must not decide -------------------------------


@pytest.mark.parametrize("value", ["fraud"])
def test_a_status_dated_before_the_ftd_that_arrives_after_it_still_denies_the_cpa(tenant, value):
    """SPEC §5: no CPA for a self-excluded, closed or fraud player; docs: the status that
    counts is the one 'when the qualifying event happened'. Sent in order (status, then
    FTD) no CPA is booked; sent the other way round the CPA stands for good."""
    affiliate, _ = deal(tenant, **CPA)
    player = attributed_player(tenant, affiliate)
    send(tenant, money(tenant, "first_deposit", "ftd", "50", when="2026-03-15T10:00:00Z"))
    # The operator's fraud team flags the account as of the 10th; the flag arrives later.
    send(tenant, status(tenant, "st1", value, "2026-03-10T00:00:00Z"))
    assert Player.objects.get(pk=player.pk).status == value
    net_cpa = total(player=player, kind__in=[LedgerKind.CPA, LedgerKind.CPA_REVERSAL])
    assert net_cpa == Decimal("0"), "the player was excluded when it deposited: no CPA"


# --- reassignment to an affiliate that is no longer approved -----------------------------


def test_reassign_refuses_an_affiliate_suspended_after_it_was_read(tenant):
    """attribution.md: a player moves to an *approved* affiliate. The check reads the status
    of the object the caller holds (the admin form's choice, read before the loop over the
    players), not the row: an affiliate suspended meanwhile receives the player."""
    old = AffiliateFactory(operator=tenant.operator)
    target = AffiliateFactory(operator=tenant.operator)
    player = attributed_player(tenant, old)
    held = Affiliate.objects.get(pk=target.pk)  # what the form returned
    affiliate_suspend(affiliate=Affiliate.objects.get(pk=target.pk))  # another manager
    manager = ManagerFactory(operator=tenant.operator)
    with pytest.raises(ValidationError):
        player_reassign(player=player, to_affiliate=held, reason="move", author=manager)
    assert Player.objects.get(pk=player.pk).affiliate_id == old.pk


# --- status services with an object read before a concurrent change ----------------------


def test_approve_with_an_instance_read_before_a_suspension_approves_or_refuses(tenant):
    """docs: status services are conditional updates, 'so two managers acting at once
    cannot both win'. An approve called with an instance that still says 'approved' (read
    before another manager's suspension) returns at once: it reports success, the returned
    object says approved, and the affiliate stays suspended."""
    affiliate = AffiliateFactory(operator=tenant.operator)
    held = Affiliate.objects.get(pk=affiliate.pk)
    affiliate_suspend(affiliate=Affiliate.objects.get(pk=affiliate.pk))
    result = affiliate_approve(affiliate=held)
    assert Affiliate.objects.get(pk=affiliate.pk).status == result.status


def test_a_refused_status_move_says_what_the_docs_say(tenant):
    """attribution.md: any other move is refused with a message ('… is pending; only an
    approved affiliate can be suspended'). The message reads 'only a approved affiliate'."""
    affiliate = AffiliateFactory(operator=tenant.operator, status=AffiliateStatus.PENDING)
    with pytest.raises(ValidationError) as caught:
        affiliate_suspend(affiliate=affiliate)
    assert (
        f"{affiliate.email} is pending; only an approved affiliate can be suspended"
        in (caught.value.messages[0])
    )
