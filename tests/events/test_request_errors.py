"""Whole-request errors of POST /api/v1/events (SPEC §3): each a JSON {"code", "message"}
with the documented status, never HTML, never a 500, and nothing stored."""

import json

import pytest
from django.core.cache import cache
from django.test import override_settings

from attribution.models import Player
from events.models import Event
from events.services import api_key_revoke
from tests.conftest import event


@pytest.fixture(autouse=True)
def _fresh_rate_limit():
    cache.clear()
    yield
    cache.clear()


def stored():
    return Event.objects.count(), Player.objects.count()


def post_raw(tenant, data, content_type="application/json", **headers):
    headers.setdefault("HTTP_X_API_KEY", tenant.key)
    return tenant.client.generic(
        "POST", "/api/v1/events", data=data, content_type=content_type, **headers
    )


def assert_error(response, status, code, fragment=""):
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == {"code", "message"}
    assert body["code"] == code
    assert fragment in body["message"]
    return body


# --- 401 -------------------------------------------------------------------------------


def test_missing_api_key_is_401(tenant):
    response = post_raw(tenant, json.dumps(event(tenant.brand)), HTTP_X_API_KEY="")
    assert_error(response, 401, "missing_api_key", "X-API-Key")
    assert stored() == (0, 0)


@pytest.mark.parametrize(
    "key",
    ["rv_unknown_key_abcdefghijklmnopqrstuvwxyz012345", "not-a-revvvs-key", "rv_"],
)
def test_unknown_api_key_is_401(tenant, key):
    response = post_raw(tenant, json.dumps(event(tenant.brand)), HTTP_X_API_KEY=key)
    assert_error(response, 401, "invalid_api_key", "unknown or has been revoked")
    assert stored() == (0, 0)


def test_revoked_api_key_is_401(tenant):
    assert tenant.post(event(tenant.brand, idempotency_key="before")).status_code == 201
    api_key_revoke(api_key=tenant.api_key)

    response = tenant.post(event(tenant.brand, idempotency_key="after"))

    assert_error(response, 401, "invalid_api_key", "revoked")
    assert list(Event.objects.values_list("idempotency_key", flat=True)) == ["before"]


def test_key_of_one_operator_cannot_be_used_as_another_by_the_header_only(tenant, other_tenant):
    """The key decides the operator: a valid key with another operator's brand is refused
    per event (unknown brand_id), see test_event_validation."""
    response = post_raw(tenant, json.dumps(event(other_tenant.brand)))
    assert response.status_code == 400
    assert stored() == (0, 0)


# --- 400 whole request -----------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        '{"event_type": "registration",',
        '{"event_type": "registration",}',
        "{'event_type': 'registration'}",
        '{"amount": NaN}',
        '{"amount": Infinity}',
        "",
        "   ",
        "[" * 50_000,
    ],
    ids=[
        "truncated",
        "trailing-comma",
        "single-quotes",
        "nan",
        "infinity",
        "empty",
        "blank",
        "deep",
    ],
)
def test_malformed_json_is_400(tenant, data):
    body = assert_error(post_raw(tenant, data), 400, "malformed_json")
    assert body["message"]
    assert stored() == (0, 0)


def test_body_that_is_not_utf8_is_400(tenant):
    text = json.dumps(event(tenant.brand, player_external_ref="jos\xe9"), ensure_ascii=False)
    data = text.encode("latin-1")
    assert_error(post_raw(tenant, data), 400, "malformed_json", "UTF-8")
    assert stored() == (0, 0)


@pytest.mark.parametrize("data", ["[]", '"registration"', "42", "null", "true"])
def test_body_that_is_not_an_object_is_400(tenant, data):
    assert_error(post_raw(tenant, data), 400, "invalid_body", "must be a JSON object")
    assert stored() == (0, 0)


def test_a_bare_list_of_events_is_400_and_says_to_wrap_it(tenant):
    data = json.dumps([event(tenant.brand)])
    assert_error(post_raw(tenant, data), 400, "invalid_body", '{"events": [...]}')
    assert stored() == (0, 0)


def test_empty_batch_is_400(tenant):
    assert_error(tenant.post({"events": []}), 400, "empty_batch", "1 to 100")
    assert stored() == (0, 0)


def test_batch_of_101_events_is_400_and_nothing_is_stored(tenant):
    events = [
        event(tenant.brand, player_external_ref=f"p{i}", idempotency_key=f"k{i}")
        for i in range(101)
    ]
    assert_error(tenant.post({"events": events}), 400, "batch_too_large", "at most 100")
    assert stored() == (0, 0)


def test_batch_of_100_events_is_accepted(tenant):
    events = [
        event(tenant.brand, player_external_ref=f"p{i}", idempotency_key=f"k{i}")
        for i in range(100)
    ]
    response = tenant.post({"events": events})
    assert response.status_code == 200
    assert response.json()["summary"] == {
        "total": 100,
        "accepted": 100,
        "duplicates": 0,
        "errors": 0,
    }
    assert stored() == (100, 100)


