"""A batch costs a constant number of queries, whatever its size (STYLE: set-based hot
path). The pin below is exact so that a per-event query shows up as a failure."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests.conftest import event

TYPES = ("registration", "first_deposit", "deposit", "ngr_update", "chargeback")


def mixed_batch(brand, size, tag):
    """`size` events: each player gets a registration, FTD, deposit, NGR update and
    chargeback, in that order; players are new to the database."""
    events = []
    for n in range(size):
        event_type = TYPES[n % len(TYPES)]
        body = event(
            brand,
            event_type=event_type,
            player_external_ref=f"{tag}_player_{n // len(TYPES):03d}",
            idempotency_key=f"{tag}_{n:03d}",
            event_time=f"2026-03-15T10:{n % 60:02d}:00Z",
        )
        if event_type != "registration":
            body.update(currency="EUR", amount="-12.50" if event_type == "ngr_update" else "20")
        events.append(body)
    return {"events": events}


@pytest.fixture
def warm_tenant(tenant):
    # last_used_at is refreshed at most once a minute; keep that write out of the count.
    tenant.api_key.last_used_at = timezone.now()
    tenant.api_key.save()
    return tenant


def count_queries(tenant, body):
    with CaptureQueriesContext(connection) as queries:
        response = tenant.post(body)
    assert response.status_code == 200
    assert response.json()["summary"]["accepted"] == len(body["events"])
    return len(queries), [q["sql"] for q in queries]


def test_a_batch_of_100_mixed_events_takes_a_pinned_number_of_queries(
    warm_tenant, django_assert_num_queries
):
    body = mixed_batch(warm_tenant.brand, 100, "pin")
    with django_assert_num_queries(PINNED_QUERIES):
        response = warm_tenant.post(body)
    assert response.json()["summary"]["accepted"] == 100


def test_query_count_does_not_grow_with_the_batch(warm_tenant):
    small, small_sql = count_queries(warm_tenant, mixed_batch(warm_tenant.brand, 10, "small"))
    large, large_sql = count_queries(warm_tenant, mixed_batch(warm_tenant.brand, 100, "large"))
    assert small == large, "\n".join(large_sql)


def test_a_batch_of_duplicates_takes_no_more_queries_than_the_first_send(warm_tenant):
    body = mixed_batch(warm_tenant.brand, 100, "dup")
    first, _ = count_queries(warm_tenant, body)
    with CaptureQueriesContext(connection) as queries:
        response = warm_tenant.post(body)
    assert response.json()["summary"]["duplicates"] == 100
    assert len(queries) <= first


# The queries of one batch, whatever its size (the test runs inside a transaction, so the
# ingestion transaction is a savepoint):
#   1 SELECT the API key, with its operator and the operator's brand ids
#   2 SAVEPOINT
#   3 SELECT the batch's players, INSERTing the new ones (one statement: a CTE with
#     INSERT ... ON CONFLICT DO NOTHING RETURNING; a second SELECT follows only when a
#     concurrent request created some of them meanwhile)
#   4 INSERT the events (ON CONFLICT DO NOTHING RETURNING id: which were stored)
#   5 UPDATE the registered players (attribution.events_apply, one set-based statement)
#   6 the booking state, one execute (commissions.events_book): the players locked and
#     re-read (an organic player may be being reassigned meanwhile), their plans, CPA and
#     NGR state, the period floor; nothing books here (no plans)
#   7 RELEASE SAVEPOINT
# Attribution and commissions add their per-batch queries here when their rules need them.
PINNED_QUERIES = 7
