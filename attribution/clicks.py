"""Storing clicks: one statement for any number of them, and the redirect's per-process buffer.

The redirect (`GET /t/{code}`) is the busiest path of the product and a click is not money,
so it does not wait for the database: the click gets its `click_id` at once, goes into this
process's buffer, and a background thread inserts the buffered clicks every
`CLICK_FLUSH_SECONDS` (or as soon as `CLICK_FLUSH_ROWS` are waiting) with one statement. At
the insert the link's affiliate must still be approved: a click recorded in the seconds
after a suspension (the redirect's link cache may lag, see selectors) is dropped there.

Durability (docs/attribution.md, "Click durability"): a graceful stop of the process
(gunicorn's SIGTERM, a deploy) flushes the buffer; a process killed with SIGKILL loses the
clicks of its last `CLICK_FLUSH_SECONDS`. While the database is unreachable the buffer keeps
up to `CLICK_BUFFER_LIMIT` clicks and retries; past that it drops the oldest, with a log.
`CLICK_FLUSH_SECONDS = 0` turns the buffer off: every click is inserted in its request.
"""

import atexit
import logging
import os
import threading
import uuid
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache

from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError, connection

from revvvs import sql

from .models import Affiliate, AffiliateStatus, Click, TrackingLink

logger = logging.getLogger(__name__)

UNIQUE_WINDOW = timedelta(hours=24)


@dataclass(frozen=True, slots=True)
class ClickRow:
    """A click as the redirect saw it; its affiliate and brand are the link's at the insert."""

    id: uuid.UUID
    link_id: int
    created_at: datetime
    subs: tuple[str, str, str, str, str]
    ip_hash: str
    user_agent: str
    referrer: str
    country: str
    is_bot: bool


# Written from the row; link, affiliate and brand come from the link at the insert.
_ROW_FIELDS = (
    "id",
    "created_at",
    "sub1",
    "sub2",
    "sub3",
    "sub4",
    "sub5",
    "ip_hash",
    "user_agent",
    "referrer",
    "country",
    "is_bot",
)


@cache
def _insert_sql() -> str:
    """INSERT of a JSON array of clicks (PostgreSQL), built once from the models.

    A click is unique when no click from the same IP hash on the same link is stored from
    the 24 hours before it, nor comes before it in the same batch (`lag` over the batch).
    Clicks whose link is gone or whose affiliate is no longer approved are not inserted."""
    click, link, affiliate = Click._meta, TrackingLink._meta, Affiliate._meta
    qn = sql.qn

    def col(meta, name):
        return qn(meta.get_field(name).column)

    row_fields = [click.get_field(name) for name in _ROW_FIELDS]
    link_field = click.get_field("link")
    recordset = sql.recordset([*row_fields, link_field], "r")
    row_columns = ", ".join(qn(f.column) for f in row_fields)
    link_column, ip_hash, created_at = (
        col(click, "link"),
        col(click, "ip_hash"),
        col(click, "created_at"),
    )
    targets = ", ".join(
        [
            row_columns,
            link_column,
            col(click, "affiliate"),
            col(click, "brand"),
            col(click, "is_unique"),
        ]
    )
    return (
        f"WITH r AS (SELECT *, lag({created_at}) OVER "
        f"(PARTITION BY {link_column}, {ip_hash} ORDER BY n) AS previous_at FROM {recordset}) "
        f"INSERT INTO {qn(click.db_table)} ({targets}) "
        f"SELECT {', '.join(f'r.{qn(f.column)}' for f in row_fields)}, r.{link_column}, "
        f"l.{col(link, 'affiliate')}, l.{col(link, 'brand')}, "
        f"(r.{ip_hash} = '' OR ("
        f"(r.previous_at IS NULL OR r.previous_at <= r.{created_at} - interval '24 hours') "
        f"AND NOT EXISTS (SELECT 1 FROM {qn(click.db_table)} c WHERE c.{link_column} = "
        f"r.{link_column} AND c.{ip_hash} = r.{ip_hash} "
        f"AND c.{created_at} > r.{created_at} - interval '24 hours'))) "
        f"FROM r JOIN {qn(link.db_table)} l ON l.{qn(link.pk.column)} = r.{link_column} "
        f"JOIN {qn(affiliate.db_table)} a ON a.{qn(affiliate.pk.column)} = "
        f"l.{col(link, 'affiliate')} AND a.{col(affiliate, 'status')} = %s "
        # A flush whose answer was lost is retried: the clicks already in are skipped.
        f"ORDER BY r.n ON CONFLICT ({qn(click.pk.column)}) DO NOTHING"
    )


