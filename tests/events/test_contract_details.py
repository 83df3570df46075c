"""Details of docs/events.md (the Event Reference): the metadata size, money as strings,
fields sent twice."""

import json

from events.models import Event
from tests.events.api_input_helpers import deposit, post_json, post_raw, registration


def test_metadata_size_is_measured_in_utf8_bytes(tenant):
    """docs/events.md: metadata "up to 4 KiB (4,096 bytes as compact JSON)", and under
    Decisions: "metadata size is measured as compact JSON in UTF-8". 1,300 euro signs are
    3,900 bytes of UTF-8 (3,913 as compact JSON); the check counts each as a 6-byte \\u20ac
    escape (7,813) and refuses the event."""
    metadata = {"note": "\u20ac" * 1300}
    assert len(json.dumps(metadata, ensure_ascii=False, separators=(",", ":")).encode()) < 4096

    response = post_json(tenant, registration(tenant, metadata=metadata))

    assert response.status_code == 201, response.content


def test_an_integer_amount_is_returned_as_a_string(tenant):
    """docs/events.md: "Revvvs returns money as strings ("50.00") so that no JSON parser
    turns it into a float" and, for GET, "payload is the event as you sent it, except that
    amounts are strings". A JSON integer amount (`50`, documented as the same as "50.00")
    is kept as a number in the stored payload and returned as one."""
    data = json.dumps(deposit(tenant)).replace('"25.00"', "50")
    event_id = post_raw(tenant, data).json()["event_id"]

    payload = tenant.get_event(event_id).json()["payload"]

    assert isinstance(payload["amount"], str), payload


def test_a_field_sent_twice_is_an_error_naming_it(tenant):
    body = json.dumps(deposit(tenant))[:-1] + ', "amount": "99.00"}'  # amount twice

    response = post_raw(tenant, body)

    assert response.status_code == 400
    assert response.json()["errors"] == [
        {
            "field": "amount",
            "message": "is sent more than once in the same object; send it once",
        }
    ]
    assert not Event.objects.exists()


def test_a_field_sent_twice_in_metadata_is_an_error_naming_where(tenant):
    event = json.dumps(registration(tenant, metadata={"campaign": "a"}))
    body = event.replace('"campaign": "a"', '"campaign": "a", "campaign": "b"')

    response = post_raw(tenant, body)

    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "metadata.campaign"


def test_a_batch_with_events_twice_is_refused(tenant):
    one = json.dumps(registration(tenant))
    response = post_raw(tenant, f'{{"events": [{one}], "events": [{one}]}}')
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_batch"
    assert not Event.objects.exists()


def test_an_unexpected_batch_key_that_utf8_cannot_encode_is_a_400(tenant):
    one = json.dumps(registration(tenant))
    response = post_raw(tenant, f'{{"events": [{one}], "\\ud800": 1}}')
    assert response.status_code == 400
    assert '"\\ud800"' in response.json()["message"]
