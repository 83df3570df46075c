"""The OpenAPI schema and the browsable docs work without any external network."""

import re

import pytest
import yaml

from events.models import EventType


@pytest.fixture
def schema(client, db):
    response = client.get("/api/schema/")
    assert response.status_code == 200
    return yaml.safe_load(response.content)


def test_schema_describes_the_event_api(schema):
    assert schema["info"]["title"] == "Revvvs Event API"
    post = schema["paths"]["/api/v1/events"]["post"]
    assert set(post["responses"]) >= {"200", "201", "400", "401", "413", "415", "429"}
    get = schema["paths"]["/api/v1/events/{event_id}"]["get"]
    assert set(get["responses"]) >= {"200", "401", "404"}


def test_schema_declares_the_x_api_key_security_scheme(schema):
    assert schema["components"]["securitySchemes"]["ApiKeyAuth"] == {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
    }
    for path in ("/api/v1/events", "/api/v1/events/{event_id}"):
        for operation in schema["paths"][path].values():
            assert operation["security"] == [{"ApiKeyAuth": []}]


def test_schema_documents_request_and_response_bodies(schema):
    components = schema["components"]["schemas"]
    event = components["EventSchema"]
    assert set(event["required"]) == {
        "event_type",
        "event_time",
        "brand_id",
        "player_external_ref",
        "idempotency_key",
    }
    assert {"click_id", "currency", "amount", "metadata", "status"} <= set(event["properties"])
    assert event["properties"]["event_type"]["$ref"] == "#/components/schemas/EventTypeEnum"
    assert set(components["EventTypeEnum"]["enum"]) == set(EventType.values)
    assert set(components["SummarySchema"]["properties"]) == {
        "total",
        "accepted",
        "duplicates",
        "errors",
    }
    assert set(components["ApiErrorSchema"]["properties"]) == {"code", "message"}
    post = schema["paths"]["/api/v1/events"]["post"]
    examples = post["requestBody"]["content"]["application/json"]["examples"]
    assert {"SingleEvent", "Batch", "RegistrationWithClickId", "NGRUpdate"} <= set(examples)
    batch = examples["Batch"]["value"]["events"]
    assert batch[1]["amount"] == 50.0 and batch[1]["currency"] == "EUR"


def test_swagger_ui_uses_only_local_assets(client, db):
    response = client.get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "/api/schema/" in html
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html), "external asset"
    assert not re.search(r"https?://(?!localhost|127\.0\.0\.1|testserver)", html)
    assets = re.findall(r"""(?:src|href)=["'](/static/[^"']+)["']""", html)
    assert any(a.endswith("swagger-ui-bundle.js") for a in assets)
    for asset in assets:
        served = client.get(asset)
        assert served.status_code == 200, asset
        body = b"".join(served.streaming_content) if served.streaming else served.content
        assert len(body) > 0
