"""Validation of one event of the Event API (SPEC §3).

Hand-written rather than a DRF serializer: it runs for every event on the ingestion hot
path (up to 100 per request), must give the exact field-level messages of the Event
Reference, and must see amounts as the Decimal the JSON parser produced, never a float.
It does no I/O: the brand lookup is a set of the operator's brand ids passed in.
"""

import difflib
import ipaddress
import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation

import pycountry
from django.utils import timezone

from revvvs.money import MONEY_DECIMAL_PLACES, MONEY_MAX_DIGITS

from .models import EventType

MAX_FUTURE = timedelta(minutes=5)
MAX_METADATA_BYTES = 4096
MAX_AMOUNT = Decimal(10) ** (MONEY_MAX_DIGITS - MONEY_DECIMAL_PLACES)

CURRENCIES = frozenset(c.alpha_3 for c in pycountry.currencies)
COUNTRIES = frozenset(c.alpha_2 for c in pycountry.countries)
PRODUCTS = ("casino", "sportsbook", "poker", "bingo", "lottery", "other")
PLAYER_STATUSES = ("active", "self_excluded", "closed", "fraud")

COMMON_REQUIRED = ("event_type", "event_time", "brand_id", "player_external_ref", "idempotency_key")
COMMON_OPTIONAL = ("metadata",)
MONEY = ("currency", "amount")

# event_type -> (required extra fields, optional extra fields)
TYPE_FIELDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    EventType.REGISTRATION: ((), ("click_id", "promo_code", "country", "ip_address", "user_agent")),
    EventType.FIRST_DEPOSIT: (MONEY, ()),
    EventType.DEPOSIT: (MONEY, ()),
    EventType.WITHDRAWAL: (MONEY, ()),
    EventType.NGR_UPDATE: (MONEY, ()),
    EventType.CHARGEBACK: (MONEY, ("deposit_idempotency_key",)),
    EventType.WAGER_PLACED: ((), ("currency", "amount", "product")),
    EventType.WAGER_SETTLED: ((), ("currency", "amount", "product", "win_amount")),
    EventType.BONUS_GRANTED: (MONEY, ()),
    EventType.PLAYER_STATUS: (("status",), ()),
}
ALL_FIELDS = frozenset(
    COMMON_REQUIRED + COMMON_OPTIONAL + tuple(f for r, o in TYPE_FIELDS.values() for f in r + o)
)
# Types whose `amount` must be > 0 (ngr_update takes any sign, wagers take >= 0).
POSITIVE_AMOUNT_TYPES = frozenset(
    {
        EventType.FIRST_DEPOSIT,
        EventType.DEPOSIT,
        EventType.WITHDRAWAL,
        EventType.CHARGEBACK,
        EventType.BONUS_GRANTED,
    }
)


@dataclass
class CleanEvent:
    """A valid event: typed values, ready to store."""

    event_type: str
    event_time: datetime
    brand_id: uuid.UUID
    player_external_ref: str
    idempotency_key: str
    currency: str = ""
    amount: Decimal | None = None
    extra: dict = field(default_factory=dict)  # the type's other fields, typed
    metadata: dict | None = None


@dataclass
class Invalid:
    idempotency_key: str | None
    errors: list[dict]


def _err(errors: list, name: str, message: str) -> None:
    errors.append({"field": name, "message": message})


def parse_amount(value, name: str, errors: list) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | Decimal | str):
        _err(errors, name, 'must be a JSON number or a decimal string, e.g. 50.00 or "50.00"')
        return None
    if isinstance(value, str):
        text = value.strip()
        try:
            amount = Decimal(text)
        except InvalidOperation:
            _err(errors, name, f"'{value}' is not a decimal number, e.g. \"50.00\"")
            return None
        if (
            not text
            or text.lower().lstrip("+-") in {"nan", "snan", "inf", "infinity"}
            or "e" in text.lower()
        ):
            _err(errors, name, 'must be written as plain decimal digits, e.g. "50.00"')
            return None
    else:
        amount = Decimal(value)
    if not amount.is_finite():
        _err(errors, name, "must be a finite number")
        return None
    exponent = amount.as_tuple().exponent
    if (
        isinstance(exponent, int)
        and exponent < -MONEY_DECIMAL_PLACES
        and amount != amount.quantize(Decimal(1).scaleb(-MONEY_DECIMAL_PLACES))
    ):
        _err(errors, name, f"has more than {MONEY_DECIMAL_PLACES} decimal places")
        return None
    if abs(amount) >= MAX_AMOUNT:
        _err(errors, name, f"must be less than {MAX_AMOUNT:,} in absolute value")
        return None
    return amount.quantize(Decimal(1).scaleb(-MONEY_DECIMAL_PLACES))


