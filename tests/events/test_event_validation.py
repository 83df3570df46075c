"""Per-event errors (SPEC §3): an invalid single event answers 400 with
{"event_id": null, "idempotency_key", "status": "error", "errors": [{"field", "message"}]}
and stores nothing; in a batch it is that event's error and the others are accepted."""

import json
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db.models import Sum
from django.utils import timezone

from attribution.models import Player
from events.models import Event
from tests.conftest import event

MONEY_TYPES = [
    "first_deposit",
    "deposit",
    "withdrawal",
    "ngr_update",
    "chargeback",
    "bonus_granted",
]
POSITIVE_TYPES = [t for t in MONEY_TYPES if t != "ngr_update"]
ALL_TYPES = MONEY_TYPES + ["registration", "wager_placed", "wager_settled", "player_status"]


def valid(brand, event_type="registration", /, **fields):
    """A valid event of `event_type` with its required fields, then `fields` on top."""
    body = event(brand, event_type=event_type, idempotency_key=f"{event_type}_1")
    if event_type in MONEY_TYPES:
        body.update(currency="EUR", amount="10.00")
    elif event_type == "player_status":
        body["status"] = "active"
    body.update(fields)
    return body


def rejected(tenant, body, field, fragment=""):
    """Send one event; assert a 400 naming `field` (with `fragment` in its message) and that
    nothing was stored. Returns the error messages for `field`."""
    before = Event.objects.count(), Player.objects.count()
    response = tenant.post(body)
    assert response.status_code == 400, response.content
    result = response.json()
    assert set(result) == {"event_id", "idempotency_key", "status", "errors"}
    assert result["event_id"] is None
    assert result["status"] == "error"
    # The key is echoed when it is valid, so the sender can match the answer to the event.
    key_is_bad = any(e["field"] == "idempotency_key" for e in result["errors"])
    assert result["idempotency_key"] == (None if key_is_bad else body["idempotency_key"])
    for error in result["errors"]:
        assert set(error) == {"field", "message"} and error["message"]
    messages = [e["message"] for e in result["errors"] if e["field"] == field]
    assert messages, f"no error for {field}: {result['errors']}"
    assert any(fragment in m for m in messages), messages
    assert (Event.objects.count(), Player.objects.count()) == before
    return messages


def accepted(tenant, body):
    response = tenant.post(body)
    assert response.status_code == 201, response.content
    return Event.objects.get(id=response.json()["event_id"])


# --- every type: its valid form is accepted ------------------------------------------------


@pytest.mark.parametrize("event_type", ALL_TYPES)
def test_each_type_with_its_required_fields_is_accepted(tenant, event_type):
    stored = accepted(tenant, valid(tenant.brand, event_type))
    assert stored.event_type == event_type


def test_every_optional_field_of_every_type_is_accepted(tenant):
    b = tenant.brand
    bodies = [
        valid(
            b,
            "registration",
            click_id="abc-123-def",
            promo_code="WELCOME100",
            country="GB",
            ip_address="203.0.113.7",
            user_agent="Mozilla/5.0",
            metadata={"campaign": "spring", "vip": True},
        ),
        valid(b, "chargeback", deposit_idempotency_key="dep_1"),
        valid(b, "wager_placed", currency="EUR", amount="5.00", product="casino"),
        valid(
            b, "wager_settled", currency="EUR", amount="5.00", win_amount="12.50", product="poker"
        ),
        valid(b, "wager_placed"),
        valid(b, "player_status", status="self_excluded"),
    ]
    for i, body in enumerate(bodies):
        body["idempotency_key"] = f"opt_{i}"
        accepted(tenant, body)


def test_the_raw_ip_address_is_never_stored(tenant):
    stored = accepted(tenant, valid(tenant.brand, ip_address="203.0.113.7"))
    assert "203.0.113.7" not in json.dumps(stored.payload)
    assert len(stored.payload["ip_hash"]) == 64


# --- missing and null fields ----------------------------------------------------------


COMMON = ["event_type", "event_time", "brand_id", "player_external_ref", "idempotency_key"]


@pytest.mark.parametrize("event_type", ALL_TYPES)
@pytest.mark.parametrize("field", COMMON)
def test_missing_common_field_is_an_error_for_every_type(tenant, event_type, field):
    body = valid(tenant.brand, event_type)
    del body[field]
    rejected(tenant, body, field, "is required")


