"""Group commit for single events: concurrent one-event requests of a process, ingested as
one batch.

A one-event request costs nearly as much database work as a 100-event batch: the same
statements, each a round trip with its parse and plan (docs/performance.md). When several
single events arrive at once (a threaded worker serving many connections), the first
request to arrive becomes the leader and ingests every event waiting at that moment in one
`events_ingest` call per API key; the requests that came while it worked wait, and the
first of them leads the next round. Alone, a request leads a batch of one: no waiting, no
timer.

Every request still gets its own outcome, after the transaction holding its event has
committed, so `accepted` keeps meaning stored with all its effects. A key sent by two
requests of the same round is stored once: the second gets `duplicate`, as if it had come
second (it did). An error of the database (a 503) reaches every request of its round.
"""

import threading
from dataclasses import dataclass, field

from .models import ApiKey


@dataclass(eq=False)
class _Waiting:
    api_key: ApiKey
    raw_event: object
    ready: threading.Event = field(default_factory=threading.Event)
    leads: bool = False
    outcome: object = None
    error: BaseException | None = None

    def result(self):
        if self.error is not None:
            raise self.error
        return self.outcome


class SingleEventCoalescer:
    """Leader/follower group commit of single events within one process."""

    def __init__(self, ingest):
        self._ingest = ingest  # events_ingest(*, api_key, raw_events) -> list[outcome]
        self._lock = threading.Lock()
        self._waiting: list[_Waiting] = []
        self._busy = False
        self.rounds = 0  # ingest calls made, for tests and curiosity

    def ingest(self, *, api_key: ApiKey, raw_event) -> object:
        """The outcome of `raw_event`, ingested alone or with its concurrent neighbours."""
        me = _Waiting(api_key=api_key, raw_event=raw_event)
        with self._lock:
            self._waiting.append(me)
            me.leads = not self._busy
            self._busy = True
        if not me.leads:
            me.ready.wait()
            if not me.leads:  # a leader's round answered it
                return me.result()
        with self._lock:
            round_, self._waiting = self._waiting, []
        try:
            self._run(round_)
        finally:
            with self._lock:
                if self._waiting:
                    successor = self._waiting[0]
                    successor.leads = True
                    successor.ready.set()
                else:
                    self._busy = False
        return me.result()

    def _run(self, round_: list[_Waiting]) -> None:
        by_key: dict[int, list[_Waiting]] = {}
        for item in round_:
            by_key.setdefault(item.api_key.pk, []).append(item)
        for items in by_key.values():
            try:
                outcomes = self._ingest(
                    api_key=items[0].api_key, raw_events=[item.raw_event for item in items]
                )
                self.rounds += 1
            except Exception as exc:  # noqa: BLE001 - each request of the round re-raises it
                for item in items:
                    item.error = exc
            else:
                for item, outcome in zip(items, outcomes, strict=True):
                    item.outcome = outcome
            finally:
                for item in items:
                    if item.outcome is None and item.error is None:  # the leader was stopped
                        item.error = RuntimeError("ingestion interrupted; retry the event")
                    if not item.leads:
                        item.ready.set()
