"""The ledger's manual adjustment form: amounts as a manager types them, the player it is
about."""

from decimal import Decimal

import pytest
from django.contrib.messages import get_messages

from attribution.services import player_reassign
from commissions.models import LedgerEntry, LedgerKind
from tests.commissions.period_factories import affiliate_on_plan
from tests.commissions.test_admin_index_figures import full_manager
from tests.factories import BrandFactory, OperatorFactory, PlayerFactory

pytestmark = pytest.mark.django_db

URL = "/admin/commissions/ledgerentry/adjust/"


@pytest.fixture
def setup(client):
    operator = OperatorFactory()
    brand = BrandFactory(operator=operator)
    affiliate, plan = affiliate_on_plan(operator)
    manager = full_manager(operator)
    client.force_login(manager)
    return operator, brand, affiliate, manager


def test_an_amount_with_trailing_zeros_is_the_amount(client, setup):
    _, _, affiliate, _ = setup
    # 12.30000 is 12.3: trailing zeros are not precision (the Event API takes "1.10000" as
    # 1.1, docs/events.md); refusing it as "more than 4 decimal places" is wrong.
    response = client.post(URL, {"affiliate": affiliate.pk, "amount": "12.30000", "memo": "bonus"})
    assert response.status_code == 302, response.context["form"].errors
    assert LedgerEntry.objects.get(kind=LedgerKind.MANUAL_ADJUSTMENT).amount == Decimal("12.3")


def test_the_confirmation_shows_the_amount_as_money(client, setup):
    _, _, affiliate, _ = setup
    response = client.post(URL, {"affiliate": affiliate.pk, "amount": "1e5", "memo": "bonus"})
    assert response.status_code == 302
    entry = LedgerEntry.objects.get(kind=LedgerKind.MANUAL_ADJUSTMENT)
    assert entry.amount == Decimal("100000")
    shown = [str(m) for m in get_messages(response.wsgi_request)]
    # The manager reads back what was booked: "100000" (or 100,000.00), never "1E+5".
    assert not any("E+" in m for m in shown), shown


def test_the_old_affiliate_s_correction_can_name_a_reassigned_player(client, setup):
    operator, brand, old, manager = setup
    new, _ = affiliate_on_plan(operator)
    player = PlayerFactory(
        brand=brand, affiliate=old, external_ref="moved-1", registered_at="2026-03-01T10:00Z"
    )
    player_reassign(player=player, to_affiliate=new, reason="wrong click", author=manager)
    # docs/decisions.md: what a reattribution leaves with the old affiliate (its share of a
    # closed month's tier adjustment) "a manager corrects with a manual adjustment": a debit
    # of the old affiliate about that player.
    response = client.post(
        URL,
        {
            "affiliate": old.pk,
            "amount": "-3.50",
            "memo": "tier share of moved-1 given back",
            "player_external_ref": "moved-1",
        },
    )
    assert response.status_code == 302, response.context["form"].errors
    entry = LedgerEntry.objects.get(kind=LedgerKind.MANUAL_ADJUSTMENT)
    assert (entry.affiliate, entry.player) == (old, player)


@pytest.mark.parametrize("amount", ["1e30", "-1e30", "10000000000"])
def test_an_amount_too_large_is_a_form_error(client, setup, amount):
    _, _, affiliate, _ = setup
    response = client.post(URL, {"affiliate": affiliate.pk, "amount": amount, "memo": "bonus"})
    assert response.status_code == 200
    assert "must be less than" in str(response.context["form"].errors["amount"])
    assert not LedgerEntry.objects.filter(kind=LedgerKind.MANUAL_ADJUSTMENT).exists()