def clicks_insert(*, rows: list[ClickRow]) -> int:
    """Insert `rows` (in time order) with their unique flags; returns how many were stored.

    Rows of a link that no longer exists or whose affiliate is not approved are skipped.
    On PostgreSQL one statement stores the whole list; elsewhere (the SQLite demo) the ORM
    stores them one by one."""
    if not rows:
        return 0
    if not sql.is_postgresql():
        return _clicks_insert_portable(rows)
    payload = sql.recordset_params(
        [
            {
                "id": row.id,
                "link_id": row.link_id,
                "created_at": row.created_at,
                "sub1": row.subs[0],
                "sub2": row.subs[1],
                "sub3": row.subs[2],
                "sub4": row.subs[3],
                "sub5": row.subs[4],
                "ip_hash": row.ip_hash,
                "user_agent": row.user_agent,
                "referrer": row.referrer,
                "country": row.country,
                "is_bot": row.is_bot,
            }
            for row in rows
        ]
    )
    statement = _insert_sql()
    asynchronous = not connection.in_atomic_block
    if asynchronous:
        # Clicks are not money: they need not wait for the WAL flush. One statement string
        # runs as one implicit transaction, so SET LOCAL covers this insert only.
        statement = "SET LOCAL synchronous_commit TO OFF; " + statement
    with connection.cursor() as cursor:
        cursor.execute(statement, [*payload, AffiliateStatus.APPROVED])
        if asynchronous:
            cursor.nextset()  # the INSERT's result, after the SET's
        return cursor.rowcount


def _clicks_insert_portable(rows: list[ClickRow]) -> int:
    links = TrackingLink.objects.filter(
        pk__in={row.link_id for row in rows}, affiliate__status=AffiliateStatus.APPROVED
    ).in_bulk()
    stored = 0
    for row in rows:
        link = links.get(row.link_id)
        if link is None:
            continue
        unique = (
            not row.ip_hash
            or not Click.objects.filter(
                link_id=row.link_id,
                ip_hash=row.ip_hash,
                created_at__gt=row.created_at - UNIQUE_WINDOW,
            ).exists()
        )
        Click.objects.create(
            id=row.id,
            link_id=row.link_id,
            affiliate_id=link.affiliate_id,
            brand_id=link.brand_id,
            created_at=row.created_at,
            sub1=row.subs[0],
            sub2=row.subs[1],
            sub3=row.subs[2],
            sub4=row.subs[3],
            sub5=row.subs[4],
            ip_hash=row.ip_hash,
            user_agent=row.user_agent,
            referrer=row.referrer,
            country=row.country,
            is_bot=row.is_bot,
            is_unique=unique,
        )
        stored += 1
    return stored


