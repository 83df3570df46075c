import json
from dataclasses import dataclass

import pytest
from rest_framework.test import APIClient

from tests.factories import ApiKeyFactory, BrandFactory, OperatorFactory


@dataclass
class Tenant:
    """An operator with a brand and an API key, and a client that sends events as it."""

    operator: object
    brand: object
    api_key: object
    key: str
    client: APIClient

    def post(self, body, **extra):
        return self.client.post(
            "/api/v1/events",
            data=json.dumps(body, default=str),
            content_type="application/json",
            HTTP_X_API_KEY=self.key,
            **extra,
        )

    def get_event(self, event_id):
        return self.client.get(f"/api/v1/events/{event_id}", HTTP_X_API_KEY=self.key)


def make_tenant() -> Tenant:
    operator = OperatorFactory()
    brand = BrandFactory(operator=operator)
    raw_key = f"rv_test_{operator.pk:06d}_abcdefghijklmnopqrstuvwxyz012345"
    api_key = ApiKeyFactory(operator=operator, raw_key=raw_key)
    return Tenant(operator=operator, brand=brand, api_key=api_key, key=raw_key, client=APIClient())


@pytest.fixture
def tenant(db) -> Tenant:
    return make_tenant()


@pytest.fixture
def other_tenant(db) -> Tenant:
    return make_tenant()


def event(brand, **fields) -> dict:
    """A valid registration unless fields say otherwise."""
    body = {
        "event_type": "registration",
        "event_time": "2026-03-15T10:00:00Z",
        "brand_id": str(brand.id),
        "player_external_ref": "player_001",
        "idempotency_key": "reg_player_001",
    }
    body.update(fields)
    return {k: v for k, v in body.items() if v is not ...}
