"""Admin of API keys and events: scoped to the manager's operator; keys shown once;
events read-only."""

import re

import pytest

from events.models import ApiKey, Event
from events.services import api_key_hash
from tests.conftest import event
from tests.factories import BrandFactory, PermittedManagerFactory, SuperuserFactory


@pytest.fixture
def manager(tenant):
    return PermittedManagerFactory(operator=tenant.operator)


@pytest.fixture
def superuser(db):
    return SuperuserFactory()


@pytest.fixture
def events(tenant, other_tenant):
    """Events of both operators: A has a registration with a warning-free outcome and a
    deposit; B has one registration."""
    tenant.post(event(tenant.brand, idempotency_key="a_reg", player_external_ref="alice"))
    body = event(tenant.brand, event_type="deposit", idempotency_key="a_dep")
    body.update(currency="EUR", amount="42.00", player_external_ref="alice")
    tenant.post(body)
    other_tenant.post(event(other_tenant.brand, idempotency_key="b_reg", player_external_ref="bob"))
    return {e.idempotency_key: e for e in Event.objects.all()}


def listed(client, url):
    response = client.get(url)
    assert response.status_code == 200, response.content[:500]
    return list(response.context["cl"].result_list), response


def assert_hidden(client, url):
    response = client.get(url)
    assert response.status_code in (302, 404)
    if response.status_code == 302:
        assert response["Location"] == "/admin/"


# --- API keys -------------------------------------------------------------------------------


def test_manager_sees_only_their_api_keys(client, tenant, other_tenant, manager):
    client.force_login(manager)
    rows, response = listed(client, "/admin/events/apikey/")
    assert rows == [tenant.api_key]
    html = response.content.decode()
    assert tenant.api_key.prefix in html
    assert other_tenant.operator.name not in html
    assert_hidden(client, f"/admin/events/apikey/{other_tenant.api_key.pk}/change/")


def test_api_key_list_and_page_never_show_the_hash(client, tenant, superuser):
    client.force_login(superuser)
    _, response = listed(client, "/admin/events/apikey/")
    html = response.content.decode()
    for column in ("Created at", "Last used at", "Revoked at"):
        assert column in html
    page = client.get(f"/admin/events/apikey/{tenant.api_key.pk}/change/").content.decode()
    for content in (html, page):
        assert tenant.api_key.key_hash not in content
        assert tenant.key not in content


def test_creating_a_key_shows_it_once_and_it_works(client, tenant, other_tenant, manager):
    client.force_login(manager)
    form = client.get("/admin/events/apikey/add/").context["adminform"].form
    assert set(form.fields) == {"name"}  # no operator choice for a manager

    response = client.post(
        "/admin/events/apikey/add/", {"name": "rotation 2026", "operator": other_tenant.operator.pk}
    )

    assert response.status_code == 200
    html = response.content.decode()
    keys = set(re.findall(r"rv_[A-Za-z0-9_\-]{32,}", html))
    assert len(keys) == 1
    [key] = keys
    created = ApiKey.objects.get(name="rotation 2026")
    assert created.operator == tenant.operator
    assert created.created_by == manager
    assert created.key_hash == api_key_hash(key)
    assert key.startswith(created.prefix)
    assert created.key_hash not in html
    # Never again: not on the next page, not on the key's page.
    for url in ("/admin/events/apikey/", f"/admin/events/apikey/{created.pk}/change/"):
        assert key not in client.get(url).content.decode()
    # The key works against the API for the manager's operator.
    response = client.post(
        "/api/v1/events",
        data=event(tenant.brand, idempotency_key="via_admin_key"),
        content_type="application/json",
        HTTP_X_API_KEY=key,
    )
    assert response.status_code == 201


def test_superuser_creates_a_key_for_a_chosen_operator(client, other_tenant, superuser):
    client.force_login(superuser)
    response = client.post(
        "/admin/events/apikey/add/", {"name": "for B", "operator": other_tenant.operator.pk}
    )
    assert response.status_code == 200
    assert ApiKey.objects.get(name="for B").operator == other_tenant.operator


def test_revoke_action_revokes_only_the_managers_keys(client, tenant, other_tenant, manager):
    client.force_login(manager)
    response = client.post(
        "/admin/events/apikey/",
        {
            "action": "revoke",
            "_selected_action": [tenant.api_key.pk, other_tenant.api_key.pk],
        },
    )
    assert response.status_code == 302
    tenant.api_key.refresh_from_db()
    other_tenant.api_key.refresh_from_db()
    assert tenant.api_key.revoked_at is not None
    assert other_tenant.api_key.revoked_at is None
    # The revoked key no longer works; the other operator's still does.
    assert tenant.post(event(tenant.brand)).status_code == 401
    assert other_tenant.post(event(other_tenant.brand)).status_code == 201


