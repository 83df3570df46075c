"""The Event API as real operator backends send it (gzip, BOM, RFC 3339 times, -0.0)."""

import gzip
import json

import pytest
from rest_framework.test import APIClient

from tests.conftest import event

pytestmark = pytest.mark.django_db


def post_bytes(tenant, data: bytes, content_type="application/json", **extra):
    client = APIClient(raise_request_exception=False)
    return client.generic(
        "POST",
        "/api/v1/events",
        data=data,
        content_type=content_type,
        HTTP_X_API_KEY=tenant.key,
        **extra,
    )


def test_a_body_with_a_utf8_bom_is_read(tenant):
    # .NET's Encoding.UTF8, PowerShell and many Windows tools write a BOM; RFC 8259 lets a
    # parser ignore it. The guide's single event must be accepted.
    body = json.dumps(event(tenant.brand)).encode()
    response = post_bytes(tenant, b"\xef\xbb\xbf" + body)
    assert response.status_code == 201, response.content
    assert response.json()["status"] == "accepted"


def test_a_gzip_body_is_read_or_refused_as_an_encoding(tenant):
    body = gzip.compress(json.dumps(event(tenant.brand)).encode())
    response = post_bytes(tenant, body, HTTP_CONTENT_ENCODING="gzip")
    # Either decompressed and stored, or refused as a content coding the API does not take
    # (RFC 9110 §15.5.16: 415); never "your JSON is not UTF-8", which sends the developer
    # looking at the wrong thing.
    assert response.status_code in (201, 415), response.content
    if response.status_code == 415:
        assert (
            "gzip" in response.json()["message"].lower()
            or "encoding" in response.json()["message"].lower()
        )


def test_rfc3339_lowercase_z_is_an_offset(tenant):
    response = tenant.post(event(tenant.brand, event_time="2026-03-15T10:00:00z"))
    assert response.status_code == 201, response.content


def test_minus_zero_ngr_is_the_same_payload_as_zero(tenant):
    base = event(
        tenant.brand,
        event_type="ngr_update",
        idempotency_key="ngr_zero",
        currency="EUR",
    )
    first = post_bytes(tenant, json.dumps({**base, "amount": 0}).encode())
    assert first.status_code == 201, first.content
    again = post_bytes(tenant, json.dumps(base)[:-1].encode() + b', "amount": -0.0}')
    assert again.status_code == 200, again.content
    assert again.json()["payload_mismatch"] is False


def test_metadata_number_written_differently_is_not_a_mismatch(tenant):
    base = event(tenant.brand, idempotency_key="reg_meta")
    first = post_bytes(tenant, json.dumps({**base, "metadata": {"odds": 1.5}}).encode())
    assert first.status_code == 201, first.content
    text = json.dumps({**base, "metadata": {"odds": 0}}).replace('"odds": 0', '"odds": 1.50')
    again = post_bytes(tenant, text.encode())
    assert again.status_code == 200, again.content
    assert again.json()["payload_mismatch"] is False


def test_metadata_numbers_differing_past_28_digits_are_a_mismatch(tenant):
    """Compared by value, not rounded to Python's default 28-digit precision."""
    base = event(tenant.brand, idempotency_key="reg_meta_precise")
    text = json.dumps({**base, "metadata": {"ref": 0}})
    first = post_bytes(
        tenant, text.replace('"ref": 0', '"ref": 1.00000000000000000000000000001').encode()
    )
    assert first.status_code == 201, first.content
    again = post_bytes(
        tenant, text.replace('"ref": 0', '"ref": 1.00000000000000000000000000002').encode()
    )
    assert again.status_code == 200, again.content
    assert again.json()["payload_mismatch"] is True
