"""Property tests of event validation: no input makes it crash, and any amount it accepts is
stored exactly as the decimal that was sent."""

import json
import uuid
from datetime import UTC, datetime
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from events.validation import ALL_FIELDS, CleanEvent, Invalid, validate_event

BRAND = uuid.UUID("6f1d1a5e-0c5b-4d7e-9a53-6a1c2b3d4e01")
NOW = datetime(2026, 3, 16, tzinfo=UTC)
BASE = {
    "event_type": "deposit",
    "event_time": "2026-03-15T10:00:00Z",
    "brand_id": str(BRAND),
    "player_external_ref": "player_001",
    "idempotency_key": "dep_1",
    "currency": "EUR",
    "amount": "10.00",
}

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.decimals(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
field_names = st.sampled_from(sorted(ALL_FIELDS)) | st.text(min_size=1, max_size=30)


def parsed(body: dict) -> dict:
    """As the API sees it: through JSON, numbers with a fraction as Decimal."""
    return json.loads(json.dumps(body, default=str), parse_float=Decimal)


@settings(max_examples=400, deadline=None)
@given(
    event_type=st.sampled_from(
        ["registration", "deposit", "ngr_update", "wager_settled", "player_status", "chargeback"]
    ),
    changes=st.dictionaries(field_names, json_values, max_size=4),
)
def test_no_event_makes_validation_crash(event_type, changes):
    body = {**BASE, "event_type": event_type, **changes}
    result = validate_event(parsed(body), brand_ids=frozenset({BRAND}), now=NOW)
    assert isinstance(result, CleanEvent | Invalid)
    if isinstance(result, Invalid):
        assert result.errors
        for error in result.errors:
            assert set(error) == {"field", "message"}
            assert isinstance(error["message"], str) and error["message"]


@settings(max_examples=200, deadline=None)
@given(value=json_values)
def test_any_json_value_as_the_whole_event_is_answered(value):
    result = validate_event(value, brand_ids=frozenset({BRAND}), now=NOW)
    assert isinstance(result, CleanEvent | Invalid)


money = st.decimals(
    min_value=Decimal("0.0001"),
    max_value=Decimal("99999999999999.9999"),
    places=4,
    allow_nan=False,
    allow_infinity=False,
)


@settings(max_examples=300, deadline=None)
@given(amount=money, as_string=st.booleans())
def test_accepted_amounts_are_exactly_the_decimal_sent(amount, as_string):
    text = f'"{amount}"' if as_string else str(amount)
    raw = json.dumps({**BASE, "amount": "__A__"}).replace('"__A__"', text)
    result = validate_event(
        json.loads(raw, parse_float=Decimal), brand_ids=frozenset({BRAND}), now=NOW
    )
    assert isinstance(result, CleanEvent), getattr(result, "errors", None)
    assert result.amount == amount
    assert result.amount.as_tuple().exponent == -4


@settings(max_examples=200, deadline=None)
@given(
    amount=st.decimals(
        min_value=Decimal("-1000"), max_value=Decimal("1000"), places=8, allow_nan=False
    )
)
def test_amounts_with_more_than_4_places_are_refused_never_rounded(amount):
    raw = json.dumps({**BASE, "event_type": "ngr_update", "amount": "__A__"})
    raw = raw.replace('"__A__"', format(amount, "f"))  # a JSON number
    result = validate_event(
        json.loads(raw, parse_float=Decimal), brand_ids=frozenset({BRAND}), now=NOW
    )
    if amount == amount.quantize(Decimal("0.0001")):
        assert isinstance(result, CleanEvent) and result.amount == amount
    else:
        assert isinstance(result, Invalid)
        assert [e["field"] for e in result.errors] == ["amount"]
        assert "more than 4 decimal places" in result.errors[0]["message"]
