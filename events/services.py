"""Writes of the Event API: API keys and event ingestion."""

import functools
import hashlib
import json
import logging
import secrets
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Context, Decimal

from django.db import DatabaseError, InterfaceError, OperationalError, connection, transaction
from django.utils import timezone

from revvvs import sql
from revvvs.hashing import ip_canonical, ip_hmac, secret_hmac
from revvvs.models import Brand, Operator

from .models import ApiKey, Event
from .validation import CleanEvent, Invalid, validate_event

logger = logging.getLogger(__name__)

API_KEY_PREFIX = "rv_"
LAST_USED_GRANULARITY_SECONDS = 60
DEADLOCK_RETRIES = 3


# --- API keys ---------------------------------------------------------------------------


def api_key_hash(key: str) -> str:
    # The key carries 256 bits of entropy, so a plain SHA-256 is enough (no slow KDF needed).
    return hashlib.sha256(key.encode()).hexdigest()


def api_key_create(*, operator: Operator, name: str = "", created_by=None) -> tuple[ApiKey, str]:
    """Create a key; returns the row and the key in clear, which is never stored."""
    key = API_KEY_PREFIX + secrets.token_urlsafe(32)
    api_key = ApiKey.objects.create(
        operator=operator,
        name=name,
        prefix=key[:10],
        key_hash=api_key_hash(key),
        created_by=created_by,
    )
    return api_key, key


def api_key_revoke(*, api_key: ApiKey) -> ApiKey:
    if api_key.revoked_at is None:
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at"])
    return api_key


def api_key_authenticate(*, key: str) -> ApiKey | None:
    """The active key matching `key`, or None. Keeps `last_used_at` to the minute.

    Looked up on every request, never cached, so a revoked key stops working at once. On
    PostgreSQL one precompiled query brings the key, its operator and the operator's brand
    ids (which `events_ingest` needs next): compiling the equivalent ORM query costs about
    ten times its execution, on a path that runs for every request."""
    if not key or not key.startswith(API_KEY_PREFIX):
        return None
    if connection.vendor == "postgresql":
        api_key = _api_key_fetch(api_key_hash(key))
    else:
        api_key = (
            ApiKey.objects.select_related("operator")
            .filter(key_hash=api_key_hash(key), revoked_at__isnull=True)
            .first()
        )
    if api_key is None:
        return None
    now = timezone.now()
    if (
        api_key.last_used_at is None
        or (now - api_key.last_used_at).total_seconds() > LAST_USED_GRANULARITY_SECONDS
    ):
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
        api_key.last_used_at = now
    return api_key


@functools.cache
def _api_key_fetch_sql() -> str:
    """The query of `_api_key_fetch`, built once from the models."""
    qn = sql.qn
    key_meta, operator_meta, brand_meta = ApiKey._meta, Operator._meta, Brand._meta

    def column(meta, name):
        return qn(meta.get_field(name).column)

    brand_ids = (
        f"ARRAY(SELECT b.{qn(brand_meta.pk.column)} FROM {qn(brand_meta.db_table)} b "
        f"WHERE b.{column(brand_meta, 'operator')} = k.{column(key_meta, 'operator')})"
    )
    return (
        f"SELECT {sql.select_list(ApiKey, 'k')}, {sql.select_list(Operator, 'o')}, {brand_ids} "
        f"FROM {qn(key_meta.db_table)} k JOIN {qn(operator_meta.db_table)} o "
        f"ON o.{qn(operator_meta.pk.column)} = k.{column(key_meta, 'operator')} "
        f"WHERE k.{column(key_meta, 'key_hash')} = %s "
        f"AND k.{column(key_meta, 'revoked_at')} IS NULL"
    )


def _api_key_fetch(key_hash: str) -> ApiKey | None:
    with connection.cursor() as cursor:
        cursor.execute(_api_key_fetch_sql(), [key_hash])
        row = cursor.fetchone()
    if row is None:
        return None
    api_key = sql.instance(ApiKey, row)
    api_key.operator = sql.instance(Operator, row, len(sql.reader(ApiKey)[0]))
    api_key.operator_brand_ids = row[-1]
    return api_key