class ClickBuffer:
    """This process's clicks waiting for their insert, and the thread that inserts them.

    `add` never touches the database. The thread starts with the first click of each
    process (so a forked worker gets its own) and flushes every `interval` seconds, or as
    soon as `batch` clicks wait. `flush` may also be called directly; flushes never run
    two at a time."""

    def __init__(self, *, interval: float, batch: int, limit: int):
        self.interval = interval
        self.batch = batch
        self.limit = limit
        self._rows: deque[ClickRow] = deque()
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._wake = threading.Event()
        self._pid = None  # the process whose flush thread runs
        self.dropped = 0

    def add(self, row: ClickRow) -> None:
        with self._lock:
            if len(self._rows) >= self.limit:
                self._rows.popleft()
                self.dropped += 1
                if self.dropped % 1000 == 1:
                    logger.error(
                        "click buffer full (%s clicks, database unreachable?): dropped %s "
                        "oldest clicks so far",
                        self.limit,
                        self.dropped,
                    )
            self._rows.append(row)
            waiting = len(self._rows)
            if self._pid != os.getpid():
                self._start()
        if waiting >= self.batch:
            self._wake.set()

    def pending(self) -> int:
        return len(self._rows)

    def flush(self) -> int:
        """Insert every waiting click; returns how many were stored. On a database error the
        clicks go back to the front of the buffer for the next flush, and it re-raises."""
        with self._flush_lock:
            with self._lock:
                rows = list(self._rows)
                self._rows.clear()
            if not rows:
                return 0
            try:
                return clicks_insert(rows=rows)
            except (InterfaceError, OperationalError):
                self._put_back(rows)
                connection.close()  # reconnect at the next flush
                raise
            except DatabaseError:
                # Not the connection: some row the statement refused. Store the others one
                # by one so a single bad click never holds the rest back.
                logger.exception("click batch refused; inserting its %s one by one", len(rows))
                return self._insert_one_by_one(rows)

    def _insert_one_by_one(self, rows) -> int:
        stored = 0
        for position, row in enumerate(rows):
            try:
                stored += clicks_insert(rows=[row])
            except (InterfaceError, OperationalError):
                self._put_back(rows[position:])
                raise
            except DatabaseError:
                logger.exception("click %s refused by the database; dropped", row.id)
        return stored

    def _put_back(self, rows) -> None:
        with self._lock:
            room = self.limit - len(self._rows)
            kept = rows[-room:] if room > 0 else []
            self.dropped += len(rows) - len(kept)
            self._rows.extendleft(reversed(kept))

    def _start(self) -> None:
        self._pid = os.getpid()
        threading.Thread(target=self._run, name="click-buffer", daemon=True).start()

    def _run(self) -> None:
        backoff = self.interval
        while True:
            self._wake.wait(backoff)
            self._wake.clear()
            try:
                self.flush()
                backoff = self.interval
            except Exception:  # noqa: BLE001 - the thread must outlive any failure
                logger.exception("click flush failed; %s clicks wait for the next", self.pending())
                backoff = min(max(backoff * 2, 0.5), 10.0)
            finally:
                connection.close_if_unusable_or_obsolete()

    def close(self) -> None:
        """The last flush, at the process's exit."""
        if self.pending():
            try:
                self.flush()
            except Exception:  # noqa: BLE001
                logger.exception("clicks lost at exit: %s could not be stored", self.pending())


_buffer: ClickBuffer | None = None
_buffer_lock = threading.Lock()


def click_buffer() -> ClickBuffer | None:
    """The process's buffer, or None when `CLICK_FLUSH_SECONDS` is 0 (insert at once)."""
    global _buffer
    if settings.CLICK_FLUSH_SECONDS <= 0:
        return None
    if _buffer is None:
        with _buffer_lock:
            if _buffer is None:
                _buffer = ClickBuffer(
                    interval=settings.CLICK_FLUSH_SECONDS,
                    batch=settings.CLICK_FLUSH_ROWS,
                    limit=settings.CLICK_BUFFER_LIMIT,
                )
                atexit.register(_buffer.close)
    return _buffer


def click_store(row: ClickRow) -> None:
    """The redirect's write: into the buffer, or straight into the database without one."""
    buffer = click_buffer()
    if buffer is None:
        clicks_insert(rows=[row])
    else:
        buffer.add(row)
