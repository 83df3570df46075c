"""The ingestion hot path's PostgreSQL shortcuts behave exactly like the portable ORM code
they replace: the one-statement event insert (with the bulk_create fallback) and the
one-query API key lookup."""

from decimal import Decimal

from events import services
from events.models import Event
from events.services import api_key_authenticate, api_key_revoke
from tests.conftest import event
from tests.factories import BrandFactory

STORED_FIELDS = (
    "operator_id",
    "brand_id",
    "api_key_id",
    "event_type",
    "event_time",
    "payload",
    "payload_hash",
    "currency",
    "amount",
    "warnings",
)


def batch(brand, tag):
    return {
        "events": [
            event(brand, player_external_ref=f"{tag}_p1", idempotency_key=f"{tag}_reg"),
            event(
                brand,
                event_type="first_deposit",
                player_external_ref=f"{tag}_p1",
                idempotency_key=f"{tag}_ftd",
                currency="EUR",
                amount="50.1234",
                metadata={"nested": {"fee": 1.5, "tags": ["a", "b"]}, "note": 'é "q"'},
            ),
            event(
                brand,
                event_type="ngr_update",
                player_external_ref=f"{tag}_p2",
                idempotency_key=f"{tag}_ngr",
                event_time="2026-03-15T12:30:00.123456+02:00",
                currency="EUR",
                amount=-12,
            ),
            # Repeated in the batch: a duplicate of its first use, with a different payload.
            event(
                brand,
                player_external_ref=f"{tag}_p9",
                idempotency_key=f"{tag}_reg",
            ),
        ]
    }


def stored(operator, tag):
    rows = Event.objects.filter(operator=operator, idempotency_key__startswith=f"{tag}_")
    return {
        row.idempotency_key.removeprefix(f"{tag}_"): (
            {name: getattr(row, name) for name in STORED_FIELDS}
            | {"player": row.player.external_ref.removeprefix(f"{tag}_")}
            | {"payload": {**row.payload, "idempotency_key": None, "player_external_ref": None}}
            | {"payload_hash": None}
        )
        for row in rows
    }


def send_twice(tenant, tag):
    first = tenant.post(batch(tenant.brand, tag))
    again = tenant.post(batch(tenant.brand, tag))
    assert first.status_code == again.status_code == 200
    return first.json(), again.json()


def summary_and_statuses(body):
    return body["summary"], [
        (r["status"], r.get("payload_mismatch"), r.get("warnings")) for r in body["results"]
    ]


def test_the_one_statement_insert_and_the_bulk_create_fallback_store_the_same(tenant, monkeypatch):
    fast_first, fast_again = send_twice(tenant, "fast")
    monkeypatch.setattr(services, "_events_insert_sql", lambda: None)
    slow_first, slow_again = send_twice(tenant, "slow")

    assert fast_first["summary"] == {"total": 4, "accepted": 3, "duplicates": 1, "errors": 0}
    assert fast_again["summary"] == {"total": 4, "accepted": 0, "duplicates": 4, "errors": 0}
    assert summary_and_statuses(fast_first) == summary_and_statuses(slow_first)
    assert summary_and_statuses(fast_again) == summary_and_statuses(slow_again)
    # The in-batch repeat differs from its first use; the resent batch does not.
    assert fast_first["results"][3]["payload_mismatch"] is True
    assert fast_first["results"][3]["event_id"] == fast_first["results"][0]["event_id"]
    assert [r["payload_mismatch"] for r in fast_again["results"]] == [False, False, False, True]
    assert [r["event_id"] for r in fast_again["results"]] == [
        r["event_id"] for r in fast_first["results"]
    ]

    fast, slow = stored(tenant.operator, "fast"), stored(tenant.operator, "slow")
    assert set(fast) == {"reg", "ftd", "ngr"}
    assert fast == slow
    assert fast["ftd"]["amount"] == Decimal("50.1234")
    assert fast["ngr"]["amount"] == Decimal("-12.0000")
    assert fast["ngr"]["event_time"].isoformat() == "2026-03-15T10:30:00.123456+00:00"
    assert fast["ftd"]["payload"]["metadata"] == {
        "nested": {"fee": "1.5", "tags": ["a", "b"]},
        "note": 'é "q"',
    }


def test_the_returned_ids_are_the_stored_rows(tenant):
    body = tenant.post(batch(tenant.brand, "ids")).json()
    ids = {r["event_id"] for r in body["results"]}
    stored_ids = {
        str(pk)
        for pk in Event.objects.filter(operator=tenant.operator).values_list("id", flat=True)
    }
    assert ids == stored_ids


def test_the_key_lookup_brings_its_operator_and_every_brand_of_it(tenant, other_tenant):
    second_brand = BrandFactory(operator=tenant.operator)
    api_key = api_key_authenticate(key=tenant.key)
    assert api_key.pk == tenant.api_key.pk
    assert api_key.operator == tenant.operator
    assert api_key.operator.name == tenant.operator.name
    assert api_key.last_used_at is not None
    assert services._operator_brand_ids(api_key) == {tenant.brand.id, second_brand.id}
    assert other_tenant.brand.id not in services._operator_brand_ids(api_key)


def test_a_revoked_key_stops_working_on_the_next_request(tenant):
    assert tenant.post(event(tenant.brand)).status_code == 201
    api_key_revoke(api_key=tenant.api_key)
    response = tenant.post(event(tenant.brand, idempotency_key="after_revoke"))
    assert response.status_code == 401
    assert api_key_authenticate(key=tenant.key) is None
    assert not Event.objects.filter(idempotency_key="after_revoke").exists()
