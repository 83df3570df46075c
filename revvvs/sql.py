"""Plain SQL for the hot paths (the Event API's batch), built once from the models' metadata.

Building an ORM query costs 0.3–0.7 ms of CPU here, ten times its execution, and
bulk_create/bulk_update quote every value in Python (Django's psycopg backend binds on the
client). On PostgreSQL the hot statements are built once per process from the models'
metadata, and rows travel as one JSON parameter read with `jsonb_to_recordset`. SQLite, the
demo database, keeps the ORM: callers branch on `is_postgresql()`.
"""

import functools
import json
import uuid
from datetime import date
from decimal import Decimal

from django.db import connection
from django.db.models.base import ModelState
from django.db.models.signals import post_init, pre_init


def is_postgresql() -> bool:
    return connection.vendor == "postgresql"


def qn(name: str) -> str:
    return connection.ops.quote_name(name)


def _json_default(value):
    # Decimals travel as their exact text (never a float), datetimes with their UTC offset.
    if isinstance(value, Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, date):  # datetime too
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def json_param(rows: list[dict]) -> str:
    """Rows as one JSON parameter for `jsonb_to_recordset`."""
    return json.dumps(rows, separators=(",", ":"), default=_json_default)


def recordset_params(rows: list[dict]) -> list:
    """The two parameters of a `recordset(...)`: the rows as JSON, and how many there are.

    The count is the subquery's LIMIT, which the planner reads as the number of rows (with
    client-side binding it is a literal). Without it the planner takes every
    `jsonb_to_recordset` for 100 rows, and for a single event hash-joined its one row with
    a sequential scan of the whole players table: 6 ms per request at 10,000 players,
    growing with the table (docs/performance.md)."""
    return [json_param(rows), len(rows)]


def record(fields) -> str:
    """The column definition list of `jsonb_to_recordset` for these model fields."""
    return ", ".join(f"{qn(f.column)} {f.db_type(connection)}" for f in fields)


def recordset(fields, alias: str) -> str:
    """`FROM` item reading the `recordset_params` rows as `alias(columns…, n)`, n their
    position."""
    columns = ", ".join(qn(f.column) for f in fields)
    return (
        f"(SELECT * FROM ROWS FROM (jsonb_to_recordset(%s::jsonb) AS ({record(fields)})) "
        f"WITH ORDINALITY AS {alias}({columns}, n) LIMIT %s) AS {alias}"
    )


@functools.cache
def reader(model) -> tuple[list[str], list[str], list]:
    """The columns of `model`, their attnames, and the db converters to apply (from_db)."""
    fields = model._meta.concrete_fields
    converters = []
    for index, f in enumerate(fields):
        field_converters = f.get_db_converters(connection)
        if field_converters:
            converters.append((index, f, field_converters))
    return [f.column for f in fields], [f.attname for f in fields], converters


def select_list(model, alias: str) -> str:
    return ", ".join(f"{alias}.{qn(column)}" for column in reader(model)[0])


def instance(model, row, offset: int = 0):
    """The `model` instance whose columns (`select_list`) start at `row[offset]`, or None
    when its primary key is NULL (a LEFT JOIN that found nothing)."""
    _, attnames, converters = reader(model)
    values = list(row[offset : offset + len(attnames)])
    if values[attnames.index(model._meta.pk.attname)] is None:
        return None
    for index, f, field_converters in converters:
        for converter in field_converters:
            values[index] = converter(values[index], f, connection)
    return loaded(model, attnames, values)


# --- Model instances without Model.__init__ ---------------------------------------------------
#
# Model.__init__ sends pre_init and post_init and sets each field through its descriptor:
# ~20 µs per instance here, 17 % of a 100-event batch's CPU for its ~300 instances (py-spy,
# docs/performance.md). For a new instance those steps only fill `__dict__` (no related
# object is cached yet, so the foreign-key descriptors have nothing to clear); these two fill
# it directly, and fall back to the real constructor when a receiver listens to the signals.


def _signalled(model) -> bool:
    return pre_init.has_listeners(model) or post_init.has_listeners(model)


@functools.cache
def _defaults(model) -> tuple[tuple[str, object], ...]:
    return tuple((f.attname, f) for f in model._meta.concrete_fields)


def loaded(model, attnames, values):
    """`model.from_db(connection.alias, attnames, values)` for all concrete fields, values
    converted: the instance as read from the database."""
    if _signalled(model):
        return model.from_db(connection.alias, attnames, values)
    obj = model.__new__(model)
    state = obj._state = ModelState()
    state.adding, state.db = False, connection.alias
    obj.__dict__.update(zip(attnames, values, strict=True))
    return obj


