"""Helpers of the Event API's hostile-input tests."""

import json

from rest_framework.test import APIClient

from tests.conftest import event


def post_raw(tenant, data, content_type="application/json"):
    """POST `data` as is; a server error is answered (500), not raised into the test."""
    client = APIClient(raise_request_exception=False)
    return client.generic(
        "POST", "/api/v1/events", data=data, content_type=content_type, HTTP_X_API_KEY=tenant.key
    )


def post_json(tenant, body):
    """POST `body` as JSON (lone surrogates travel as \\udXXX escapes, NUL as \\u0000)."""
    return post_raw(tenant, json.dumps(body, default=str))


def registration(tenant, **fields):
    return event(tenant.brand, **fields)


def deposit(tenant, **fields):
    body = event(tenant.brand, event_type="deposit", idempotency_key="dep_1")
    body.update(currency="EUR", amount="25.00")
    body.update(fields)
    return body


def chargeback(tenant, **fields):
    return deposit(tenant, event_type="chargeback", idempotency_key="cb_1", **fields)