@pytest.mark.parametrize("events", [{"a": 1}, "x", None, 3])
def test_events_that_is_not_a_list_is_400(tenant, events):
    assert_error(tenant.post({"events": events}), 400, "invalid_batch", "must be a list")
    assert stored() == (0, 0)


def test_batch_with_other_top_level_keys_is_400(tenant):
    body = {"events": [event(tenant.brand)], "brand_id": str(tenant.brand.id)}
    assert_error(tenant.post(body), 400, "invalid_batch", "brand_id")
    assert stored() == (0, 0)


# --- 413 / 415 -------------------------------------------------------------------------


def test_body_over_1_mib_is_413(tenant, settings):
    assert settings.EVENTS_MAX_BODY_BYTES == 1024 * 1024
    body = json.dumps(event(tenant.brand))
    data = body + " " * (1024 * 1024 + 1 - len(body))
    assert len(data) == 1024 * 1024 + 1
    assert_error(post_raw(tenant, data), 413, "payload_too_large", "1048576 bytes")
    assert stored() == (0, 0)


def test_body_of_exactly_1_mib_is_read(tenant):
    body = json.dumps(event(tenant.brand))
    data = body + " " * (1024 * 1024 - len(body))
    response = post_raw(tenant, data)
    assert response.status_code == 201, response.content
    assert stored() == (1, 1)


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "application/xml", ""],
)
def test_wrong_content_type_is_415(tenant, content_type):
    response = post_raw(tenant, json.dumps(event(tenant.brand)), content_type=content_type)
    assert_error(response, 415, "unsupported_media_type", "application/json")
    assert stored() == (0, 0)


def test_json_with_a_charset_is_accepted(tenant):
    response = post_raw(
        tenant, json.dumps(event(tenant.brand)), content_type="application/json; charset=utf-8"
    )
    assert response.status_code == 201


# --- 429 -------------------------------------------------------------------------------


@override_settings(EVENTS_RATE_LIMIT_PER_MINUTE=2)
def test_over_the_rate_limit_is_429_with_retry_after(tenant):
    assert tenant.post(event(tenant.brand, idempotency_key="a")).status_code == 201
    assert tenant.post(event(tenant.brand, idempotency_key="b")).status_code == 201

    response = tenant.post(event(tenant.brand, idempotency_key="c"))

    assert_error(response, 429, "rate_limited", "same idempotency keys")
    assert 1 <= int(response["Retry-After"]) <= 61
    assert not Event.objects.filter(idempotency_key="c").exists()


@override_settings(EVENTS_RATE_LIMIT_PER_MINUTE=1000)
def test_a_keys_own_rate_limit_overrides_the_default(tenant, other_tenant):
    tenant.api_key.rate_limit_per_minute = 1
    tenant.api_key.save()

    assert tenant.post(event(tenant.brand, idempotency_key="a")).status_code == 201
    limited = tenant.post(event(tenant.brand, idempotency_key="b"))
    # The limit is per key: another operator's key is not affected.
    other = other_tenant.post(event(other_tenant.brand, idempotency_key="b"))

    assert limited.status_code == 429 and limited["Retry-After"]
    assert other.status_code == 201
    assert Event.objects.filter(idempotency_key="b").count() == 1


@override_settings(EVENTS_RATE_LIMIT_PER_MINUTE=0)
def test_a_zero_limit_disables_rate_limiting(tenant):
    for i in range(5):
        assert tenant.post(event(tenant.brand, idempotency_key=f"k{i}")).status_code == 201


# --- 405 / 404 -------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["get", "put", "patch", "delete"])
def test_other_methods_on_events_are_405(tenant, method):
    response = getattr(tenant.client, method)("/api/v1/events", HTTP_X_API_KEY=tenant.key)
    body = assert_error(response, 405, "method_not_allowed")
    assert method.upper() in body["message"]


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_other_methods_on_an_event_are_405(tenant, method):
    event_id = tenant.post(event(tenant.brand)).json()["event_id"]
    response = getattr(tenant.client, method)(
        f"/api/v1/events/{event_id}", HTTP_X_API_KEY=tenant.key
    )
    assert_error(response, 405, "method_not_allowed")
    assert stored() == (1, 1)


@pytest.mark.parametrize(
    "path", ["/api/", "/api/v2/events", "/api/v1/event", "/api/v1/events/a/b", "/api/v1/players"]
)
@pytest.mark.parametrize("method", ["get", "post"])
def test_unknown_api_routes_are_json_404(tenant, path, method):
    response = getattr(tenant.client, method)(path, HTTP_X_API_KEY=tenant.key)
    assert_error(response, 404, "not_found", path)


def test_unknown_pages_outside_the_api_stay_html(client, db):
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")
