"""Reassignment of a player by a manager: the service, its audit, the ledger hook."""

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from attribution.models import AffiliateStatus, AttributionMethod, Player, Reassignment
from attribution.services import player_reassign
from tests.attribution.conftest import click_on
from tests.conftest import event
from tests.factories import AffiliateFactory, ManagerFactory


@pytest.fixture
def ledger_calls(monkeypatch):
    import commissions.services

    calls = []
    monkeypatch.setattr(
        commissions.services,
        "ledger_player_reassigned",
        lambda **kwargs: calls.append(kwargs),
    )
    return calls


@pytest.fixture
def registered(tenant, link):
    click = click_on(link)
    assert tenant.post(event(tenant.brand, click_id=str(click.id))).status_code == 201
    return Player.objects.get(brand=tenant.brand)


@pytest.fixture
def manager(tenant):
    return ManagerFactory(operator=tenant.operator)


def test_reassign_moves_the_player_audits_and_calls_the_ledger(
    tenant, registered, manager, ledger_calls
):
    old = registered.affiliate
    new = AffiliateFactory(operator=tenant.operator)
    reassignment = player_reassign(
        player=registered, to_affiliate=new, reason="  fraud on the old account  ", author=manager
    )
    player = Player.objects.get(pk=registered.pk)
    assert player.affiliate_id == new.pk
    assert player.attribution_method == AttributionMethod.MANUAL
    assert player.click_id is None
    assert player.attributed_at == reassignment.created_at
    row = Reassignment.objects.get()
    assert (row.player_id, row.from_affiliate_id, row.to_affiliate_id, row.author_id) == (
        player.pk,
        old.pk,
        new.pk,
        manager.pk,
    )
    assert row.reason == "fraud on the old account"
    assert row.from_method == AttributionMethod.CLICK_ID
    assert len(ledger_calls) == 1
    call = ledger_calls[0]
    assert (call["player"].pk, call["from_affiliate"], call["to_affiliate"], call["author"]) == (
        player.pk,
        old,
        new,
        manager,
    )
    # The registration's event detail now shows the manual attribution.
    event_id = player.registration_event_id
    detail = tenant.get_event(event_id).json()["attribution"]
    assert (detail["method"], detail["affiliate_id"]) == ("manual", new.pk)


def test_reassign_with_the_real_ledger_hook(tenant, registered, manager):
    new = AffiliateFactory(operator=tenant.operator)
    player_reassign(player=registered, to_affiliate=new, reason="moved", author=manager)
    assert Player.objects.get(pk=registered.pk).affiliate_id == new.pk
    assert Reassignment.objects.count() == 1


def test_ledger_failure_rolls_the_reassignment_back(tenant, registered, manager, monkeypatch):
    import commissions.services

    def boom(**kwargs):
        raise RuntimeError("ledger down")

    monkeypatch.setattr(commissions.services, "ledger_player_reassigned", boom)
    with pytest.raises(RuntimeError):
        player_reassign(
            player=registered,
            to_affiliate=AffiliateFactory(operator=tenant.operator),
            reason="x",
            author=manager,
        )
    assert Reassignment.objects.count() == 0
    assert Player.objects.get(pk=registered.pk).attribution_method == AttributionMethod.CLICK_ID


@pytest.mark.parametrize("reason", ["", "   ", None])
def test_reason_is_required(tenant, registered, manager, ledger_calls, reason):
    with pytest.raises(ValidationError, match="reason"):
        player_reassign(
            player=registered,
            to_affiliate=AffiliateFactory(operator=tenant.operator),
            reason=reason,
            author=manager,
        )
    assert Reassignment.objects.count() == 0
    assert ledger_calls == []


def test_affiliate_of_another_operator_is_refused(registered, manager, other_tenant, ledger_calls):
    with pytest.raises(ValidationError, match="player's operator"):
        player_reassign(
            player=registered,
            to_affiliate=AffiliateFactory(operator=other_tenant.operator),
            reason="x",
            author=manager,
        )
    assert Player.objects.get(pk=registered.pk).attribution_method == AttributionMethod.CLICK_ID
    assert ledger_calls == []


def test_a_manager_of_another_operator_cannot_reassign(
    tenant, registered, other_tenant, ledger_calls
):
    """The service itself refuses, not only the admin's scoped choices."""
    stranger = ManagerFactory(operator=other_tenant.operator)
    with pytest.raises(PermissionDenied):
        player_reassign(
            player=registered,
            to_affiliate=AffiliateFactory(operator=tenant.operator),
            reason="x",
            author=stranger,
        )
    assert Player.objects.get(pk=registered.pk).attribution_method == AttributionMethod.CLICK_ID
    assert not Reassignment.objects.exists()
    assert ledger_calls == []


def test_not_approved_or_same_affiliate_is_refused(tenant, registered, manager, ledger_calls):
    pending = AffiliateFactory(operator=tenant.operator, status=AffiliateStatus.PENDING)
    with pytest.raises(ValidationError, match="not approved"):
        player_reassign(player=registered, to_affiliate=pending, reason="x", author=manager)
    with pytest.raises(ValidationError, match="already attributed"):
        player_reassign(
            player=registered, to_affiliate=registered.affiliate, reason="x", author=manager
        )
    assert Reassignment.objects.count() == 0


def test_unregistered_player_cannot_be_reassigned(tenant, manager, ledger_calls):
    tenant.post(
        event(
            tenant.brand,
            event_type="deposit",
            idempotency_key="dep",
            currency="EUR",
            amount="5",
        )
    )
    player = Player.objects.get()
    with pytest.raises(ValidationError, match="not registered yet"):
        player_reassign(
            player=player,
            to_affiliate=AffiliateFactory(operator=tenant.operator),
            reason="x",
            author=manager,
        )


def test_organic_player_can_be_given_to_an_affiliate_and_back(tenant, manager, ledger_calls):
    tenant.post(event(tenant.brand))
    player = Player.objects.get()
    affiliate = AffiliateFactory(operator=tenant.operator)
    player_reassign(player=player, to_affiliate=affiliate, reason="late claim", author=manager)
    player_reassign(player=player, to_affiliate=None, reason="claim withdrawn", author=manager)
    assert Player.objects.get().affiliate_id is None
    audit = list(
        Reassignment.objects.order_by("id").values_list("from_affiliate_id", "to_affiliate_id")
    )
    assert audit == [(None, affiliate.pk), (affiliate.pk, None)]
    assert [(c["from_affiliate"], c["to_affiliate"]) for c in ledger_calls] == [
        (None, affiliate),
        (affiliate, None),
    ]
