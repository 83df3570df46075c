"""Validation of one event of the Event API (SPEC §3).

Hand-written rather than a DRF serializer: it runs for every event on the ingestion hot
path (up to 100 per request), must give the exact field-level messages of the Event
Reference (docs/events.md), and must see amounts as the Decimal the JSON parser produced,
never a float. It does no I/O: the brand lookup is a set of the operator's brand ids passed
in. Every message says what to send instead, because the caller is a developer reading a
log line.
"""

import difflib
import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation

import pycountry
from django.utils import timezone

from revvvs.hashing import ip_canonical
from revvvs.money import MONEY_DECIMAL_PLACES, MONEY_MAX_DIGITS

from .models import EventType

MAX_FUTURE = timedelta(minutes=5)
# No event of an affiliate programme happened before this; the months a period can be start
# here too (commissions.services.periods.MONTH_MIN), so every event can be paid by a close.
EARLIEST_EVENT_TIME = datetime(1970, 1, 1, tzinfo=UTC)
MAX_METADATA_BYTES = 4096
MAX_AMOUNT = Decimal(10) ** (MONEY_MAX_DIGITS - MONEY_DECIMAL_PLACES)
AMOUNT_QUANTUM = Decimal(1).scaleb(-MONEY_DECIMAL_PLACES)

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
EVENT_TYPES = tuple(str(t) for t in TYPE_FIELDS)
# The fields an event of each type may carry, common ones included.
ALLOWED_FIELDS: dict[str, frozenset[str]] = {
    t: frozenset(COMMON_REQUIRED + COMMON_OPTIONAL + required + optional)
    for t, (required, optional) in TYPE_FIELDS.items()
}
ALL_FIELDS = frozenset().union(*ALLOWED_FIELDS.values())
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
WAGER_TYPES = frozenset({EventType.WAGER_PLACED, EventType.WAGER_SETTLED})

# Names other platforms use for our fields: a typo here silently loses attribution or money,
# so the error names the field to use. Keys are normalised (snake_case, no separators).
ALIASES = {
    "type": "event_type",
    "event": "event_type",
    "eventname": "event_type",
    "time": "event_time",
    "timestamp": "event_time",
    "eventtimestamp": "event_time",
    "occurredat": "event_time",
    "createdat": "event_time",
    "date": "event_time",
    "brand": "brand_id",
    "brandid": "brand_id",
    "branduuid": "brand_id",
    "siteid": "brand_id",
    "player": "player_external_ref",
    "playerid": "player_external_ref",
    "playerref": "player_external_ref",
    "externalref": "player_external_ref",
    "externalplayerid": "player_external_ref",
    "userid": "player_external_ref",
    "customerid": "player_external_ref",
    "key": "idempotency_key",
    "idempotency": "idempotency_key",
    "eventid": "idempotency_key",
    "dedupkey": "idempotency_key",
    "click": "click_id",
    "clickref": "click_id",
    "promo": "promo_code",
    "promocode": "promo_code",
    "bonuscode": "promo_code",
    "coupon": "promo_code",
    "ip": "ip_address",
    "ipaddr": "ip_address",
    "useragent": "user_agent",
    "ua": "user_agent",
    "countrycode": "country",
    "value": "amount",
    "sum": "amount",
    "ngr": "amount",
    "ccy": "currency",
    "currencycode": "currency",
    "win": "win_amount",
    "payout": "win_amount",
    "meta": "metadata",
    "extra": "metadata",
    "playerstatus": "status",
    "depositkey": "deposit_idempotency_key",
    "depositid": "deposit_idempotency_key",
}

_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_SEPARATORS = re.compile(r"[\s\-.]+")


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


def _err(errors: list, name: str | None, message: str) -> None:
    errors.append({"field": name, "message": message})


