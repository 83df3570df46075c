"""Tenancy of the Event API: a key acts for its operator only."""

import uuid

import pytest

from attribution.models import Player
from events.models import Event
from tests.conftest import event


def test_operator_cannot_send_for_another_operators_brand(tenant, other_tenant):
    response = tenant.post(event(other_tenant.brand))

    assert response.status_code == 400
    assert response.json()["errors"] == [{"field": "brand_id", "message": "unknown brand_id"}]
    assert not Event.objects.exists()
    assert not Player.objects.filter(brand=other_tenant.brand).exists()


def test_in_a_batch_a_foreign_brand_is_that_events_error_only(tenant, other_tenant):
    events = [
        event(tenant.brand, idempotency_key="mine"),
        event(other_tenant.brand, idempotency_key="theirs"),
    ]
    body = tenant.post({"events": events}).json()
    assert [r["status"] for r in body["results"]] == ["accepted", "error"]
    assert list(Event.objects.values_list("brand_id", flat=True)) == [tenant.brand.id]


def test_operator_cannot_read_another_operators_event(tenant, other_tenant):
    theirs = other_tenant.post(event(other_tenant.brand)).json()["event_id"]

    response = tenant.get_event(theirs)

    assert response.status_code == 404
    assert response.json() == {
        "code": "not_found",
        "message": "no event with this event_id for your operator",
    }
    # The owner reads it.
    assert other_tenant.get_event(theirs).status_code == 200


@pytest.mark.parametrize("event_id", ["not-a-uuid", "123", str(uuid.uuid4())])
def test_malformed_or_unknown_event_id_is_404(tenant, event_id):
    response = tenant.get_event(event_id)
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_reading_an_event_needs_a_valid_key(tenant):
    event_id = tenant.post(event(tenant.brand)).json()["event_id"]
    response = tenant.client.get(f"/api/v1/events/{event_id}")
    assert response.status_code == 401
    assert response.json()["code"] == "missing_api_key"
    response = tenant.client.get(f"/api/v1/events/{event_id}", HTTP_X_API_KEY="rv_nope")
    assert response.status_code == 401
