"""A chunked request body (no Content-Length, what Go's and Java's HTTP clients send for a
streamed body) is read, not taken for an empty one. Served by gunicorn, whose input ends
the chunked body (`wsgi.input_terminated`); the test builds that request by hand."""

import io
import json

import pytest
from django.test import Client

from tests.conftest import event

pytestmark = pytest.mark.django_db


def post_chunked(tenant, body: bytes, *, terminated=True):
    return Client().generic(
        "POST",
        "/api/v1/events",
        b"",
        content_type="application/json",
        HTTP_X_API_KEY=tenant.key,
        CONTENT_TYPE="application/json",
        CONTENT_LENGTH="",
        HTTP_TRANSFER_ENCODING="chunked",
        **{"wsgi.input": io.BytesIO(body), "wsgi.input_terminated": terminated},
    )


def test_a_chunked_event_is_accepted(tenant):
    response = post_chunked(tenant, json.dumps(event(tenant.brand)).encode())

    assert response.status_code == 201, response.content
    assert response.json()["status"] == "accepted"


def test_a_chunked_body_over_the_limit_is_refused(tenant, settings):
    response = post_chunked(tenant, b" " * (settings.EVENTS_MAX_BODY_BYTES + 10))

    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"
