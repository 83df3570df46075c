"""An affiliate's payout currency never changes while its old currency can still book.

A late event dated under an ended assignment books under that assignment's plan, a
chargeback claws back a CPA in the CPA's currency, and a reassignment gives back a
player's commission in the currency it was earned in: each lands an old-currency entry in
the open month, and a statement is in one currency, so that month (and, months closing in
order, every later one) could never be closed. So the change is refused instead."""

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from attribution.services import affiliate_update
from commissions.models import LedgerKind
from commissions.services.booking import plan_assign
from commissions.services.periods import period_close
from tests.commissions.factories import CommissionPlanFactory, attributed_player, deal, money, send
from tests.commissions.period_factories import entry, statement_of
from tests.factories import AffiliateFactory, OperatorFactory, PlayerFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator():
    return OperatorFactory()


MARCH, APRIL = date(2026, 3, 1), date(2026, 4, 1)


def _eur_plan_ended_in_march(tenant, **plan):
    affiliate, eur = deal(tenant, **plan)
    assignment = affiliate.plan_assignments.get()
    assignment.valid_to = date(2026, 3, 31)
    assignment.save()
    return affiliate, eur


def test_an_ended_plan_in_the_old_currency_keeps_the_payout_currency(tenant):
    affiliate, eur = _eur_plan_ended_in_march(tenant, revshare_rate=Decimal("0.25"))
    attributed_player(tenant, affiliate)
    send(tenant, money(tenant, "ngr_update", "n1", "100", when="2026-03-20T10:00:00Z"))
    period_close(operator=tenant.operator, month=MARCH)  # paid in full, nothing carried

    with pytest.raises(ValidationError) as refused:
        affiliate_update(affiliate=affiliate, payout_currency="USD")

    message = str(refused.value.message_dict["payout_currency"])
    assert f"it is assigned {eur.name} (EUR) (in force, to come or ended" in message
    affiliate.refresh_from_db()
    assert affiliate.payout_currency == "EUR"
    # The late March total books under the ended EUR plan into April, which still closes.
    send(tenant, money(tenant, "ngr_update", "n2", "200", when="2026-03-31T23:00:00Z"))
    period_close(operator=tenant.operator, month=APRIL, now=datetime(2026, 5, 2, tzinfo=UTC))
    april = statement_of(affiliate, APRIL)
    assert (april.currency, april.revshare) == ("EUR", Decimal("25.0000"))


def test_a_cpa_that_can_still_be_clawed_back_keeps_the_payout_currency(tenant):
    affiliate, _ = _eur_plan_ended_in_march(
        tenant, cpa_amount=Decimal("100"), min_first_deposit=Decimal("20"), clawback_days=90
    )
    attributed_player(tenant, affiliate)
    send(tenant, money(tenant, "first_deposit", "ftd1", "30", when="2026-03-02T10:00:00Z"))
    period_close(operator=tenant.operator, month=MARCH)

    with pytest.raises(ValidationError, match="the payout currency cannot change to USD"):
        affiliate_update(affiliate=affiliate, payout_currency="USD")


def test_commission_from_players_in_another_currency_keeps_the_payout_currency(operator):
    """No assignment in EUR (e.g. a player moved to the affiliate by a reassignment), but a
    reassignment of that player would give its EUR commission back in EUR."""
    affiliate = AffiliateFactory(operator=operator, payout_currency="EUR")
    player = PlayerFactory(brand__operator=operator, affiliate=affiliate)
    entry(affiliate, LedgerKind.REATTRIBUTION, "40", currency="EUR", player=player)
    period_close(operator=operator, month=MARCH)

    with pytest.raises(ValidationError) as refused:
        affiliate_update(affiliate=affiliate, payout_currency="USD")

    assert "holds commission from players in another currency" in str(refused.value)


def test_manual_adjustments_alone_do_not_keep_the_payout_currency(operator):
    affiliate = AffiliateFactory(operator=operator, payout_currency="EUR")
    entry(affiliate, LedgerKind.MANUAL_ADJUSTMENT, "30")
    period_close(operator=operator, month=MARCH)

    affiliate_update(affiliate=affiliate, payout_currency="USD")
    usd = CommissionPlanFactory(operator=operator, currency="USD")
    plan_assign(affiliate=affiliate, plan=usd, valid_from=APRIL)

    affiliate.refresh_from_db()
    assert affiliate.payout_currency == "USD"
