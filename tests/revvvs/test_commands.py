"""Management commands: create_operator, create_api_key, seed_demo (--json outputs)."""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from attribution.models import Player
from events.models import ApiKey, Event
from revvvs.models import Brand, Operator, User


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def send_registration(key, brand_id, idempotency_key):
    return APIClient().post(
        "/api/v1/events",
        data=json.dumps(
            {
                "event_type": "registration",
                "event_time": "2026-03-15T10:00:00Z",
                "brand_id": brand_id,
                "player_external_ref": "player_001",
                "idempotency_key": idempotency_key,
            }
        ),
        content_type="application/json",
        HTTP_X_API_KEY=key,
    )


@pytest.mark.django_db
def test_create_operator_prints_its_ids_and_a_working_key():
    result = json.loads(
        run(
            "create_operator",
            "--name",
            "Acme Gaming",
            "--brand",
            "Acme Casino",
            "--brand",
            "Acme Sports",
            "--json",
        )
    )

    assert set(result) == {"operator_id", "api_key", "brands"}
    operator = Operator.objects.get(pk=result["operator_id"])
    assert operator.name == "Acme Gaming"
    assert [b["name"] for b in result["brands"]] == ["Acme Casino", "Acme Sports"]
    assert all(set(b) == {"brand_id", "name"} for b in result["brands"])
    assert set(Brand.objects.filter(operator=operator).values_list("name", flat=True)) == {
        "Acme Casino",
        "Acme Sports",
    }
    key = result["api_key"]
    assert key.startswith("rv_") and len(key) >= 35
    # Stored only as a hash plus a visible prefix.
    api_key = ApiKey.objects.get(operator=operator)
    assert key not in (api_key.key_hash, api_key.prefix) and key.startswith(api_key.prefix)
    for brand in result["brands"]:
        response = send_registration(key, brand["brand_id"], f"reg_{brand['name']}")
        assert response.status_code == 201, response.content
    assert Event.objects.filter(operator=operator).count() == 2


@pytest.mark.django_db
def test_create_api_key_prints_a_second_working_key():
    created = json.loads(run("create_operator", "--name", "Acme", "--brand", "Casino", "--json"))

    result = json.loads(run("create_api_key", "--operator", str(created["operator_id"]), "--json"))

    assert set(result) == {"api_key"}
    assert result["api_key"] != created["api_key"]
    assert ApiKey.objects.filter(operator_id=created["operator_id"]).count() == 2
    brand_id = created["brands"][0]["brand_id"]
    assert send_registration(result["api_key"], brand_id, "with_second").status_code == 201
    # Rotation: the first key keeps working until it is revoked.
    assert send_registration(created["api_key"], brand_id, "with_first").status_code == 201


@pytest.mark.django_db
def test_commands_without_json_print_the_key_once_for_a_human():
    text = run("create_operator", "--name", "Acme", "--brand", "Casino")
    assert "API key (shown once, store it now): rv_" in text
    operator = Operator.objects.get(name="Acme")
    text = run("create_api_key", "--operator", str(operator.pk))
    assert "shown once" in text and "rv_" in text


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--name", "Taken", "--brand", "X"], "exists already"),
        (["--name", "New", "--brand", "X", "--brand", "X"], "brand names must differ"),
        (["--name", " ", "--brand", "X"], "must not be empty"),
    ],
)
def test_create_operator_refuses_bad_input(args, message):
    Operator.objects.create(name="Taken")
    with pytest.raises(CommandError, match=message):
        run("create_operator", *args)
    assert Operator.objects.count() == 1


@pytest.mark.django_db
def test_create_api_key_for_an_unknown_operator_fails():
    with pytest.raises(CommandError, match="no operator with id 999999"):
        run("create_api_key", "--operator", "999999", "--json")
    assert not ApiKey.objects.exists()


def _counts():
    return {
        model.__name__: model.objects.count()
        for model in (Operator, Brand, ApiKey, User, Event, Player)
    }


@pytest.mark.django_db
def test_seed_demo_json_and_idempotence(client):
    first = json.loads(run("seed_demo", "--json"))
    counts = _counts()
    second = json.loads(run("seed_demo", "--json"))

    assert _counts() == counts
    for key in ("operator_id", "api_key", "brands", "manager"):
        assert first[key] == second[key]
    assert Operator.objects.get(pk=first["operator_id"])
    assert len(first["brands"]) == 2
    assert all(set(b) == {"brand_id", "name"} for b in first["brands"])
    assert set(first["manager"]) == {"username", "password"}
    # The printed key works for the printed brands, and the manager can log in.
    response = send_registration(first["api_key"], first["brands"][0]["brand_id"], "seed_check")
    assert response.status_code == 201, response.content
    manager = User.objects.get(username=first["manager"]["username"])
    assert manager.is_staff and not manager.is_superuser
    assert manager.operator_id == first["operator_id"]
    assert client.login(**first["manager"])
    assert client.get("/admin/").status_code == 200