def test_api_keys_cannot_be_deleted(client, tenant, superuser):
    client.force_login(superuser)
    response = client.post(f"/admin/events/apikey/{tenant.api_key.pk}/delete/", {"post": "yes"})
    assert response.status_code == 403
    assert ApiKey.objects.filter(pk=tenant.api_key.pk).exists()


def test_key_state_filter(client, tenant, superuser):
    from events.services import api_key_create, api_key_revoke

    revoked, _ = api_key_create(operator=tenant.operator, name="old")
    api_key_revoke(api_key=revoked)
    client.force_login(superuser)
    rows, _ = listed(client, "/admin/events/apikey/?state=revoked")
    assert rows == [revoked]
    rows, _ = listed(client, "/admin/events/apikey/?state=active")
    assert revoked not in rows and tenant.api_key in rows


# --- events ---------------------------------------------------------------------------------


def test_manager_sees_only_their_events(client, events, manager):
    client.force_login(manager)
    rows, response = listed(client, "/admin/events/event/")
    assert {e.idempotency_key for e in rows} == {"a_reg", "a_dep"}
    assert "b_reg" not in response.content.decode()
    assert_hidden(client, f"/admin/events/event/{events['b_reg'].pk}/change/")


def test_superuser_sees_every_event(client, events, superuser):
    client.force_login(superuser)
    rows, _ = listed(client, "/admin/events/event/")
    assert {e.idempotency_key for e in rows} == {"a_reg", "a_dep", "b_reg"}


def test_event_brand_filter_offers_only_the_managers_brands(
    client, tenant, other_tenant, events, manager
):
    second = BrandFactory(operator=tenant.operator)  # a filter with one choice is not shown
    client.force_login(manager)
    _, response = listed(client, "/admin/events/event/")
    [brand_filter] = [f for f in response.context["cl"].filter_specs if f.title == "brand"]
    assert {pk for pk, _ in brand_filter.lookup_choices} == {tenant.brand.pk, second.pk}
    assert other_tenant.brand.name not in response.content.decode()
    # Asking for the other operator's brand finds nothing.
    response = client.get(f"/admin/events/event/?brand__id__exact={other_tenant.brand.pk}")
    if response.status_code == 200:
        assert list(response.context["cl"].result_list) == []


def test_superuser_brand_filter_offers_every_brand(client, tenant, other_tenant, events, superuser):
    client.force_login(superuser)
    _, response = listed(client, "/admin/events/event/")
    [brand_filter] = [f for f in response.context["cl"].filter_specs if f.title == "brand"]
    assert {pk for pk, _ in brand_filter.lookup_choices} == {tenant.brand.pk, other_tenant.brand.pk}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("event_type__exact=deposit", {"a_dep"}),
        ("event_time__gte=2026-03-15&event_time__lt=2026-03-16", {"a_reg", "a_dep"}),
        ("event_time__gte=2026-03-16", set()),
        ("outcome=clean", {"a_reg", "a_dep"}),
        ("outcome=warnings", set()),
        ("q=a_dep", {"a_dep"}),
        ("q=alice", {"a_reg", "a_dep"}),
        ("q=bob", set()),
    ],
)
def test_event_filters_and_search(client, events, manager, query, expected):
    client.force_login(manager)
    rows, _ = listed(client, f"/admin/events/event/?{query}")
    assert {e.idempotency_key for e in rows} == expected


def test_status_filter_finds_events_with_warnings(client, tenant, events, manager):
    # A second registration of the same player is accepted with a warning.
    second = tenant.post(
        event(tenant.brand, idempotency_key="a_reg_again", player_external_ref="alice")
    )
    assert second.json().get("warnings")
    client.force_login(manager)
    rows, _ = listed(client, "/admin/events/event/?outcome=warnings")
    assert [e.idempotency_key for e in rows] == ["a_reg_again"]


def test_events_are_read_only(client, events, manager):
    client.force_login(manager)
    pk = events["a_dep"].pk
    assert client.get("/admin/events/event/add/").status_code == 403
    page = client.get(f"/admin/events/event/{pk}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'name="_save"' not in html
    assert client.post(f"/admin/events/event/{pk}/change/", {}).status_code == 403
    assert client.post(f"/admin/events/event/{pk}/delete/", {"post": "yes"}).status_code == 403
    assert Event.objects.filter(pk=pk).exists()


def test_event_page_shows_the_payload_pretty_printed(client, events, manager):
    client.force_login(manager)
    html = client.get(f"/admin/events/event/{events['a_dep'].pk}/change/").content.decode()
    assert "<pre>" in html
    assert "\n  &quot;amount&quot;: &quot;42.00&quot;," in html
    assert "42.0000 EUR" in client.get("/admin/events/event/").content.decode()
