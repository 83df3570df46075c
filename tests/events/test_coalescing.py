"""Group commit of single events (events.coalescing): concurrent one-event requests of a
process share `events_ingest` rounds, and each still gets its own answer."""

import json
import threading
import time
from collections import Counter
from types import SimpleNamespace

import pytest
from django.db import OperationalError, connection
from django.test import Client

from events import services
from events.coalescing import SingleEventCoalescer
from events.models import Event
from tests.conftest import event


def _key(pk):
    return SimpleNamespace(pk=pk)


class SlowIngest:
    """An ingest that records its calls and takes `seconds`, so that threads pile up."""

    def __init__(self, seconds=0.05, fail_for=None):
        self.seconds = seconds
        self.fail_for = fail_for
        self.calls = []
        self.lock = threading.Lock()

    def __call__(self, *, api_key, raw_events):
        with self.lock:
            self.calls.append((api_key.pk, list(raw_events)))
        time.sleep(self.seconds)
        if api_key.pk == self.fail_for:
            raise OperationalError("the database went away")
        return [f"outcome of {raw}" for raw in raw_events]


def run_threads(coalescer, jobs):
    """Each (api_key, raw) from its own thread, released together; their results in order."""
    barrier = threading.Barrier(len(jobs))
    results = [None] * len(jobs)

    def worker(index, api_key, raw):
        barrier.wait(timeout=10)
        try:
            results[index] = coalescer.ingest(api_key=api_key, raw_event=raw)
        except Exception as exc:  # noqa: BLE001 - the test looks at what each thread got
            results[index] = exc

    threads = [
        threading.Thread(target=worker, args=(i, key, raw)) for i, (key, raw) in enumerate(jobs)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    assert not any(thread.is_alive() for thread in threads), "a request never got its answer"
    return results


def test_alone_a_request_is_a_round_of_one():
    ingest = SlowIngest(seconds=0)
    coalescer = SingleEventCoalescer(ingest)
    assert coalescer.ingest(api_key=_key(1), raw_event="a") == "outcome of a"
    assert coalescer.ingest(api_key=_key(1), raw_event="b") == "outcome of b"
    assert ingest.calls == [(1, ["a"]), (1, ["b"])]


def test_concurrent_requests_share_rounds_and_each_gets_its_own_outcome():
    ingest = SlowIngest(seconds=0.05)
    coalescer = SingleEventCoalescer(ingest)
    jobs = [(_key(1), f"e{n}") for n in range(12)]

    results = run_threads(coalescer, jobs)

    assert results == [f"outcome of e{n}" for n in range(12)]
    # While the first round sleeps, the others wait and go together in the next ones.
    assert len(ingest.calls) < 12
    assert sorted(raw for _, raws in ingest.calls for raw in raws) == sorted(raw for _, raw in jobs)


def test_a_round_ingests_each_api_key_apart():
    ingest = SlowIngest(seconds=0.05)
    coalescer = SingleEventCoalescer(ingest)
    jobs = [(_key(n % 2 + 1), f"e{n}") for n in range(10)]

    results = run_threads(coalescer, jobs)

    assert results == [f"outcome of e{n}" for n in range(10)]
    for pk, raws in ingest.calls:
        assert {int(raw[1:]) % 2 + 1 for raw in raws} == {pk}


def test_a_database_error_reaches_every_request_of_its_key_and_no_other():
    ingest = SlowIngest(seconds=0.05, fail_for=2)
    coalescer = SingleEventCoalescer(ingest)
    jobs = [(_key(n % 2 + 1), f"e{n}") for n in range(8)]

    results = run_threads(coalescer, jobs)

    for n, result in enumerate(results):
        if n % 2 + 1 == 2:
            assert isinstance(result, OperationalError)
        else:
            assert result == f"outcome of e{n}"
    # The next request after the failure is served as usual: no round is left stuck.
    assert coalescer.ingest(api_key=_key(1), raw_event="later") == "outcome of later"


def post(key, body):
    return Client().post(
        "/api/v1/events",
        data=json.dumps(body),
        content_type="application/json",
        HTTP_X_API_KEY=key,
    )


@pytest.mark.django_db(transaction=True)
def test_single_events_sent_at_once_are_stored_once_each_in_shared_rounds(tenant, monkeypatch):
    """Real threads on PostgreSQL: a slow first round makes the others pile up; every event
    is stored once with its player, a key sent twice is accepted once, and the answers
    are the ones the API gives a request alone."""
    calls = []

    def slow_first_round(*, api_key, raw_events):
        calls.append(len(raw_events))
        if len(calls) == 1:
            time.sleep(0.3)
        return services.events_ingest(api_key=api_key, raw_events=raw_events)

    monkeypatch.setattr(services, "_single_events", SingleEventCoalescer(slow_first_round))
    bodies = [
        event(tenant.brand, player_external_ref=f"p{n}", idempotency_key=f"reg_{n}")
        for n in range(10)
    ]
    bodies.append(dict(bodies[3]))  # the same key again, from another request
    bodies.append({**bodies[0], "idempotency_key": "bad", "brand_id": "not-a-uuid"})
    barrier = threading.Barrier(len(bodies))
    responses = [None] * len(bodies)

    def worker(index, body):
        try:
            barrier.wait(timeout=10)
            responses[index] = post(tenant.key, body)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i, b)) for i, b in enumerate(bodies)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert len(calls) < len(bodies)
    assert sum(calls) == len(bodies)
    statuses = [r.status_code for r in responses]
    assert statuses[-1] == 400
    assert responses[-1].json()["status"] == "error"
    by_key = Counter()
    for response in responses[:-1]:
        body = response.json()
        by_key[(body["idempotency_key"], body["status"])] += 1
        assert response.status_code == {"accepted": 201, "duplicate": 200}[body["status"]]
    assert by_key[("reg_3", "accepted")] == 1
    assert by_key[("reg_3", "duplicate")] == 1
    assert all(by_key[(f"reg_{n}", "accepted")] == 1 for n in range(10))
    assert Counter(Event.objects.values_list("idempotency_key", flat=True)) == Counter(
        {f"reg_{n}": 1 for n in range(10)}
    )
    ids = {r.json()["event_id"] for r in responses[:-1] if r.json()["idempotency_key"] == "reg_3"}
    assert len(ids) == 1
