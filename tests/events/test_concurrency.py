"""Concurrent retries on PostgreSQL with real threads: the database constraint, not the
application, decides which request stores an event; every other answer is `duplicate`."""

import json
import random
import threading
from collections import Counter, defaultdict

import pytest
from django.db import connection
from django.test import Client

from attribution.models import Player
from events.models import Event
from tests.conftest import event

CLIENTS = 16
KEYS = 48
PER_BATCH = 24


def make_event(brand, n):
    """Event number n: the same payload whoever sends it, so duplicates do not mismatch."""
    player = f"player_{n % 12:03d}"
    if n % 4 == 0:
        return event(brand, player_external_ref=player, idempotency_key=f"key_{n:03d}")
    body = event(
        brand, event_type="deposit", player_external_ref=player, idempotency_key=f"key_{n:03d}"
    )
    body.update(currency="EUR", amount=f"{n}.50")
    return body


def run_concurrently(bodies_per_client, key):
    """Send each client's body from its own thread, all released at once by a barrier."""
    barrier = threading.Barrier(len(bodies_per_client))
    responses = [None] * len(bodies_per_client)
    failures = []

    def worker(index, body):
        try:
            client = Client()
            barrier.wait(timeout=30)
            responses[index] = client.post(
                "/api/v1/events",
                data=json.dumps(body),
                content_type="application/json",
                HTTP_X_API_KEY=key,
            )
        except Exception as exc:  # reported below, with the thread's index
            failures.append((index, repr(exc)))
        finally:
            connection.close()

    threads = [
        threading.Thread(target=worker, args=(i, body)) for i, body in enumerate(bodies_per_client)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not failures, failures
    return responses


@pytest.mark.django_db(transaction=True)
def test_overlapping_batches_from_16_clients_store_each_key_once(tenant):
    rng = random.Random(2026)
    batches = []
    for i in range(CLIENTS):
        numbers = [(i * 5 + j) % KEYS for j in range(PER_BATCH)]  # windows that overlap
        rng.shuffle(numbers)
        batches.append({"events": [make_event(tenant.brand, n) for n in numbers]})

    responses = run_concurrently(batches, tenant.key)

    statuses = Counter()
    ids_by_key = defaultdict(set)
    for response in responses:
        assert response.status_code == 200, response.content
        body = response.json()
        assert body["summary"]["errors"] == 0, body
        assert body["summary"]["total"] == PER_BATCH
        for result in body["results"]:
            statuses[(result["idempotency_key"], result["status"])] += 1
            ids_by_key[result["idempotency_key"]].add(result["event_id"])
            if result["status"] == "duplicate":
                assert result["payload_mismatch"] is False
    sent_keys = {e["idempotency_key"] for b in batches for e in b["events"]}
    for key in sent_keys:
        assert statuses[(key, "accepted")] == 1, key
        # Every answer for a key, accepted or duplicate, names the same stored event.
        assert len(ids_by_key[key]) == 1, key
    assert sum(n for (_, s), n in statuses.items() if s == "duplicate") == (
        CLIENTS * PER_BATCH - len(sent_keys)
    )
    stored = Counter(Event.objects.values_list("idempotency_key", flat=True))
    assert stored == Counter(dict.fromkeys(sent_keys, 1))
    assert {str(i) for i in Event.objects.values_list("id", flat=True)} == {
        next(iter(ids)) for ids in ids_by_key.values()
    }
    assert Player.objects.filter(brand=tenant.brand).count() == 12


@pytest.mark.django_db(transaction=True)
def test_concurrent_retries_of_one_single_event_store_it_once(tenant):
    body = event(tenant.brand, idempotency_key="reg_retry")

    responses = run_concurrently([body] * CLIENTS, tenant.key)

    codes = Counter(r.status_code for r in responses)
    assert codes == {201: 1, 200: CLIENTS - 1}
    assert {r.json()["event_id"] for r in responses} == {str(Event.objects.get().id)}
    assert Counter(r.json()["status"] for r in responses) == {
        "accepted": 1,
        "duplicate": CLIENTS - 1,
    }
    assert Player.objects.count() == 1