@pytest.mark.parametrize("event_type", MONEY_TYPES)
@pytest.mark.parametrize("field", ["currency", "amount"])
def test_money_types_require_currency_and_amount(tenant, event_type, field):
    body = valid(tenant.brand, event_type)
    del body[field]
    rejected(tenant, body, field, f"is required for {event_type} events")


def test_player_status_requires_status(tenant):
    body = valid(tenant.brand, "player_status")
    del body["status"]
    rejected(tenant, body, "status", "is required for player_status events")


@pytest.mark.parametrize("field", ["event_time", "brand_id", "player_external_ref", "currency"])
def test_null_required_field_is_an_error(tenant, field):
    rejected(tenant, valid(tenant.brand, "deposit", **{field: None}), field, "must not be null")


@pytest.mark.parametrize("event_type", ["wager_placed", "wager_settled"])
def test_wager_amount_needs_a_currency(tenant, event_type):
    rejected(tenant, valid(tenant.brand, event_type, amount="5"), "currency", "is required")


# --- wrong types ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event_type", "field", "value", "fragment"),
    [
        ("registration", "event_type", 1, "must be one of"),
        ("registration", "event_type", ["registration"], "must be one of"),
        ("registration", "event_type", "signup", "must be one of"),
        ("registration", "event_time", 1773568800, "ISO 8601"),
        ("registration", "brand_id", 42, "UUID"),
        ("registration", "brand_id", {"id": "x"}, "UUID"),
        ("registration", "player_external_ref", 12345, 'send it quoted, e.g. "12345"'),
        ("registration", "player_external_ref", ["p"], "must be a string"),
        ("registration", "idempotency_key", 7, "must be a string"),
        ("registration", "metadata", ["a"], "must be a JSON object"),
        ("registration", "metadata", "note", "must be a JSON object"),
        ("registration", "click_id", 123, "must be a string"),
        ("registration", "promo_code", {"code": "X"}, "must be a string"),
        ("registration", "country", 826, "ISO 3166-1 alpha-2"),
        ("registration", "ip_address", 2130706433, "IPv4 or IPv6"),
        ("registration", "user_agent", True, "must be a string"),
        ("deposit", "currency", 978, "ISO 4217"),
        ("deposit", "amount", True, "JSON number or a decimal string"),
        ("deposit", "amount", [10], "JSON number or a decimal string"),
        ("deposit", "amount", {"value": 10}, "JSON number or a decimal string"),
        ("deposit", "amount", "ten", "not a plain decimal number"),
        ("deposit", "amount", "1e3", "not a plain decimal number"),
        ("deposit", "amount", "NaN", "not a plain decimal number"),
        ("deposit", "amount", "", "not a plain decimal number"),
        ("chargeback", "deposit_idempotency_key", 5, "must be a string"),
        ("wager_placed", "product", 1, "must be one of"),
        ("wager_settled", "win_amount", "lots", "not a plain decimal number"),
        ("player_status", "status", 1, "must be one of"),
        ("player_status", "status", ["fraud"], "must be one of"),
    ],
)
def test_wrong_typed_field_is_an_error(tenant, event_type, field, value, fragment):
    rejected(tenant, valid(tenant.brand, event_type, **{field: value}), field, fragment)


@pytest.mark.parametrize(
    ("event_type", "field", "value", "fragment"),
    [
        ("registration", "event_type", "Registration", "did you mean 'registration'?"),
        ("registration", "country", "gb", "did you mean 'GB'?"),
        ("registration", "country", "UK", "ISO 3166-1 alpha-2"),
        ("registration", "ip_address", "999.1.1.1", "IPv4 or IPv6"),
        ("registration", "player_external_ref", "", "1–128 characters"),
        ("registration", "player_external_ref", "p" * 129, "1–128 characters"),
        ("registration", "idempotency_key", "", "1–255 characters"),
        ("registration", "idempotency_key", "k" * 256, "1–255 characters"),
        ("registration", "idempotency_key", "reg\n1", "printable"),
        ("registration", "promo_code", "P" * 65, "1–64 characters"),
        ("wager_placed", "product", "slots", "casino, sportsbook, poker, bingo, lottery, other"),
        ("player_status", "status", "banned", "active, self_excluded, closed, fraud"),
        ("player_status", "status", "self-excluded", "did you mean 'self_excluded'?"),
    ],
)
def test_bad_value_is_an_error(tenant, event_type, field, value, fragment):
    rejected(tenant, valid(tenant.brand, event_type, **{field: value}), field, fragment)