def _json_type(value) -> str:
    """How a JSON value's type reads in a message ("a number", "an object", ...)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | Decimal | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


# --- field names ------------------------------------------------------------------------


def _snake(name: str) -> str:
    return _SEPARATORS.sub("_", _CAMEL_BOUNDARY.sub("_", name.strip())).lower()


def _types_with(name: str) -> list[str]:
    return [t for t in EVENT_TYPES if name in ALLOWED_FIELDS[t]]


def _suggest(name: str, candidates: frozenset[str]) -> str | None:
    """The known field `name` most likely meant, among `candidates`, or None."""
    snake = _snake(name)
    if snake in candidates:
        return snake  # playerExternalRef, Click-Id, EVENT_TYPE
    squashed = snake.replace("_", "")
    for candidate in sorted(candidates):
        if candidate.replace("_", "") == squashed:
            return candidate  # clickid, idempotencykey
    alias = ALIASES.get(squashed)
    if alias in candidates:
        return alias  # player_ref, timestamp, ip
    # The name's words are a subset of one field's words (player_ref -> player_external_ref).
    words = set(filter(None, snake.split("_")))
    by_words = [c for c in sorted(candidates) if words and words < set(c.split("_"))]
    if len(by_words) == 1:
        return by_words[0]
    close = difflib.get_close_matches(snake, sorted(candidates), n=1, cutoff=0.75)
    return close[0] if close else None


def unknown_field_message(name: str, event_type: str | None) -> str:
    """The message for a field that `event_type` does not take (None: type not known)."""
    shown = name if len(name) <= 64 else name[:61] + "..."
    if event_type is not None and name in ALL_FIELDS:
        owners = ", ".join(_types_with(name))
        return f"'{shown}' is not a field of {event_type} events; it belongs to {owners} events"
    own = ALLOWED_FIELDS[event_type] if event_type is not None else ALL_FIELDS
    suggestion = _suggest(name, own)
    if suggestion is not None:
        return f"unknown field '{shown}'; did you mean '{suggestion}'?"
    suggestion = _suggest(name, ALL_FIELDS)
    if suggestion is not None:
        owners = ", ".join(_types_with(suggestion))
        return (
            f"unknown field '{shown}'; did you mean '{suggestion}'? "
            f"(a field of {owners} events, not of {event_type})"
        )
    fields = ", ".join(sorted(own))
    kind = f"{event_type} events" if event_type else "events"
    return f"unknown field '{shown}'; the fields of {kind} are: {fields}"


# --- values -----------------------------------------------------------------------------


def parse_amount(value, name: str, errors: list) -> Decimal | None:
    """A money amount: a JSON number (parsed as Decimal, never float) or a decimal string
    with at most 4 decimal places. Returns it quantized to the money places."""
    example = 'e.g. 50.00 or "50.00"'
    if isinstance(value, float):  # only when a caller parsed JSON without parse_float=Decimal
        value = Decimal(repr(value))
    if isinstance(value, bool) or not isinstance(value, int | Decimal | str):
        _err(
            errors,
            name,
            f"must be a JSON number or a decimal string, {example}; got {_json_type(value)}",
        )
        return None
    if isinstance(value, str):
        text = value.strip()
        if not re.fullmatch(r"[+-]?(\d+(\.\d*)?|\.\d+)", text):
            _err(errors, name, f"'{value[:40]}' is not a plain decimal number, {example}")
            return None
        amount = Decimal(text)
    else:
        try:
            amount = Decimal(value)
        except (InvalidOperation, ValueError):
            _err(errors, name, f"is not a number, {example}")
            return None
    if not amount.is_finite():
        _err(errors, name, "must be a finite number")
        return None
    if amount.copy_abs() >= MAX_AMOUNT:  # copy_abs: no context, so 1e999999999 cannot overflow
        _err(errors, name, f"must be less than {MAX_AMOUNT:,} in absolute value")
        return None
    quantized = amount.quantize(AMOUNT_QUANTUM)
    if quantized != amount:
        _err(
            errors,
            name,
            f"has more than {MONEY_DECIMAL_PLACES} decimal places; round it to at most "
            f'{MONEY_DECIMAL_PLACES}, e.g. "{quantized}"',
        )
        return None
    return quantized


def parse_event_time(value, errors: list, now: datetime) -> datetime | None:
    example = "e.g. 2026-03-15T10:00:00Z"
    if not isinstance(value, str):
        _err(
            errors,
            "event_time",
            f"must be an ISO 8601 string with a UTC offset, {example}; got {_json_type(value)}",
        )
        return None
    text = value
    # RFC 3339 allows a lowercase 't' separator and 'z' offset; fromisoformat does not.
    if len(text) > 10 and text[10] == "t":
        text = text[:10] + "T" + text[11:]
    if text.endswith("z"):
        text = text[:-1] + "Z"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        _err(errors, "event_time", f"'{value[:60]}' is not an ISO 8601 time, {example}")
        return None
    if "T" not in value.upper() and " " not in value:
        _err(errors, "event_time", f"must include a time of day, {example}")
        return None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        _err(
            errors,
            "event_time",
            "has no UTC offset; add 'Z' or an offset such as +02:00 (naive times are ambiguous)",
        )
        return None
    try:
        parsed = parsed.astimezone(UTC)
    except OverflowError:
        _err(errors, "event_time", f"is out of range, {example}")
        return None
    if parsed > now + MAX_FUTURE:
        _err(
            errors,
            "event_time",
            "is more than 5 minutes in the future; send events when they happen and check "
            "the sender's clock",
        )
        return None
    if parsed < EARLIEST_EVENT_TIME:
        _err(
            errors,
            "event_time",
            "is before 1970-01-01T00:00:00Z; send the time the event happened, e.g. "
            "2026-03-15T10:00:00Z",
        )
        return None
    return parsed


def _string(value, name: str, errors: list, *, max_length: int, min_length: int = 1) -> str | None:
    if not isinstance(value, str):
        hint = f' (send it quoted, e.g. "{value}")' if isinstance(value, int | Decimal) else ""
        _err(
            errors,
            name,
            f"must be a string of {min_length}–{max_length} characters; got {_json_type(value)}"
            f"{hint}",
        )
        return None
    if not (min_length <= len(value) <= max_length):
        _err(errors, name, f"must be {min_length}–{max_length} characters long (got {len(value)})")
        return None
    return value


def _choice(value, name: str, errors: list, choices: tuple[str, ...]) -> str | None:
    if isinstance(value, str) and value in choices:
        return value
    hint = ""
    if isinstance(value, str):
        close = difflib.get_close_matches(_snake(value), choices, n=1, cutoff=0.6)
        if close:
            hint = f"; did you mean '{close[0]}'?"
    _err(errors, name, f"must be one of: {', '.join(choices)}{hint}")
    return None


# --- what PostgreSQL can store ------------------------------------------------------------


class JsonObject(dict):
    """A JSON object as parsed; `repeated` names the keys it held more than once (JSON allows
    them, and a parser keeps the last value: a duplicated field would be read silently)."""

    __slots__ = ("repeated",)


def json_object(pairs: list) -> JsonObject:
    """`object_pairs_hook` of the API's JSON parser."""
    obj = JsonObject(pairs)
    obj.repeated = ()
    if len(obj) != len(pairs):
        seen: set = set()
        obj.repeated = tuple(dict.fromkeys(k for k, _ in pairs if k in seen or seen.add(k)))
    return obj


