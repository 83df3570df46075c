"""Every request and response of the integration guide (seed/s2s-integration-guide.txt),
sent verbatim: the bodies below are the guide's text, with `your-brand-uuid` replaced by the
tenant's brand id, as an operator's developer would."""

import re
from decimal import Decimal

from attribution.models import Player
from events.models import Event

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")

GUIDE_SINGLE = """{
"event_type": "registration",
"event_time": "2026-03-15T10:00:00Z",
"brand_id": "your-brand-uuid",
"player_external_ref": "player_001",
"idempotency_key": "reg_player_001_20260315"
}"""

GUIDE_BATCH = """{
"events": [
{
"event_type": "registration",
"event_time": "2026-03-15T10:00:00Z",
"brand_id": "your-brand-uuid",
"player_external_ref": "player_001",
"idempotency_key": "reg_player_001"
},
{
"event_type": "first_deposit",
"event_time": "2026-03-15T10:30:00Z",
"brand_id": "your-brand-uuid",
"player_external_ref": "player_001",
"idempotency_key": "ftd_player_001",
"currency": "EUR",
"amount": 50.00
}
]
}"""

GUIDE_CLICK_ID = """{
"event_type": "registration",
"event_time": "2026-03-15T10:00:00Z",
"brand_id": "your-brand-uuid",
"player_external_ref": "player_001",
"idempotency_key": "reg_player_001",
"click_id": "abc-123-def",
"country": "GB"
}"""

GUIDE_NGR = """{
"event_type": "ngr_update",
"event_time": "2026-03-15T23:59:00Z",
"brand_id": "your-brand-uuid",
"player_external_ref": "player_001",
"idempotency_key": "ngr_player_001_20260315",
"currency": "EUR",
"amount": 500.00
}"""


def send(tenant, text):
    """POST the guide's text as the guide shows it: Content-Type and X-API-Key headers."""
    return tenant.client.post(
        "/api/v1/events",
        data=text.replace("your-brand-uuid", str(tenant.brand.id)),
        content_type="application/json",
        HTTP_X_API_KEY=tenant.key,
    )


def test_single_event_answers_201_accepted(tenant):
    response = send(tenant, GUIDE_SINGLE)

    assert response.status_code == 201, response.content
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == {"event_id", "idempotency_key", "status"}
    assert body["status"] == "accepted"
    assert body["idempotency_key"] == "reg_player_001_20260315"
    assert UUID_RE.match(body["event_id"])
    event = Event.objects.get(id=body["event_id"])
    assert event.operator == tenant.operator
    assert event.brand == tenant.brand
    assert event.event_type == "registration"
    assert event.event_time.isoformat() == "2026-03-15T10:00:00+00:00"
    assert event.player.external_ref == "player_001"
    assert event.payload["idempotency_key"] == "reg_player_001_20260315"


def test_single_event_sent_again_is_a_duplicate_with_the_original_event_id(tenant):
    first = send(tenant, GUIDE_SINGLE).json()

    response = send(tenant, GUIDE_SINGLE)

    assert response.status_code == 200
    assert response.json() == {
        "event_id": first["event_id"],
        "idempotency_key": "reg_player_001_20260315",
        "status": "duplicate",
        "payload_mismatch": False,
    }
    assert Event.objects.count() == 1


def test_batch_answers_the_guides_summary_and_results_in_input_order(tenant):
    response = send(tenant, GUIDE_BATCH)

    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == {"summary", "results"}
    assert body["summary"] == {"total": 2, "accepted": 2, "duplicates": 0, "errors": 0}
    assert [set(r) for r in body["results"]] == [{"event_id", "idempotency_key", "status"}] * 2
    assert [(r["idempotency_key"], r["status"]) for r in body["results"]] == [
        ("reg_player_001", "accepted"),
        ("ftd_player_001", "accepted"),
    ]
    ids = [r["event_id"] for r in body["results"]]
    assert all(UUID_RE.match(i) for i in ids) and len(set(ids)) == 2
    ftd = Event.objects.get(id=ids[1])
    assert ftd.event_type == "first_deposit"
    assert (ftd.currency, ftd.amount) == ("EUR", Decimal("50.0000"))
    # Both events are of the same player, stored once.
    assert Player.objects.filter(brand=tenant.brand).count() == 1
    assert Event.objects.get(id=ids[0]).player_id == ftd.player_id


def test_batch_sent_again_answers_duplicates_with_the_same_event_ids(tenant):
    first = send(tenant, GUIDE_BATCH).json()

    body = send(tenant, GUIDE_BATCH).json()

    assert body["summary"] == {"total": 2, "accepted": 0, "duplicates": 2, "errors": 0}
    assert [r["event_id"] for r in body["results"]] == [r["event_id"] for r in first["results"]]
    assert {r["status"] for r in body["results"]} == {"duplicate"}
    assert Event.objects.count() == 2


def test_click_id_passthrough_accepts_a_click_id_that_is_not_a_uuid(tenant):
    """The guide's click_id is `abc-123-def`: not one of our click UUIDs. An unknown click_id
    loses nothing: the registration is accepted (a warning at most, never an error)."""
    response = send(tenant, GUIDE_CLICK_ID)

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "accepted"
    assert body["idempotency_key"] == "reg_player_001"
    assert "errors" not in body
    assert body["warnings"] == ["click_id not found"]
    event = Event.objects.get(id=body["event_id"])
    assert event.payload["click_id"] == "abc-123-def"
    assert event.payload["country"] == "GB"
    player = Player.objects.get(brand=tenant.brand, external_ref="player_001")
    assert player.registered_at is not None
    assert player.country == "GB"


def test_ngr_update_example_stores_500_eur_exactly(tenant):
    response = send(tenant, GUIDE_NGR)

    assert response.status_code == 201, response.content
    assert response.json()["status"] == "accepted"
    event = Event.objects.get(id=response.json()["event_id"])
    assert event.event_type == "ngr_update"
    assert event.currency == "EUR"
    assert event.amount == Decimal("500.00")
    assert isinstance(event.amount, Decimal)
    # Events may arrive before the registration: the player exists, unregistered.
    assert event.player.registered_at is None


def test_idempotency_keys_are_per_operator(tenant, other_tenant):
    """ "Two different operators can use the same key." (guide, Idempotency)"""
    mine = send(tenant, GUIDE_SINGLE)
    theirs = send(other_tenant, GUIDE_SINGLE)

    assert (mine.status_code, theirs.status_code) == (201, 201)
    assert mine.json()["event_id"] != theirs.json()["event_id"]
    assert Event.objects.filter(idempotency_key="reg_player_001_20260315").count() == 2