def test_limits_are_inclusive(tenant):
    accepted(
        tenant,
        valid(tenant.brand, player_external_ref="p" * 128, idempotency_key="k" * 255),
    )


# --- event_time -------------------------------------------------------------------------


def test_naive_event_time_is_an_error(tenant):
    rejected(
        tenant,
        valid(tenant.brand, event_time="2026-03-15T10:00:00"),
        "event_time",
        "has no UTC offset; add 'Z'",
    )


@pytest.mark.parametrize(
    "value", ["2026-03-15", "yesterday", "15/03/2026 10:00", "2026-13-01T00:00:00Z"]
)
def test_unreadable_event_time_is_an_error(tenant, value):
    rejected(tenant, valid(tenant.brand, event_time=value), "event_time", "2026-03-15T10:00:00Z")


@pytest.mark.parametrize("value", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_event_time_out_of_range_is_an_error_not_a_crash(tenant, value):
    rejected(tenant, valid(tenant.brand, event_time=value), "event_time", "out of range")


def test_event_time_more_than_5_minutes_ahead_is_an_error(tenant):
    future = (timezone.now() + timedelta(minutes=6)).isoformat()
    rejected(tenant, valid(tenant.brand, event_time=future), "event_time", "in the future")


def test_event_time_up_to_5_minutes_ahead_is_accepted(tenant):
    soon = (timezone.now() + timedelta(minutes=4)).isoformat()
    accepted(tenant, valid(tenant.brand, event_time=soon))


def test_event_time_with_an_offset_is_stored_in_utc(tenant):
    stored = accepted(tenant, valid(tenant.brand, event_time="2026-03-15T12:00:00+02:00"))
    assert stored.event_time.isoformat() == "2026-03-15T10:00:00+00:00"


# --- brand_id ---------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["your-brand-uuid", "1234", ""])
def test_brand_id_that_is_not_a_uuid_is_an_error(tenant, value):
    rejected(tenant, valid(tenant.brand, brand_id=value), "brand_id", "must be a brand UUID")


def test_unknown_and_foreign_brand_id_get_the_same_message(tenant, other_tenant):
    """A brand of another operator must not be told apart from one that does not exist."""
    unknown = rejected(
        tenant,
        valid(tenant.brand, brand_id="00000000-0000-4000-8000-000000000000"),
        "brand_id",
    )
    foreign = rejected(tenant, valid(other_tenant.brand), "brand_id")
    assert unknown == foreign == ["unknown brand_id"]


# --- money ------------------------------------------------------------------------------


@pytest.mark.parametrize("event_type", POSITIVE_TYPES)
@pytest.mark.parametrize("amount", ["0", "0.00", "-1", "-0.01", -5])
def test_amount_must_be_positive_for_money_types(tenant, event_type, amount):
    rejected(
        tenant,
        valid(tenant.brand, event_type, amount=amount),
        "amount",
        f"must be greater than 0 for {event_type}",
    )


@pytest.mark.parametrize("amount", ["-250.75", "0", "1000000.5"])
def test_ngr_update_takes_any_sign(tenant, amount):
    stored = accepted(tenant, valid(tenant.brand, "ngr_update", amount=amount))
    assert stored.amount == Decimal(amount)


@pytest.mark.parametrize("event_type", ["wager_placed", "wager_settled"])
def test_wager_amounts_must_not_be_negative(tenant, event_type):
    rejected(
        tenant,
        valid(tenant.brand, event_type, currency="EUR", amount="-1"),
        "amount",
        "must not be negative",
    )
    if event_type == "wager_settled":
        rejected(
            tenant,
            valid(tenant.brand, event_type, currency="EUR", win_amount="-1"),
            "win_amount",
            "must not be negative",
        )


@pytest.mark.parametrize("raw_amount", ["1.00001", '"1.00001"', "0.00005", '"12.34567"'])
def test_more_than_4_decimal_places_is_an_error(tenant, raw_amount):
    body = json.dumps(valid(tenant.brand, "deposit", amount="__A__"))
    data = body.replace('"__A__"', raw_amount)
    before = Event.objects.count()
    response = tenant.client.post(
        "/api/v1/events", data=data, content_type="application/json", HTTP_X_API_KEY=tenant.key
    )
    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert error["field"] == "amount"
    assert "more than 4 decimal places" in error["message"]
    assert Event.objects.count() == before


def test_amount_too_large_is_an_error(tenant):
    rejected(
        tenant, valid(tenant.brand, "deposit", amount="100000000000000"), "amount", "less than"
    )


@pytest.mark.parametrize(
    ("raw_amount", "expected"),
    [
        ("50.00", "50.0000"),  # the guide's JSON number
        ('"50.00"', "50.0000"),
        ("0.1", "0.1000"),
        ("12.3456", "12.3456"),
        ('"12.3456"', "12.3456"),
        ("1.10000", "1.1000"),  # trailing zeros are not extra precision
        ("1E+2", "100.0000"),
        ("99999999999999.9999", "99999999999999.9999"),  # a float would round this
        ("25", "25.0000"),
    ],
)
def test_amounts_are_stored_as_exact_decimals(tenant, raw_amount, expected):
    body = json.dumps(valid(tenant.brand, "deposit", amount="__A__"))
    response = tenant.client.post(
        "/api/v1/events",
        data=body.replace('"__A__"', raw_amount),
        content_type="application/json",
        HTTP_X_API_KEY=tenant.key,
    )
    assert response.status_code == 201, response.content
    stored = Event.objects.get(id=response.json()["event_id"])
    assert stored.amount == Decimal(expected)
    assert str(stored.amount) == expected


def test_money_is_decimal_never_float(tenant):
    """0.1 + 0.2 == 0.3 exactly, as sent in JSON numbers; a float pipeline gives
    0.30000000000000004."""
    for key, raw in (("a", "0.1"), ("b", "0.2")):
        body = json.dumps(valid(tenant.brand, "deposit", idempotency_key=key, amount="__A__"))
        response = tenant.client.post(
            "/api/v1/events",
            data=body.replace('"__A__"', raw),
            content_type="application/json",
            HTTP_X_API_KEY=tenant.key,
        )
        assert response.status_code == 201
    total = Event.objects.aggregate(total=Sum("amount"))["total"]
    assert total == Decimal("0.3")
    assert isinstance(total, Decimal)


@pytest.mark.parametrize(
    ("currency", "fragment"),
    [
        ("eur", "did you mean 'EUR'?"),
        ("Eur", "did you mean 'EUR'?"),
        ("ABC", "'ABC' is not one"),
        ("EURO", "ISO 4217"),
        ("", "ISO 4217"),
    ],
)
def test_bad_currency_is_an_error(tenant, currency, fragment):
    rejected(tenant, valid(tenant.brand, "deposit", currency=currency), "currency", fragment)


# --- metadata ---------------------------------------------------------------------------


def test_metadata_over_4_kib_is_an_error(tenant):
    rejected(tenant, valid(tenant.brand, metadata={"note": "x" * 4096}), "metadata", "at most 4096")


def test_metadata_up_to_4_kib_is_stored(tenant):
    metadata = {"note": "x" * (4096 - len('{"note":""}'))}
    stored = accepted(tenant, valid(tenant.brand, metadata=metadata))
    assert stored.payload["metadata"] == metadata


# --- unknown fields and near misses -----------------------------------------------------


@pytest.mark.parametrize(
    ("event_type", "name", "suggestion"),
    [
        ("registration", "clickid", "click_id"),
        ("registration", "clickId", "click_id"),
        ("registration", "click-id", "click_id"),
        ("registration", "playerExternalRef", "player_external_ref"),
        ("registration", "player_ref", "player_external_ref"),
        ("registration", "player_id", "player_external_ref"),
        ("registration", "idempotencyKey", "idempotency_key"),
        ("registration", "event_tyep", "event_type"),
        ("registration", "eventTime", "event_time"),
        ("registration", "timestamp", "event_time"),
        ("registration", "brandId", "brand_id"),
        ("registration", "promocode", "promo_code"),
        ("registration", "ip", "ip_address"),
        ("registration", "userAgent", "user_agent"),
        ("registration", "meta_data", "metadata"),
        ("deposit", "ammount", "amount"),
        ("deposit", "Currency", "currency"),
        ("chargeback", "depositIdempotencyKey", "deposit_idempotency_key"),
        ("wager_settled", "winAmount", "win_amount"),
    ],
)
def test_near_miss_field_names_suggest_the_known_field(tenant, event_type, name, suggestion):
    body = valid(tenant.brand, event_type, **{name: "x"})
    [message] = rejected(tenant, body, name, f"did you mean '{suggestion}'?")
    assert message.startswith(f"unknown field '{name}'")


def test_a_field_of_another_event_type_says_where_it_belongs(tenant):
    [message] = rejected(tenant, valid(tenant.brand, "deposit", click_id="abc-123-def"), "click_id")
    assert (
        message == "'click_id' is not a field of deposit events; it belongs to registration events"
    )


def test_amount_on_a_registration_names_the_types_that_take_it(tenant):
    [message] = rejected(tenant, valid(tenant.brand, amount="5"), "amount")
    assert "not a field of registration events" in message
    assert "first_deposit" in message and "ngr_update" in message


def test_near_miss_of_a_field_of_another_type_says_so(tenant):
    [message] = rejected(tenant, valid(tenant.brand, "deposit", clickid="x"), "clickid")
    assert "did you mean 'click_id'?" in message
    assert "registration" in message


def test_unknown_field_without_a_near_miss_lists_the_fields(tenant):
    [message] = rejected(tenant, valid(tenant.brand, "deposit", zzz=1), "zzz")
    assert message.startswith("unknown field 'zzz'; the fields of deposit events are:")
    assert "currency" in message and "click_id" not in message


def test_all_errors_of_an_event_are_reported_at_once(tenant):
    body = valid(
        tenant.brand, "deposit", currency="eur", amount="-1", clickid="x", event_time="soon"
    )
    response = tenant.post(body)
    fields = {e["field"] for e in response.json()["errors"]}
    assert fields == {"currency", "amount", "clickid", "event_time"}


# --- in a batch -------------------------------------------------------------------------


def test_an_invalid_event_in_a_batch_spoils_nothing_else(tenant):
    events = [
        valid(tenant.brand, "registration", idempotency_key="ok_1"),
        valid(tenant.brand, "deposit", idempotency_key="bad", currency="eur"),
        "not an object",
        valid(tenant.brand, "deposit", idempotency_key="ok_2", player_external_ref="p2"),
    ]
    response = tenant.post({"events": events})

    assert response.status_code == 200
    body = response.json()
    assert body["summary"] == {"total": 4, "accepted": 2, "duplicates": 0, "errors": 2}
    assert [(r["idempotency_key"], r["status"]) for r in body["results"]] == [
        ("ok_1", "accepted"),
        ("bad", "error"),
        (None, "error"),
        ("ok_2", "accepted"),
    ]
    assert body["results"][1]["event_id"] is None
    assert body["results"][1]["errors"][0]["field"] == "currency"
    assert body["results"][2]["errors"] == [
        {"field": None, "message": "each event must be a JSON object; got a string"}
    ]
    assert sorted(Event.objects.values_list("idempotency_key", flat=True)) == ["ok_1", "ok_2"]


def test_a_batch_of_only_invalid_events_answers_200_and_stores_nothing(tenant):
    events = [valid(tenant.brand, event_time="2026-03-15T10:00:00"), {}]
    response = tenant.post({"events": events})
    assert response.status_code == 200
    assert response.json()["summary"] == {"total": 2, "accepted": 0, "duplicates": 0, "errors": 2}
    assert (Event.objects.count(), Player.objects.count()) == (0, 0)


WRONG_TYPED_COMMON = [
    ("event_time", 20260315, "ISO 8601"),
    ("brand_id", 7, "must be a brand UUID"),
    ("player_external_ref", 1001, "must be a string"),
    ("idempotency_key", ["k"], "must be a string"),
    ("metadata", [1, 2], "must be a JSON object"),
]


@pytest.mark.parametrize("event_type", ALL_TYPES)
@pytest.mark.parametrize(("field", "value", "fragment"), WRONG_TYPED_COMMON)
def test_wrong_typed_common_field_is_an_error_for_every_type(
    tenant, event_type, field, value, fragment
):
    rejected(tenant, valid(tenant.brand, event_type, **{field: value}), field, fragment)


@pytest.mark.parametrize("event_type", MONEY_TYPES + ["wager_placed", "wager_settled"])
@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    [("currency", 978, "ISO 4217"), ("amount", False, "JSON number or a decimal string")],
)
def test_wrong_typed_money_field_is_an_error_for_every_money_type(
    tenant, event_type, field, value, fragment
):
    body = valid(tenant.brand, event_type, currency="EUR", amount="1.00")
    body[field] = value
    rejected(tenant, body, field, fragment)