def _operator_brand_ids(api_key: ApiKey) -> frozenset:
    brand_ids = getattr(api_key, "operator_brand_ids", None)
    if brand_ids is None:
        brand_ids = Brand.objects.filter(operator_id=api_key.operator_id).values_list(
            "id", flat=True
        )
    return frozenset(brand_ids)


# --- Ingestion --------------------------------------------------------------------------


@dataclass(frozen=True)
class EventOutcome:
    """What happened to one event of a request; `as_dict` is its API result."""

    idempotency_key: str | None
    status: str  # accepted | duplicate | error
    event_id: uuid.UUID | None = None
    errors: list = field(default_factory=list)
    warnings: list = field(default_factory=list)
    payload_mismatch: bool = False
    # The payload hash of the stored event this outcome refers to (not part of the answer):
    # a key repeated later in the same request is compared with it.
    stored_payload_hash: str | None = field(default=None, repr=False, compare=False)

    def as_dict(self) -> dict:
        result = {
            "event_id": str(self.event_id) if self.event_id else None,
            "idempotency_key": self.idempotency_key,
            "status": self.status,
        }
        if self.status == "duplicate":
            result["payload_mismatch"] = self.payload_mismatch
        if self.errors:
            result["errors"] = self.errors
        if self.warnings:
            result["warnings"] = self.warnings
        return result


_SCALARS = frozenset({str, int, bool, float, type(None)})


