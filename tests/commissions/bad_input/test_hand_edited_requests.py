"""Hand-edited requests on the commission lists and actions (SPEC §8: "no input gives a
500"): Django's stock admin code raises on them; revvvs.tenancy.HandEditedRequestsMixin
answers them instead."""

import pytest

from commissions.models import LedgerKind
from tests.commissions.period_factories import affiliate_on_plan, entry

from .helpers import manager_of

ACTIONS = [
    ("/admin/commissions/statement/", "approve"),
    ("/admin/commissions/statement/", "mark_paid"),
    ("/admin/commissions/statement/", "download_csv"),
    ("/admin/commissions/pendingfx/", "reprocess"),
    ("/admin/commissions/period/", "close_selected"),
]


@pytest.mark.parametrize("url,action", ACTIONS)
def test_an_action_on_a_non_numeric_selection_is_not_a_500(client, tenant, url, action):
    # ModelAdmin.response_action filters pk__in=["abc"]: ValueError "Field 'id' expected a
    # number but got 'abc'".
    client.force_login(manager_of(tenant.operator))
    try:
        response = client.post(url, {"action": action, "_selected_action": ["abc"]})
    except ValueError as exc:
        pytest.fail(f"500: {exc}")
    assert response.status_code in (200, 302, 400)


@pytest.mark.parametrize(
    "url",
    [
        "/admin/commissions/ledgerentry/?kind=%00",
        "/admin/commissions/pendingfx/?from_currency=%00",
        "/admin/commissions/statement/?status__exact=%00",
        "/admin/commissions/period/?status__exact=%00",
    ],
)
def test_a_nul_byte_in_a_list_filter_is_not_a_500(client, tenant, url):
    # The value reaches PostgreSQL: DataError "PostgreSQL text fields cannot contain NUL
    # (0x00) bytes" (Django turns only ValidationError/FieldError into "?e=1").
    affiliate, plan = affiliate_on_plan(tenant.operator)
    entry(affiliate, LedgerKind.CPA, "10", plan=plan)
    client.force_login(manager_of(tenant.operator))
    try:
        response = client.get(url)
    except Exception as exc:  # noqa: BLE001
        pytest.fail(f"500: {type(exc).__name__}: {exc}")
    assert response.status_code in (200, 302, 400)


@pytest.mark.parametrize(
    "query",
    ["activity_date__year=9999", "activity_date__year=9999&activity_date__month=12"],
)
def test_the_ledger_date_hierarchy_at_year_9999_is_not_a_500(client, tenant, query):
    # Django's ChangeList builds the range's end (year 10000 / 32 days past 9999-12-01).
    client.force_login(manager_of(tenant.operator))
    try:
        response = client.get(f"/admin/commissions/ledgerentry/?{query}")
    except (ValueError, OverflowError) as exc:
        pytest.fail(f"500: {type(exc).__name__}: {exc}")
    assert response.status_code in (200, 302, 400)
