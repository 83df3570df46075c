"""Inputs that once answered 500 (SPEC §8: "no input gives a 500") and, in a batch, lost the
valid events sent with them (SPEC §3: "One bad event never spoils the rest of its batch")."""

import json

import pytest

from events.models import Event
from tests.events.api_input_helpers import deposit, post_json, post_raw, registration

# --- lone surrogates echoed in an error message -----------------------------------------
# json.loads turns "\ud800" into a lone surrogate; validation quotes the value in its
# message and DRF's JSONRenderer (ensure_ascii=False) cannot encode it as UTF-8.


def _surrogate_bodies(tenant):
    return {
        "unknown_field_name": registration(tenant, **{"zz\ud800": 1}),
        "event_time": registration(tenant, event_time="\ud800"),
        "amount": deposit(tenant, amount="\ud800"),
        "currency": deposit(tenant, currency="\ud800"),
    }


@pytest.mark.parametrize("case", ["unknown_field_name", "event_time", "amount", "currency"])
def test_lone_surrogate_in_a_value_quoted_by_the_error_is_a_400_not_a_500(tenant, case):
    response = post_json(tenant, _surrogate_bodies(tenant)[case])

    assert response.status_code == 400, response.content
    assert response.json()["status"] == "error"


def test_lone_surrogate_in_one_event_does_not_lose_the_rest_of_the_batch(tenant):
    good = registration(tenant, idempotency_key="good")
    bad = registration(tenant, idempotency_key="bad", event_time="\ud800")

    response = post_json(tenant, {"events": [good, bad]})

    assert response.status_code == 200, response.content
    assert [r["status"] for r in response.json()["results"]] == ["accepted", "error"]
    assert Event.objects.filter(idempotency_key="good").exists()


# --- nesting the parser accepts but _jsonable cannot recurse through ---------------------


def _nested_metadata_body(tenant, depth, **fields):
    head = json.dumps(registration(tenant, **fields))[:-1]
    return head + ', "metadata": {"a": ' + "[" * depth + "]" * depth + "}}"


def test_deeply_nested_metadata_is_answered_not_a_500(tenant):
    """~1.2 KB body; json.loads accepts it, events.services._jsonable recurses per level."""
    response = post_raw(tenant, _nested_metadata_body(tenant, 600))

    assert response.status_code in (201, 400), response.content
    assert response["Content-Type"] == "application/json"


def test_deeply_nested_metadata_does_not_lose_the_rest_of_the_batch(tenant):
    good = json.dumps(registration(tenant, idempotency_key="good", player_external_ref="p1"))
    bad = _nested_metadata_body(tenant, 600, idempotency_key="bad")
    data = '{"events": [' + good + ", " + bad + "]}"

    response = post_raw(tenant, data)

    assert response.status_code == 200, response.content
    assert response.json()["results"][0]["status"] == "accepted"
    assert Event.objects.filter(idempotency_key="good").exists()


# --- amounts whose exponent overflows the decimal context --------------------------------


@pytest.mark.parametrize(
    ("event_type", "field"), [("deposit", "amount"), ("wager_settled", "win_amount")]
)
@pytest.mark.parametrize("number", ["1e999999999999", "-1e999999999999"])
def test_amount_with_a_huge_exponent_is_a_400_naming_the_field(tenant, event_type, field, number):
    body = deposit(tenant, event_type=event_type, **{field: "__N__"})
    data = json.dumps(body).replace('"__N__"', number)

    response = post_raw(tenant, data)

    assert response.status_code == 400, response.content
    assert [e["field"] for e in response.json()["errors"]] == [field]
