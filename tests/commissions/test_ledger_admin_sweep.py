"""The ledger list with hand-edited query strings: a 400 or a message, never a 500
(docs/decisions.md: admin lists answer hand-edited requests with a 400 or a message)."""

import pytest
from django.test import Client

from tests.commissions.period_factories import affiliate_on_plan, entry
from tests.commissions.test_admin_index_figures import full_manager
from tests.factories import BrandFactory, OperatorFactory, PlayerFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "query",
    [
        "amount__gt=1e999999",  # Decimal accepts it, PostgreSQL's numeric overflows
        "memo__regex=[",  # an invalid regular expression reaches PostgreSQL
    ],
)
def test_a_hand_edited_field_lookup_is_not_a_500(query):
    operator = OperatorFactory()
    brand = BrandFactory(operator=operator)
    affiliate, plan = affiliate_on_plan(operator)
    player = PlayerFactory(brand=brand, affiliate=affiliate)
    entry(affiliate, "cpa", "10", plan=plan, player=player, brand=brand, memo="goodwill")
    client = Client(raise_request_exception=False)
    client.force_login(full_manager(operator))

    response = client.get(f"/admin/commissions/ledgerentry/?{query}")

    assert response.status_code < 500
