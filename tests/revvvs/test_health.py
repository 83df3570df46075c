"""GET /healthz and the clean 503 when the database fails during a request."""

from unittest import mock

import pytest
from django.db import OperationalError, connection

from attribution.models import Player
from events.models import Event
from tests.conftest import event


def test_healthz_answers_200_with_the_database_reachable(client, db):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}


def test_healthz_answers_503_when_the_database_is_unreachable(client, db):
    broken = mock.MagicMock()
    broken.cursor.side_effect = OperationalError("could not connect to server")
    with mock.patch("revvvs.views.connection", broken):
        response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "database": "unreachable"}


def _refuse_event_inserts(execute, sql, params, many, context):
    if sql.startswith('INSERT INTO "events_event"'):
        raise OperationalError("server closed the connection unexpectedly")
    return execute(sql, params, many, context)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("batch", [False, True], ids=["single", "batch"])
def test_a_database_failure_during_ingestion_is_a_clean_503(tenant, batch):
    body = event(tenant.brand)
    data = {"events": [body]} if batch else body

    with connection.execute_wrapper(_refuse_event_inserts):
        response = tenant.post(data)

    assert response.status_code == 503
    assert response["Content-Type"] == "application/json"
    assert response["Retry-After"] == "5"
    assert response.json() == {
        "code": "unavailable",
        "message": "the database is unavailable; retry with the same idempotency_key",
    }
    # Nothing was acknowledged and nothing is left behind (not even the player).
    assert (Event.objects.count(), Player.objects.count()) == (0, 0)

    # The retry with the same key, once the database is back, stores the event.
    retry = tenant.post(data)
    status = retry.json()["results"][0]["status"] if batch else retry.json()["status"]
    assert status == "accepted"
    assert Event.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_database_failure_on_a_page_is_a_plain_503(client):
    def refuse(execute, sql, params, many, context):
        raise OperationalError("the database system is starting up")

    with connection.execute_wrapper(refuse):
        response = client.post("/admin/login/", {"username": "x", "password": "y"})

    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert response["Content-Type"].startswith("text/html")
    assert b"temporarily unavailable" in response.content
