"""Details of docs/events.md (the Event Reference): the metadata size, money as strings."""

import json

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
