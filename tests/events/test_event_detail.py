"""GET /api/v1/events/{event_id}: the stored event and what it did."""

from tests.conftest import event


def test_get_returns_the_stored_event(tenant):
    sent = event(
        tenant.brand,
        click_id="abc-123-def",
        country="GB",
        ip_address="203.0.113.7",
        metadata={"campaign": "spring"},
    )
    created = tenant.post(sent).json()

    response = tenant.get_event(created["event_id"])

    assert response.status_code == 200
    body = response.json()
    assert body["event_id"] == created["event_id"]
    assert body["idempotency_key"] == "reg_player_001"
    assert body["status"] == "accepted"
    assert body["event_type"] == "registration"
    assert body["event_time"] == "2026-03-15T10:00:00Z"
    assert body["received_at"].endswith("Z")
    assert body["brand_id"] == str(tenant.brand.id)
    assert body["player_external_ref"] == "player_001"
    assert body["payload"]["click_id"] == "abc-123-def"
    assert body["payload"]["metadata"] == {"campaign": "spring"}
    assert "ip_address" not in body["payload"]  # only its HMAC is kept
    assert isinstance(body["warnings"], list)
    assert isinstance(body["ledger_entries"], list)
    assert body["attribution"]["applied"] is True


def test_get_shows_money_as_a_string(tenant):
    created = tenant.post(
        event(
            tenant.brand,
            event_type="deposit",
            idempotency_key="dep",
            currency="EUR",
            amount=12.5,
        )
    ).json()
    body = tenant.get_event(created["event_id"]).json()
    assert body["payload"]["amount"] == "12.5"
    assert body["payload"]["currency"] == "EUR"
    assert "attribution" not in body


def test_get_accepts_a_trailing_slash(tenant):
    created = tenant.post(event(tenant.brand)).json()
    response = tenant.client.get(
        f"/api/v1/events/{created['event_id']}/", HTTP_X_API_KEY=tenant.key
    )
    assert response.status_code == 200
    assert response.json()["event_id"] == created["event_id"]
