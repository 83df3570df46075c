"""The commission admin's own list filters with values no link gives (a hand-edited URL):
nothing matches, never a 500; the values the filters offer still filter."""

import pytest
from django.contrib.auth.models import Permission

from commissions.models import Statement
from commissions.services.periods import period_close
from tests.commissions.period_factories import MARCH, affiliate_on_plan, entry
from tests.factories import ManagerFactory, OperatorFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def manager_client(client):
    operator = OperatorFactory()
    affiliate, plan = affiliate_on_plan(operator)
    entry(affiliate, "revshare", "10", plan=plan)
    period_close(operator=operator, month=MARCH)  # a closed period: the filter has output
    manager = ManagerFactory(operator=operator)
    manager.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_statement", "view_ledgerentry"])
    )
    client.force_login(manager)
    return client


@pytest.mark.parametrize("value", ["%C2%B2", "%E2%91%A0"])  # '²', '①': isdigit() but not int()
def test_the_statement_period_filter_with_a_unicode_digit_matches_nothing(manager_client, value):
    response = manager_client.get(f"/admin/commissions/statement/?period={value}")
    assert response.status_code == 200
    assert response.context["cl"].result_count == 0


@pytest.mark.parametrize("value", ["abc", "2026-02-30", "2026-03"])
def test_the_ledger_period_filter_with_a_bad_date_matches_nothing(manager_client, value):
    response = manager_client.get(f"/admin/commissions/ledgerentry/?period={value}")
    assert response.status_code == 200
    assert response.context["cl"].result_count == 0


def test_the_period_filters_still_filter(manager_client):
    ledger = manager_client.get("/admin/commissions/ledgerentry/?period=2026-03-01")
    assert ledger.context["cl"].result_count == 1
    period_id = Statement.objects.get().period_id
    statements = manager_client.get(f"/admin/commissions/statement/?period={period_id}")
    assert statements.context["cl"].result_count == 1