def parse_event_time(value, errors: list, now: datetime) -> datetime | None:
    if not isinstance(value, str):
        _err(
            errors,
            "event_time",
            "must be an ISO 8601 string with a UTC offset, e.g. 2026-03-15T10:00:00Z",
        )
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        _err(errors, "event_time", f"'{value}' is not an ISO 8601 time, e.g. 2026-03-15T10:00:00Z")
        return None
    if "T" not in value.upper() and " " not in value:
        _err(errors, "event_time", "must include a time of day, e.g. 2026-03-15T10:00:00Z")
        return None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        _err(
            errors,
            "event_time",
            "has no UTC offset; add 'Z' or an offset such as +02:00 (naive times are ambiguous)",
        )
        return None
    parsed = parsed.astimezone(UTC)
    if parsed > now + MAX_FUTURE:
        _err(errors, "event_time", "is more than 5 minutes in the future; check the sender's clock")
        return None
    return parsed


def _string(value, name: str, errors: list, *, max_length: int, min_length: int = 1) -> str | None:
    if not isinstance(value, str):
        _err(errors, name, f"must be a string of {min_length}–{max_length} characters")
        return None
    if not (min_length <= len(value) <= max_length):
        _err(errors, name, f"must be {min_length}–{max_length} characters long (got {len(value)})")
        return None
    return value


def _unknown_field_message(name: str, event_type: str | None) -> str:
    if name in ALL_FIELDS and event_type in TYPE_FIELDS:
        return f"is not a field of event_type '{event_type}'"
    candidates = ALL_FIELDS
    if event_type in TYPE_FIELDS:
        required, optional = TYPE_FIELDS[event_type]
        candidates = frozenset(COMMON_REQUIRED + COMMON_OPTIONAL + required + optional)
    close = difflib.get_close_matches(name.lower(), sorted(candidates), n=1, cutoff=0.7)
    if not close:
        normalised = name.lower().replace("-", "_").replace(" ", "_")
        close = [c for c in candidates if c.replace("_", "") == normalised.replace("_", "")]
    if close:
        return f"unknown field; did you mean '{close[0]}'?"
    return "unknown field"


def validate_event(
    raw, *, brand_ids: frozenset, now: datetime | None = None
) -> CleanEvent | Invalid:
    """Validate one event object. `brand_ids` are the UUIDs of the key's operator's brands."""
    now = now or timezone.now()
    if not isinstance(raw, dict):
        return Invalid(None, [{"field": None, "message": "each event must be a JSON object"}])
    errors: list[dict] = []

    key = raw.get("idempotency_key")
    idempotency_key = None
    if "idempotency_key" not in raw:
        _err(errors, "idempotency_key", "is required")
    elif (key := _string(key, "idempotency_key", errors, max_length=255)) is not None:
        if not key.isprintable():
            _err(errors, "idempotency_key", "must contain printable characters only")
        else:
            idempotency_key = key

    event_type = raw.get("event_type")
    if "event_type" not in raw:
        _err(errors, "event_type", "is required")
        event_type = None
    elif event_type not in TYPE_FIELDS:
        _err(errors, "event_type", f"must be one of: {', '.join(TYPE_FIELDS)}")
        event_type = None

    for name in raw:
        if name not in COMMON_REQUIRED and name not in COMMON_OPTIONAL:
            if event_type is None:
                if name not in ALL_FIELDS:
                    _err(errors, name, _unknown_field_message(name, None))
            elif name not in TYPE_FIELDS[event_type][0] and name not in TYPE_FIELDS[event_type][1]:
                _err(errors, name, _unknown_field_message(name, event_type))

    required = COMMON_REQUIRED + (TYPE_FIELDS[event_type][0] if event_type else ())
    for name in required:
        if name not in raw and name not in ("idempotency_key", "event_type"):
            _err(errors, name, "is required")
        elif raw.get(name) is None and name in raw:
            _err(errors, name, "must not be null")

    event_time = (
        parse_event_time(raw["event_time"], errors, now)
        if raw.get("event_time") is not None
        else None
    )

    brand_id = None
    if raw.get("brand_id") is not None:
        value = raw["brand_id"]
        try:
            brand_id = uuid.UUID(value) if isinstance(value, str) else None
        except ValueError:
            brand_id = None
        if brand_id is None:
            _err(errors, "brand_id", "must be a UUID, e.g. 0b5e1f3a-5c8e-4a4e-9d1c-2f6b7c8d9e0f")
        elif brand_id not in brand_ids:
            _err(errors, "brand_id", "unknown brand_id")
            brand_id = None

    ref = None
    if raw.get("player_external_ref") is not None:
        ref = _string(raw["player_external_ref"], "player_external_ref", errors, max_length=128)

    metadata = raw.get("metadata")
    if "metadata" in raw and metadata is not None:
        if not isinstance(metadata, dict):
            _err(errors, "metadata", "must be a JSON object")
        elif len(json.dumps(metadata, default=str).encode()) > MAX_METADATA_BYTES:
            _err(errors, "metadata", f"must be at most {MAX_METADATA_BYTES} bytes as JSON")

    currency, amount, extra = "", None, {}
    if event_type:
        currency, amount, extra = _validate_type_fields(event_type, raw, errors)

    if errors:
        return Invalid(idempotency_key, errors)
    return CleanEvent(
        event_type=event_type,
        event_time=event_time,
        brand_id=brand_id,
        player_external_ref=ref,
        idempotency_key=idempotency_key,
        currency=currency,
        amount=amount,
        extra=extra,
        metadata=metadata,
    )