MAX_NESTING = 32


def _storable(text: str) -> bool:
    """PostgreSQL refuses NUL in text and jsonb, and UTF-8 has no lone surrogates."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _unstorable(raw: dict) -> dict | None:
    """The first key or string value, at any depth, that cannot be stored (a NUL character,
    a lone surrogate such as \\ud800), or a nesting deeper than MAX_NESTING, as an error
    naming where it is (never quoting it: it could not be written back either); None when
    the event can be stored as sent."""
    stack = [(raw, "", 1)]
    while stack:
        value, path, depth = stack.pop()
        where = path or None
        if isinstance(value, dict | list):
            if depth > MAX_NESTING:
                return {
                    "field": where,
                    "message": f"is nested more than {MAX_NESTING} levels deep; flatten it",
                }
            if isinstance(value, dict):
                items = []
                for key, item in value.items():
                    if not _storable(key):
                        return {
                            "field": where,
                            "message": "has a field name with a NUL character or a lone "
                            "surrogate (invalid Unicode); rename it",
                        }
                    items.append((f"{path}.{key}" if path else key, item))
                repeated = getattr(value, "repeated", ())
                if repeated:
                    return {
                        "field": f"{path}.{repeated[0]}" if path else repeated[0],
                        "message": "is sent more than once in the same object; send it once",
                    }
            else:
                items = [(f"{path}[{index}]", item) for index, item in enumerate(value)]
            stack.extend((item, item_path, depth + 1) for item_path, item in reversed(items))
        elif isinstance(value, str) and not _storable(value):
            return {
                "field": where,
                "message": "contains a NUL character (\\u0000) or a lone surrogate (invalid "
                "Unicode), which cannot be stored; remove it and send the event again",
            }
    return None


# --- the event --------------------------------------------------------------------------


def validate_event(
    raw, *, brand_ids: frozenset, now: datetime | None = None
) -> CleanEvent | Invalid:
    """Validate one event object. `brand_ids` are the UUIDs of the key's operator's brands.

    Returns the typed event, or every problem found (not only the first) so that the
    sender fixes them in one go."""
    now = now or timezone.now()
    if not isinstance(raw, dict):
        return Invalid(
            None,
            [
                {
                    "field": None,
                    "message": f"each event must be a JSON object; got {_json_type(raw)}",
                }
            ],
        )
    problem = _unstorable(raw)
    if problem is not None:
        key = raw.get("idempotency_key")
        return Invalid(key if isinstance(key, str) and _storable(key) else None, [problem])
    errors: list[dict] = []

    idempotency_key = None
    if "idempotency_key" not in raw:
        _err(errors, "idempotency_key", "is required")
    elif raw["idempotency_key"] is None:
        _err(errors, "idempotency_key", "must not be null")
    elif key := _string(raw["idempotency_key"], "idempotency_key", errors, max_length=255):
        if not key.isprintable():
            _err(
                errors,
                "idempotency_key",
                "must contain printable characters only (no control characters or newlines)",
            )
        else:
            idempotency_key = key

    event_type = raw.get("event_type")
    if "event_type" not in raw:
        _err(errors, "event_type", "is required; one of: " + ", ".join(EVENT_TYPES))
        event_type = None
    elif event_type is None:
        _err(errors, "event_type", "must not be null; one of: " + ", ".join(EVENT_TYPES))
    else:
        event_type = _choice(event_type, "event_type", errors, EVENT_TYPES)

    allowed = ALLOWED_FIELDS[event_type] if event_type is not None else ALL_FIELDS
    for name in raw:
        if name not in allowed:
            _err(errors, name, unknown_field_message(name, event_type))

    required = COMMON_REQUIRED + (TYPE_FIELDS[event_type][0] if event_type else ())
    for name in required:
        if name in ("idempotency_key", "event_type"):
            continue
        if name not in raw:
            where = "" if name in COMMON_REQUIRED else f" for {event_type} events"
            _err(errors, name, f"is required{where}")
        elif raw[name] is None:
            _err(errors, name, "must not be null")

    event_time = None
    if raw.get("event_time") is not None:
        event_time = parse_event_time(raw["event_time"], errors, now)

    brand_id = None
    if raw.get("brand_id") is not None:
        value = raw["brand_id"]
        try:
            brand_id = uuid.UUID(value) if isinstance(value, str) else None
        except ValueError:
            brand_id = None
        if brand_id is None:
            _err(
                errors,
                "brand_id",
                "must be a brand UUID, e.g. 0b5e1f3a-5c8e-4a4e-9d1c-2f6b7c8d9e0f",
            )
        elif brand_id not in brand_ids:
            # A brand of another operator reads exactly like one that does not exist.
            _err(errors, "brand_id", "unknown brand_id")
            brand_id = None

    ref = None
    if raw.get("player_external_ref") is not None:
        ref = _string(raw["player_external_ref"], "player_external_ref", errors, max_length=128)

    metadata = raw.get("metadata")
    if metadata is not None:
        if not isinstance(metadata, dict):
            _err(errors, "metadata", f"must be a JSON object; got {_json_type(metadata)}")
        else:
            size = len(
                json.dumps(
                    metadata, default=str, separators=(",", ":"), ensure_ascii=False
                ).encode()
            )
            if size > MAX_METADATA_BYTES:
                _err(
                    errors,
                    "metadata",
                    f"must be at most {MAX_METADATA_BYTES} bytes as JSON (got {size})",
                )

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


def _currency(value, errors: list) -> str:
    if isinstance(value, str) and value in CURRENCIES:
        return value
    hint = ""
    if isinstance(value, str) and value.strip().upper() in CURRENCIES:
        hint = f" (did you mean '{value.strip().upper()}'?)"
    elif isinstance(value, str):
        hint = f" ('{value[:20]}' is not one)"
    else:
        hint = f"; got {_json_type(value)}"
    _err(errors, "currency", f"must be an uppercase ISO 4217 code such as EUR{hint}")
    return ""


def _validate_type_fields(event_type: str, raw: dict, errors: list):
    currency, amount, extra = "", None, {}
    if raw.get("currency") is not None:
        currency = _currency(raw["currency"], errors)
    if raw.get("amount") is not None:
        amount = parse_amount(raw["amount"], "amount", errors)
        if amount is not None:
            if event_type in POSITIVE_AMOUNT_TYPES and amount <= 0:
                _err(
                    errors,
                    "amount",
                    f"must be greater than 0 for {event_type} events (got {amount.normalize()})",
                )
            elif event_type in WAGER_TYPES and amount < 0:
                _err(errors, "amount", f"must not be negative for {event_type} events")
    if event_type in WAGER_TYPES:
        win = raw.get("win_amount")
        if win is not None:
            win = parse_amount(win, "win_amount", errors)
            if win is not None and win < 0:
                _err(errors, "win_amount", "must not be negative")
            extra["win_amount"] = win
        if (raw.get("amount") is not None or win is not None) and raw.get("currency") is None:
            _err(errors, "currency", "is required when an amount is given")
        if raw.get("product") is not None:
            extra["product"] = _choice(raw["product"], "product", errors, PRODUCTS)
    elif event_type == EventType.REGISTRATION:
        for name, max_length in (("click_id", 255), ("promo_code", 64), ("user_agent", 1000)):
            if raw.get(name) is not None:
                extra[name] = _string(raw[name], name, errors, max_length=max_length)
        country = raw.get("country")
        if country is not None:
            if not isinstance(country, str) or country not in COUNTRIES:
                hint = ""
                if isinstance(country, str) and country.strip().upper() in COUNTRIES:
                    hint = f" (did you mean '{country.strip().upper()}'?)"
                _err(
                    errors,
                    "country",
                    f"must be an uppercase ISO 3166-1 alpha-2 code such as GB{hint}",
                )
            extra["country"] = country
        ip = raw.get("ip_address")
        if ip is not None:
            try:
                extra["ip_address"] = ip_canonical(ip) if isinstance(ip, str) else None
            except ValueError:
                extra["ip_address"] = None
            if extra["ip_address"] is None:
                _err(errors, "ip_address", "must be an IPv4 or IPv6 address, e.g. 203.0.113.7")
    elif event_type == EventType.CHARGEBACK:
        if raw.get("deposit_idempotency_key") is not None:
            extra["deposit_idempotency_key"] = _string(
                raw["deposit_idempotency_key"], "deposit_idempotency_key", errors, max_length=255
            )
    elif event_type == EventType.PLAYER_STATUS:
        if raw.get("status") is not None:
            extra["status"] = _choice(raw["status"], "status", errors, PLAYER_STATUSES)
    return currency, amount, extra