def _jsonable(value):
    """`value` with every Decimal as its string (the JSON parser makes numbers Decimals)."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {k: v if type(v) in _SCALARS else _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [v if type(v) in _SCALARS else _jsonable(v) for v in value]
    return value


def _decimal_as_str(value):
    # json.dumps default: what _jsonable does, for the values the encoder cannot take.
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _stored_payload(raw: dict) -> dict:
    # The payload is kept as sent, except the raw IP, which is never stored (SPEC §2): its
    # HMAC takes its place, which is all last-click attribution needs.
    payload = _jsonable(raw)
    ip = payload.pop("ip_address", None)
    if ip:
        payload["ip_hash"] = ip_hmac(ip_canonical(ip))
    for name in ("amount", "win_amount"):
        # Money is returned as strings (docs/events.md), also when sent as a JSON integer.
        if type(payload.get(name)) is int:
            payload[name] = str(payload[name])
    return payload


def _canonical_number(value: Decimal):
    """A metadata number as one value however it was written: 1.50 and 1.5 alike, 2.0 as 2."""
    if value == 0:
        return 0  # -0 too (no arithmetic: it would round to the context's 28 digits)
    if value.is_finite() and value == value.to_integral_value() and value.adjusted() < 30:
        return int(value)
    # normalize() in a context as precise as the value: the default one rounds to 28 digits.
    return str(value.normalize(Context(prec=len(value.as_tuple().digits))))


def _canonical_numbers(value):
    if isinstance(value, Decimal):
        return _canonical_number(value)
    if isinstance(value, dict):
        return {k: _canonical_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_canonical_numbers(v) for v in value]
    return value


def _payload_hash(clean: CleanEvent) -> str:
    canonical = {
        "event_type": clean.event_type,
        "event_time": clean.event_time.isoformat(),
        "brand_id": str(clean.brand_id),
        "player_external_ref": clean.player_external_ref,
        "currency": clean.currency,
        # + 0: -0 and 0 are the same amount.
        "amount": str(clean.amount + 0) if clean.amount is not None else None,
        "extra": clean.extra,
        "metadata": _canonical_numbers(clean.metadata),
    }
    # Keyed hash: the canonical form may hold the player's IP address.
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"), default=_decimal_as_str)
    return secret_hmac(text.encode())


def events_ingest(
    *, api_key: ApiKey, raw_events: list, now: datetime | None = None
) -> list[EventOutcome]:
    """Validate and store events, each with its effects (player, attribution, commission).

    Returns one outcome per input, in input order. Invalid events are answered, never stored.
    A key already stored for the operator, or repeated earlier in the same request, is a
    `duplicate` of its first use. The accepted events and all their effects commit in one
    transaction; should the database refuse it for a reason validation could not foresee,
    the events are retried one by one so that one bad event never spoils the rest.
    """
    now = now or timezone.now()
    operator = api_key.operator
    brand_ids = _operator_brand_ids(api_key)

    outcomes: list[EventOutcome | None] = [None] * len(raw_events)
    first_use: dict[str, int] = {}
    pending: list[tuple[int, CleanEvent, Event]] = []
    repeats: list[tuple[int, str, str]] = []  # (index, key, payload_hash)
    for index, raw in enumerate(raw_events):
        clean = validate_event(raw, brand_ids=brand_ids, now=now)
        if isinstance(clean, Invalid):
            outcomes[index] = EventOutcome(clean.idempotency_key, "error", errors=clean.errors)
            continue
        payload_hash = _payload_hash(clean)
        if clean.idempotency_key in first_use:
            repeats.append((index, clean.idempotency_key, payload_hash))
            continue
        first_use[clean.idempotency_key] = index
        event = sql.new(
            Event,
            {
                "id": uuid.uuid4(),
                "operator_id": operator.pk,
                "brand_id": clean.brand_id,
                "api_key_id": api_key.pk,
                "event_type": clean.event_type,
                "event_time": clean.event_time,
                "received_at": now,
                "idempotency_key": clean.idempotency_key,
                "payload": _stored_payload(raw),
                "payload_hash": payload_hash,
                "currency": clean.currency,
                "amount": clean.amount,
            },
            related={"operator": operator, "api_key": api_key},
        )
        pending.append((index, clean, event))

    if pending:
        try:
            stored = _store_with_retry(operator, pending)
        except (InterfaceError, OperationalError):
            # The database is unreachable or overloaded, not refusing an event: nothing was
            # stored, so the request answers 503 (revvvs.middleware) and the sender retries.
            raise
        except DatabaseError:
            logger.exception("batch refused by the database; storing its events one by one")
            stored = {}
            for item in pending:
                try:
                    stored.update(_store_with_retry(operator, [item]))
                except (InterfaceError, OperationalError):
                    raise
                except DatabaseError:
                    logger.exception("event %s refused by the database", item[1].idempotency_key)
                    stored[item[0]] = EventOutcome(
                        item[1].idempotency_key,
                        "error",
                        errors=[
                            {
                                "field": None,
                                "message": "the event could not be stored; "
                                "retry it with the same idempotency_key",
                            }
                        ],
                    )
        for index, outcome in stored.items():
            outcomes[index] = outcome

    for index, key, payload_hash in repeats:
        first = outcomes[first_use[key]]
        if first.status == "error":
            outcomes[index] = first
            continue
        outcomes[index] = EventOutcome(
            key,
            "duplicate",
            event_id=first.event_id,
            payload_mismatch=payload_hash != first.stored_payload_hash,
            stored_payload_hash=first.stored_payload_hash,
        )
    return outcomes


def _store_with_retry(operator, pending) -> dict[int, EventOutcome]:
    for attempt in range(DEADLOCK_RETRIES + 1):
        try:
            return _store(operator, pending)
        except OperationalError as exc:
            sqlstate = getattr(getattr(exc, "__cause__", None), "sqlstate", None)
            if sqlstate not in ("40P01", "40001") or attempt == DEADLOCK_RETRIES:
                raise
            time.sleep(0.01 * (attempt + 1))
    raise AssertionError("unreachable")


def _store(operator, pending) -> dict[int, EventOutcome]:
    from attribution.services import events_apply, players_get_or_create
    from commissions.services import events_book

    # Rows are written in a fixed order (by player, then by key), so concurrent requests
    # touching the same players and keys queue up instead of deadlocking.
    with transaction.atomic():
        players = players_get_or_create(
            keys={(clean.brand_id, clean.player_external_ref) for _, clean, _ in pending}
        )
        for _, clean, event in pending:
            event.player = players[(clean.brand_id, clean.player_external_ref)]
        events = sorted((event for _, _, event in pending), key=lambda e: e.idempotency_key)
        inserted = _events_insert(events)
        originals = {}
        if len(inserted) < len(events):
            originals = {
                row["idempotency_key"]: row
                for row in Event.objects.filter(
                    operator=operator,
                    idempotency_key__in=[e.idempotency_key for e in events if e.id not in inserted],
                )
                .order_by()
                .values("id", "idempotency_key", "payload_hash")
            }
        new_events = [e for e in events if e.id in inserted]
        new_events.sort(key=lambda e: (e.event_time, e.idempotency_key))
        applied = events_apply(events=new_events)
        events_book(events=new_events, newly_registered=applied.newly_registered)
        with_warnings = []
        for event in new_events:
            if applied.warnings.get(event.id):
                event.warnings = applied.warnings[event.id]
                with_warnings.append(event)
        if with_warnings:
            Event.objects.bulk_update(with_warnings, ["warnings"])

    result = {}
    for index, _clean, event in pending:
        if event.id in inserted:
            result[index] = EventOutcome(
                event.idempotency_key,
                "accepted",
                event_id=event.id,
                warnings=event.warnings or [],
                stored_payload_hash=event.payload_hash,
            )
        else:
            original = originals[event.idempotency_key]
            result[index] = EventOutcome(
                event.idempotency_key,
                "duplicate",
                event_id=original["id"],
                payload_mismatch=original["payload_hash"] != event.payload_hash,
                stored_payload_hash=original["payload_hash"],
            )
    return result


# The columns _events_insert writes on PostgreSQL, with their SQL types.
_INSERT_FIELDS = (
    "id",
    "operator",
    "brand",
    "player",
    "api_key",
    "event_type",
    "event_time",
    "received_at",
    "idempotency_key",
    "payload",
    "payload_hash",
    "currency",
    "amount",
    "warnings",
)


@functools.cache
def _events_insert_sql() -> str | None:
    """INSERT ... ON CONFLICT DO NOTHING RETURNING id of a JSON array of rows, or None when
    the Event model has columns this statement does not know (then bulk_create is used)."""
    fields = [Event._meta.get_field(name) for name in _INSERT_FIELDS]
    if {f.column for f in Event._meta.concrete_fields} != {f.column for f in fields}:
        return None
    columns = ", ".join(sql.qn(f.column) for f in fields)
    return (
        f"INSERT INTO {sql.qn(Event._meta.db_table)} ({columns}) "
        f"SELECT {columns} FROM {sql.recordset(fields, 'r')} ORDER BY n "
        "ON CONFLICT DO NOTHING RETURNING id"
    )


def _events_insert(events: list[Event]) -> set[uuid.UUID]:
    """Insert `events` in their order, skipping keys the operator already used; returns the
    ids of the rows inserted.

    On PostgreSQL the batch travels as one JSON parameter: one statement, no per-value
    quoting in Python (the client-side binding of Django's psycopg cursors makes that the
    costliest part of a 100-row bulk_create), and RETURNING says which rows went in."""
    statement = _events_insert_sql() if sql.is_postgresql() else None
    if statement is None:
        Event.objects.bulk_create(events, ignore_conflicts=True)
        return set(
            Event.objects.filter(id__in=[e.id for e in events])
            .order_by()
            .values_list("id", flat=True)
        )
    params = sql.recordset_params(
        [
            {
                "id": str(e.id),
                "operator_id": e.operator_id,
                "brand_id": str(e.brand_id),
                "player_id": e.player_id,
                "api_key_id": e.api_key_id,
                "event_type": e.event_type,
                "event_time": e.event_time.isoformat(),
                "received_at": e.received_at.isoformat(),
                "idempotency_key": e.idempotency_key,
                "payload": e.payload,
                "payload_hash": e.payload_hash,
                "currency": e.currency,
                "amount": None if e.amount is None else str(e.amount),
                "warnings": e.warnings,
            }
            for e in events
        ]
    )
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        inserted = {row[0] for row in cursor.fetchall()}
    for event in events:
        if event.id in inserted:
            event._state.adding = False
            event._state.db = connection.alias
    return inserted