def _validate_type_fields(event_type: str, raw: dict, errors: list):
    currency, amount, extra = "", None, {}
    if raw.get("currency") is not None:
        value = raw["currency"]
        if not isinstance(value, str) or value not in CURRENCIES:
            hint = (
                f" (did you mean '{value.upper()}'?)"
                if isinstance(value, str) and value.upper() in CURRENCIES
                else ""
            )
            _err(errors, "currency", f"must be an uppercase ISO 4217 code such as EUR{hint}")
        else:
            currency = value
    if raw.get("amount") is not None:
        amount = parse_amount(raw["amount"], "amount", errors)
        if amount is not None:
            if event_type in POSITIVE_AMOUNT_TYPES and amount <= 0:
                _err(errors, "amount", f"must be greater than 0 for {event_type}")
            elif event_type in (EventType.WAGER_PLACED, EventType.WAGER_SETTLED) and amount < 0:
                _err(errors, "amount", "must not be negative")
    if event_type in (EventType.WAGER_PLACED, EventType.WAGER_SETTLED):
        win = raw.get("win_amount")
        if win is not None:
            win = parse_amount(win, "win_amount", errors)
            if win is not None and win < 0:
                _err(errors, "win_amount", "must not be negative")
            extra["win_amount"] = win
        if (amount is not None or win is not None) and "currency" not in raw:
            _err(errors, "currency", "is required when an amount is given")
        product = raw.get("product")
        if product is not None:
            if product not in PRODUCTS:
                _err(errors, "product", f"must be one of: {', '.join(PRODUCTS)}")
            extra["product"] = product
    elif event_type == EventType.REGISTRATION:
        for name, max_length in (("click_id", 255), ("promo_code", 64), ("user_agent", 1000)):
            if raw.get(name) is not None:
                extra[name] = _string(raw[name], name, errors, max_length=max_length)
        country = raw.get("country")
        if country is not None:
            if not isinstance(country, str) or country not in COUNTRIES:
                _err(errors, "country", "must be an uppercase ISO 3166-1 alpha-2 code such as GB")
            extra["country"] = country
        ip = raw.get("ip_address")
        if ip is not None:
            try:
                extra["ip_address"] = str(ipaddress.ip_address(ip)) if isinstance(ip, str) else None
            except ValueError:
                extra["ip_address"] = None
            if extra["ip_address"] is None:
                _err(errors, "ip_address", "must be an IPv4 or IPv6 address")
    elif event_type == EventType.CHARGEBACK:
        if raw.get("deposit_idempotency_key") is not None:
            extra["deposit_idempotency_key"] = _string(
                raw["deposit_idempotency_key"], "deposit_idempotency_key", errors, max_length=255
            )
    elif event_type == EventType.PLAYER_STATUS:
        status = raw.get("status")
        if status is not None and status not in PLAYER_STATUSES:
            _err(errors, "status", f"must be one of: {', '.join(PLAYER_STATUSES)}")
        extra["status"] = status
    return currency, amount, extra