def new(model, attrs: dict, related: dict | None = None):
    """`model(**attrs)` (attrs keyed by attname; the other fields get their defaults), with
    `related` (field name → object) cached as assigning the object would."""
    if _signalled(model):
        obj = model(**attrs)
        for name, value in (related or {}).items():
            setattr(obj, name, value)
        return obj
    obj = model.__new__(model)
    obj._state = ModelState()
    values = obj.__dict__
    for attname, f in _defaults(model):
        values[attname] = attrs[attname] if attname in attrs else f.get_default()
    if related:
        obj._state.fields_cache.update(related)
    return obj


@functools.cache
def _insert_sql(model, unique_by: str | None = None) -> tuple[str, list]:
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    columns = ", ".join(qn(f.column) for f in fields)
    returning = qn(model._meta.pk.column)
    conflict = ""
    if unique_by is not None:
        conflict = "ON CONFLICT DO NOTHING "
        returning += f", {qn(model._meta.get_field(unique_by).column)}"
    statement = (
        f"INSERT INTO {qn(model._meta.db_table)} ({columns}) "
        f"SELECT {columns} FROM {recordset(fields, 'r')} ORDER BY n "
        f"{conflict}RETURNING {returning}"
    )
    return statement, fields


def _insert_rows(objs: list, fields) -> list[dict]:
    rows = []
    for obj in objs:
        # As bulk_create: a foreign key to an object saved just before (a clawback's CPA).
        obj._prepare_related_fields_for_save(operation_name="bulk_create")
        rows.append({f.column: f.pre_save(obj, True) for f in fields})
    return rows


def _saved(obj, pk) -> None:
    obj.pk = pk
    obj._state.adding, obj._state.db = False, connection.alias


def bulk_insert(objs: list) -> None:
    """bulk_create of `objs` (one model, auto primary key): one statement, the rows in their
    order, each object given its primary key."""
    model = type(objs[0])
    if not is_postgresql():
        model.objects.bulk_create(objs)
        return
    statement, fields = _insert_sql(model)
    with connection.cursor() as cursor:
        cursor.execute(statement, recordset_params(_insert_rows(objs, fields)))
        ids = [row[0] for row in cursor.fetchall()]
    for obj, pk in zip(objs, ids, strict=True):
        _saved(obj, pk)


def bulk_insert_unless_conflict(objs: list, *, unique_by: str) -> list:
    """PostgreSQL only: `bulk_insert` with `ON CONFLICT DO NOTHING`, in one statement and no
    savepoint. The rows a unique constraint refuses are left out; the objects inserted get
    their primary key and are returned, the others keep none. `unique_by` is the field that
    tells the objects apart (the value of each object's field must be unique in `objs`):
    RETURNING brings it back with the primary key."""
    model = type(objs[0])
    statement, fields = _insert_sql(model, unique_by)
    key = model._meta.get_field(unique_by)
    by_key = {getattr(obj, key.attname): obj for obj in objs}
    if len(by_key) != len(objs):
        raise ValueError(f"{unique_by} must tell the objects apart")
    with connection.cursor() as cursor:
        cursor.execute(statement, recordset_params(_insert_rows(objs, fields)))
        returned = cursor.fetchall()
    inserted = []
    for pk, value in returned:
        obj = by_key[value]
        _saved(obj, pk)
        inserted.append(obj)
    return inserted


@functools.cache
def _update_sql(model, names: tuple[str, ...]) -> tuple[str, list]:
    pk = model._meta.pk
    fields = [model._meta.get_field(name) for name in names]
    assignments = ", ".join(f"{qn(f.column)} = r.{qn(f.column)}" for f in fields)
    statement = (
        f"UPDATE {qn(model._meta.db_table)} AS t SET {assignments} "
        f"FROM (SELECT * FROM jsonb_to_recordset(%s::jsonb) AS r({record([pk, *fields])}) "
        f"LIMIT %s) AS r WHERE t.{qn(pk.column)} = r.{qn(pk.column)}"
    )
    return statement, [pk, *fields]


def bulk_update(objs: list, names: tuple[str, ...]) -> None:
    """bulk_update of `names` of `objs` (one model) in one statement."""
    model = type(objs[0])
    if not is_postgresql():
        model.objects.bulk_update(objs, list(names))
        return
    statement, fields = _update_sql(model, names)
    rows = [{f.column: getattr(obj, f.attname) for f in fields} for obj in objs]
    with connection.cursor() as cursor:
        cursor.execute(statement, recordset_params(rows))
