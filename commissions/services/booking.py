"""Booking: events into ledger entries (CPA, clawback, RevShare), FX, reattribution, manual
adjustments, plan assignments. The rules and decisions are in docs/commissions.md#booking.

`events_book` runs inside the Event API's transaction, so an accepted event and its
commission commit together. It is set-based: an event for an unattributed player, or of a
type that earns nothing, costs no query; a batch that books loads the players' locks, the
plans, the CPA state, the NGR state and the closed periods once, in one round trip on
PostgreSQL, then the deposits and the FX rates when it needs them, and writes the entries in
bulk (a CPA, once per player ever, as the database's constraint decides).
"""

import functools
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from attribution.models import Affiliate, Player, PlayerStatus
from events.models import Event, EventType
from revvvs import sql
from revvvs.money import quantize
from revvvs.tenancy import operator_access_check

from ..models import (
    CommissionPlan,
    LedgerEntry,
    LedgerKind,
    PendingFx,
    PlanAssignment,
    PlayerMonthNgr,
)
from .fx import FxTable, fx_table_load

DEPOSIT_TYPES = frozenset({EventType.FIRST_DEPOSIT, EventType.DEPOSIT})
# A manual adjustment's amount: far below the 14 integer digits of the ledger and the
# statements, so that a month's sums cannot overflow them (a close would fail for ever).
MAX_ADJUSTMENT = Decimal(10) ** 10
MONEY_TYPES = DEPOSIT_TYPES | {EventType.CHARGEBACK}
BOOKING_TYPES = MONEY_TYPES | {EventType.NGR_UPDATE}
EXCLUDED_STATUSES = frozenset({PlayerStatus.SELF_EXCLUDED, PlayerStatus.CLOSED, PlayerStatus.FRAUD})
ZERO = Decimal(0)


# --- Dates and periods --------------------------------------------------------------------


def utc_date(moment: datetime) -> date:
    return moment.astimezone(UTC).date()


def month_start(day: date) -> date:
    return day.replace(day=1)


def next_month(month: date) -> date:
    return date(month.year + (month.month == 12), month.month % 12 + 1, 1)


def _booking_floor(operator_id: int) -> date | None:
    # The periods service owns the rule (months close in order) and the lock that keeps an
    # entry from landing in a month while it is being closed (shared here, for the rest of
    # the transaction; exclusive in the close).
    from .periods import period_booking_floor

    return period_booking_floor(operator_id=operator_id)


def _first_open(floor: date | None, day: date) -> date:
    month = month_start(day)
    return floor if floor is not None and month < floor else month


def period_for(*, operator, day: date) -> date:
    """The month (its first day) an entry dated `day` books into: its own month, or, when
    that month is closed for the operator, the first open month after the closed ones.
    Call it inside the transaction that writes the entry (it takes the period lock)."""
    return _first_open(_booking_floor(operator.pk), day)


class _Periods:
    """The operator's booking floor, read once per batch and only when something books."""

    def __init__(self, operator_id: int):
        self.operator_id = operator_id
        self._loaded = False
        self._floor: date | None = None

    def preload(self, floor: date | None) -> None:
        """The floor as read by the caller (with the period lock, `period_booking_floor_sql`)."""
        self._floor, self._loaded = floor, True

    def for_day(self, day: date) -> date:
        if not self._loaded:
            self._floor, self._loaded = _booking_floor(self.operator_id), True
        return _first_open(self._floor, day)


# --- Plans --------------------------------------------------------------------------------


class _PlanBook:
    """The assignments (with plans) of a set of affiliates, loaded with one query."""

    def __init__(self, affiliate_ids=(), *, rows=None):
        """The assignments of `affiliate_ids`, or those already read as `rows` (of
        `_plan_book_sql` or `_plan_book_of_players_sql`)."""
        self.by_affiliate: dict[int, list[PlanAssignment]] = defaultdict(list)
        if rows is None and not affiliate_ids:
            return
        if rows is None and sql.is_postgresql():
            with connection.cursor() as cursor:
                cursor.execute(_plan_book_sql(), [sorted(set(affiliate_ids))])
                rows = cursor.fetchall()
        if rows is not None:
            width = len(sql.reader(PlanAssignment)[0])
            assignments = []
            for row in rows:
                assignment = sql.instance(PlanAssignment, row)
                assignment.plan = sql.instance(CommissionPlan, row, width)
                assignments.append(assignment)
        else:
            assignments = PlanAssignment.objects.filter(
                affiliate_id__in=set(affiliate_ids)
            ).select_related("plan")
        for assignment in assignments:
            self.by_affiliate[assignment.affiliate_id].append(assignment)

    def plan_for(self, affiliate_id, brand_id, day: date) -> CommissionPlan | None:
        """The plan in force on `day`: a brand-specific assignment beats an all-brands one."""
        fallback = None
        for assignment in self.by_affiliate.get(affiliate_id, ()):
            if assignment.valid_from <= day and (
                assignment.valid_to is None or day <= assignment.valid_to
            ):
                if assignment.brand_id == brand_id:
                    return assignment.plan
                if assignment.brand_id is None:
                    fallback = assignment.plan
        return fallback


def _plan_book_select(where: str) -> str:
    # The model's default ordering (affiliate, -valid_from), which plan_for reads in.
    a, p = PlanAssignment._meta, CommissionPlan._meta
    return (
        f"SELECT {sql.select_list(PlanAssignment, 'a')}, {sql.select_list(CommissionPlan, 'p')} "
        f"FROM {sql.qn(a.db_table)} a JOIN {sql.qn(p.db_table)} p "
        f"ON p.{sql.qn(p.pk.column)} = a.{sql.qn(a.get_field('plan').column)} "
        f"WHERE a.{sql.qn(a.get_field('affiliate').column)} {where} "
        f"ORDER BY a.{sql.qn(a.get_field('affiliate').column)}, "
        f"a.{sql.qn(a.get_field('valid_from').column)} DESC"
    )


@functools.cache
def _plan_book_sql() -> str:
    """The assignments of the affiliates `%s`."""
    return _plan_book_select("= ANY(%s)")


@functools.cache
def _plan_book_of_players_sql() -> str:
    """The assignments of the affiliates of the players `%s`: sent after the statement that
    locks those players, it reads their affiliates as of the lock."""
    meta = Player._meta
    return _plan_book_select(
        f"IN (SELECT pl.{sql.qn(meta.get_field('affiliate').column)} "
        f"FROM {sql.qn(meta.db_table)} pl WHERE pl.{sql.qn(meta.pk.column)} = ANY(%s))"
    )


def revshare_target(plan: CommissionPlan, ngr: Decimal) -> Decimal:
    """What a month-to-date NGR (plan currency) earns at the base rate: the admin fee is
    taken from positive NGR only; negative NGR earns negative RevShare."""
    if ngr > 0:
        ngr = ngr * (Decimal(100) - plan.admin_fee_percent) / Decimal(100)
    return quantize(ngr * plan.revshare_rate)


def plan_countries(plan: CommissionPlan) -> frozenset[str]:
    return frozenset(c.strip().upper() for c in plan.cpa_countries.split(",") if c.strip())


# --- The batch ----------------------------------------------------------------------------


@dataclass
class _Money:
    """A stored deposit, first deposit or chargeback, as CPA qualification needs it."""

    id: uuid.UUID
    event_type: str
    event_time: datetime
    currency: str
    amount: Decimal
    idempotency_key: str
    deposit_key: str = ""  # a chargeback's deposit_idempotency_key


@dataclass
class _Facts:
    """A player as of now, read under its row lock."""

    id: int
    affiliate_id: int | None
    brand_id: uuid.UUID
    status: str
    country: str
    registered_at: datetime | None
    status_event_time: datetime | None  # of the player_status event that set `status`


_FACTS = (
    "id",
    "affiliate_id",
    "brand_id",
    "status",
    "country",
    "registered_at",
    "status_event_time",
)


@functools.cache
def _lock_players_sql() -> str:
    meta = Player._meta
    columns = ", ".join(sql.qn(meta.get_field(name.removesuffix("_id")).column) for name in _FACTS)
    pk = sql.qn(meta.pk.column)
    return (
        f"SELECT {columns} FROM {sql.qn(meta.db_table)} WHERE {pk} = ANY(%s) "
        f"ORDER BY {pk} FOR NO KEY UPDATE"
    )


@functools.cache
def _lock_organic_sql() -> str:
    meta = Player._meta
    pk, affiliate = sql.qn(meta.pk.column), sql.qn(meta.get_field("affiliate").column)
    return (
        f"SELECT {pk}, {affiliate} FROM {sql.qn(meta.db_table)} WHERE {pk} = ANY(%s) "
        f"ORDER BY {pk} FOR NO KEY UPDATE"
    )


@dataclass
class _CpaState:
    has_cpa: bool = False
    qualified_at: datetime | None = None
    reversed: bool = False
    cpa_entry: LedgerEntry | None = None
    # The current affiliate's CPA credit (its cpa entry, or a reattributed one).
    credit_entries: list[LedgerEntry] = field(default_factory=list)


def _money_of(row: dict) -> _Money:
    return _Money(
        id=row["id"],
        event_type=row["event_type"],
        event_time=row["event_time"],
        currency=row["currency"],
        amount=row["amount"],
        idempotency_key=row["idempotency_key"],
        deposit_key=(row["payload"] or {}).get("deposit_idempotency_key") or "",
    )


@dataclass(frozen=True)
class _Thresholds:
    """What `_thresholds_met` found. Amounts without an FX rate were left out of `met`: the
    first deposit and the first chargeback it could not convert say which."""

    met: bool
    unconverted_deposit: _Money | None = None
    unconverted_chargeback: _Money | None = None
    # Not met whatever the missing rates: the converted first deposit, net of its
    # chargebacks, misses its minimum, and no unconverted first deposit could replace it
    # (a later deposit only adds to the total).
    unmet_in_any_case: bool = False


def _thresholds_met(
    plan: CommissionPlan,
    registered_at: datetime,
    known: list[_Money],
    fx: FxTable,
    chargebacks_until: datetime | None = None,
) -> _Thresholds:
    """First deposit ≥ min_first_deposit and deposits within qualification_days of the
    registration ≥ min_total_deposits, both net of chargebacks, in the plan currency.
    Amounts without an FX rate are left out of `met` and reported: whether the answer
    stands without them is the caller's rule (_book_cpa, _book_clawback)."""
    deadline = registered_at + timedelta(days=plan.qualification_days)

    def plan_amount(m: _Money) -> Decimal | None:
        conversion = fx.convert(m.amount, m.currency, plan.currency, utc_date(m.event_time))
        return None if conversion is None else conversion.amount

    first, total, charged_back = None, ZERO, []
    unconverted_deposit = None
    outside_window: set[str] = set()  # keys of deposits after the window: they never counted
    for m in known:
        if m.event_type == EventType.CHARGEBACK:
            if chargebacks_until is None or m.event_time <= chargebacks_until:
                charged_back.append(m)
            continue
        if m.event_time > deadline:
            outside_window.add(m.idempotency_key)
            continue
        amount = plan_amount(m)
        if amount is None:
            unconverted_deposit = unconverted_deposit or m
            continue
        total += amount
        if m.event_type == EventType.FIRST_DEPOSIT and (
            first is None or (m.event_time, m.idempotency_key) < first[0]
        ):
            first = ((m.event_time, m.idempotency_key), amount, m.idempotency_key)
    # A chargeback naming a deposit made after the window takes back money that never
    # counted toward the thresholds; one naming no deposit (or an unknown one) counts.
    charged_back = [m for m in charged_back if m.deposit_key not in outside_window]
    charged = [(m, plan_amount(m)) for m in charged_back]
    unconverted_chargeback = next((m for m, amount in charged if amount is None), None)
    no_first_to_come = (
        unconverted_deposit is None or unconverted_deposit.event_type != EventType.FIRST_DEPOSIT
    )
    if first is None:
        return _Thresholds(False, unconverted_deposit, unconverted_chargeback, no_first_to_come)
    first_net = first[1]
    for m, amount in charged:
        if amount is None:
            continue
        total -= amount
        if m.deposit_key and m.deposit_key == first[2]:
            first_net -= amount
    first_met = first_net > 0 and first_net >= plan.min_first_deposit
    met = first_met and total > 0 and total >= plan.min_total_deposits
    unmet_in_any_case = not first_met and no_first_to_come
    return _Thresholds(met, unconverted_deposit, unconverted_chargeback, unmet_in_any_case)


@functools.cache
def _cpa_state_sql() -> str:
    ledger, plan, event = LedgerEntry._meta, CommissionPlan._meta, Event._meta

    def column(name):
        return f"l.{sql.qn(ledger.get_field(name).column)}"

    return (
        f"SELECT {sql.select_list(LedgerEntry, 'l')}, {sql.select_list(CommissionPlan, 'p')}, "
        f"e.{sql.qn(event.get_field('event_time').column)} "
        f"FROM {sql.qn(ledger.db_table)} l "
        f"LEFT JOIN {sql.qn(plan.db_table)} p ON p.{sql.qn(plan.pk.column)} = {column('plan')} "
        f"LEFT JOIN {sql.qn(event.db_table)} e "
        f"ON e.{sql.qn(event.pk.column)} = {column('source_event')} "
        f"WHERE {column('player')} = ANY(%s) AND ({column('kind')} IN "
        f"('{LedgerKind.CPA.value}', '{LedgerKind.CPA_REVERSAL.value}') OR "
        f"({column('kind')} = '{LedgerKind.REATTRIBUTION.value}' AND "
        f"{column('reattributed_kind')} = '{LedgerKind.CPA.value}')) "
        f"ORDER BY l.{sql.qn(ledger.pk.column)}"
    )


@functools.cache
def _money_sql() -> str:
    meta = Event._meta
    columns = ", ".join(
        sql.qn(meta.get_field(name).column)
        for name in (
            "id",
            "player",
            "event_type",
            "event_time",
            "currency",
            "amount",
            "idempotency_key",
        )
    )
    payload = sql.qn(meta.get_field("payload").column)
    return (
        f"SELECT {columns}, {payload} ->> 'deposit_idempotency_key' "
        f"FROM {sql.qn(meta.db_table)} WHERE {sql.qn(meta.get_field('player').column)} = ANY(%s) "
        f"AND {sql.qn(meta.get_field('event_type').column)} = ANY(%s) "
        f"ORDER BY {sql.qn(meta.get_field('event_time').column)}, "
        f"{sql.qn(meta.get_field('idempotency_key').column)}"
    )


@functools.cache
def _ngr_lock_sql() -> str:
    meta = PlayerMonthNgr._meta
    return (
        f"SELECT {sql.select_list(PlayerMonthNgr, 'n')} FROM {sql.qn(meta.db_table)} n "
        f"WHERE n.{sql.qn(meta.get_field('player').column)} = ANY(%s) "
        f"AND n.{sql.qn(meta.get_field('month').column)} = ANY(%s) FOR NO KEY UPDATE"
    )


class _Batch:
    """One booking run over events of one operator, in event_time order."""

    def __init__(self, operator_id: int, events: list[Event], *, reprocess: bool = False):
        self.operator_id = operator_id
        self.events = events
        self.reprocess = reprocess
        self.periods = _Periods(operator_id)
        self.entries: list[LedgerEntry] = []
        self.once_entries: list[LedgerEntry] = []  # cpa / cpa_reversal: the constraint decides
        # event id -> (event, the conversion it waits for: from_currency, to_currency, day)
        self.pending: dict[uuid.UUID, tuple[Event, str, str, date]] = {}
        self.booked_event_ids: set[uuid.UUID] = set()
        # Rows read ahead by _prefetch (PostgreSQL), for _load_cpa_state and _load_ngr.
        self._cpa_rows: list | None = None
        self._ngr_rows: list | None = None
        # player id -> its player_status events [(event_time, status)], read when needed.
        self._status_history: dict[int, list[tuple[datetime, str]]] = {}

    # Loading ---------------------------------------------------------------------------

    def _lock_players(self, player_ids) -> dict[int, _Facts]:
        # Players are locked in id order, so concurrent requests for the same player queue up
        # and each sees the other's deposits: CPA qualification and NGR state stay exact.
        # (PostgreSQL: _lock_players_sql, in _prefetch.)
        rows = (
            Player.objects.select_for_update(no_key=True)
            .filter(pk__in=player_ids)
            .order_by("pk")
            .values(*_FACTS)
        )
        return {row["id"]: _Facts(**row) for row in rows}

    def _prefetch(self, candidates: list[Event], player_ids: list[int]) -> None:
        """PostgreSQL: the players' locks, their plans, their CPA state, the NGR rows of the
        months updated and the booking floor, in one round trip (statements in this order,
        each with its own snapshot, so each sees what the locks before it waited for).

        Read for every candidate, while the other paths read each only for the events
        still in play after the previous read: a few rows more, four round trips fewer
        (docs/performance.md, "Booking in one round trip")."""
        from .periods import period_booking_floor_of, period_booking_floor_sql

        statements = [_lock_players_sql(), _plan_book_of_players_sql()]
        params: list = [player_ids, player_ids]
        money_players = sorted({e.player_id for e in candidates if e.event_type in MONEY_TYPES})
        if money_players:
            statements.append(_cpa_state_sql())
            params.append(money_players)
        ngr_events = [e for e in candidates if e.event_type == EventType.NGR_UPDATE]
        if ngr_events:
            statements.append(_ngr_lock_sql())
            params += [
                sorted({e.player_id for e in ngr_events}),
                sorted({month_start(utc_date(e.event_time)) for e in ngr_events}),
            ]
        floor_sql, floor_params = period_booking_floor_sql(operator_id=self.operator_id)
        statements.append(floor_sql)
        params += floor_params
        with connection.cursor() as cursor:
            cursor.execute("; ".join(statements), params)
            self.facts = {row[0]: _Facts(*row) for row in cursor.fetchall()}
            cursor.nextset()
            self.plans = _PlanBook(rows=cursor.fetchall())
            if money_players:
                cursor.nextset()
                self._cpa_rows = cursor.fetchall()
            if ngr_events:
                cursor.nextset()
                self._ngr_rows = cursor.fetchall()
            cursor.nextset()  # the lock's row
            cursor.nextset()
            self.periods.preload(period_booking_floor_of(cursor.fetchone()[0]))

    def _still_organic_left_out(self, candidates: list[Event]) -> list[Event]:
        """The candidates without the events of players read as registered and organic that
        are still organic under their lock: one statement that only locks and reads the
        affiliate, where the booking state would be five (the locks wait for a reassignment
        in flight, and make it wait for this request)."""
        organic = {
            e.player_id
            for e in candidates
            if e.player.affiliate_id is None and e.player.registered_at is not None
        }
        if not organic:
            return candidates
        if sql.is_postgresql():
            with connection.cursor() as cursor:
                cursor.execute(_lock_organic_sql(), [sorted(organic)])
                locked = cursor.fetchall()
        else:
            locked = (
                Player.objects.select_for_update(no_key=True)
                .filter(pk__in=sorted(organic))
                .order_by("pk")
                .values_list("pk", "affiliate_id")
            )
        still_organic = {player_id for player_id, affiliate_id in locked if affiliate_id is None}
        return [e for e in candidates if e.player_id not in still_organic]

    def run(self) -> set[uuid.UUID]:
        """Book; returns the ids of events whose effect waits for an FX rate."""
        # Every player is re-read under its lock, organic ones too: a player read as
        # unregistered may be registering in a concurrent request, and one read as organic
        # may be being reassigned; neither request can see this uncommitted event, so this
        # one must wait for it and book under the affiliate it left (or nothing).
        candidates = [e for e in self.events if e.event_type in BOOKING_TYPES]
        if not candidates:
            return set()
        candidates = self._still_organic_left_out(candidates)
        if not candidates:
            return set()
        player_ids = sorted({e.player_id for e in candidates})
        if sql.is_postgresql():
            self._prefetch(candidates, player_ids)
        else:
            self.facts = self._lock_players(player_ids)
            self.plans = _PlanBook({f.affiliate_id for f in self.facts.values() if f.affiliate_id})
        work: list[tuple[Event, CommissionPlan | None]] = []
        for e in candidates:
            facts = self.facts[e.player_id]
            if facts.affiliate_id is None:
                continue
            plan = self.plans.plan_for(facts.affiliate_id, e.brand_id, utc_date(e.event_time))
            if e.event_type == EventType.NGR_UPDATE:
                if plan is not None and plan.revshare_rate is not None:
                    work.append((e, plan))
            elif e.event_type in DEPOSIT_TYPES:
                if plan is not None and plan.cpa_amount is not None:
                    work.append((e, plan))
            else:  # a chargeback claws back whatever CPA the player earned, under its plan
                work.append((e, plan))
        if not work:
            return set()
        cpa_players = {e.player_id for e, _ in work if e.event_type in MONEY_TYPES}
        self._load_cpa_state(cpa_players)
        depositing = {e.player_id for e, _ in work if e.event_type in DEPOSIT_TYPES}

        def may_book(e: Event) -> bool:
            if e.event_type == EventType.NGR_UPDATE:
                return True
            state = self.cpa[e.player_id]
            if e.event_type in DEPOSIT_TYPES:
                return not state.has_cpa
            # A chargeback matters when there is a CPA to claw back, or may be one booked
            # by a deposit earlier in this batch.
            if state.reversed:
                return False
            return bool(state.credit_entries) or (not state.has_cpa and e.player_id in depositing)

        work = [(e, plan) for e, plan in work if may_book(e)]
        if not work:
            return set()
        self._load_money({e.player_id for e, _ in work if e.event_type in MONEY_TYPES})
        self._load_fx(work)
        self._load_ngr([e for e, _ in work if e.event_type == EventType.NGR_UPDATE])

        # Qualification sees the deposits stored before this run, and this run's events up
        # to the one being booked: "the event that makes the player qualify".
        plans = {e.id: plan for e, plan in work}
        self.unprocessed = {e.id for e in candidates}
        for e in candidates:
            self.unprocessed.discard(e.id)
            if e.id not in plans:
                continue
            plan = plans[e.id]
            if e.event_type == EventType.NGR_UPDATE:
                self._book_revshare(e, plan)
            elif e.event_type in DEPOSIT_TYPES:
                self._book_cpa(e, plan)
            else:
                self._book_clawback(e)
        self._write()
        return set(self.pending)

    def _load_cpa_state(self, player_ids) -> None:
        self.cpa: dict[int, _CpaState] = defaultdict(_CpaState)
        if not player_ids:
            return
        # Each entry with its plan and its source event's time (None: no source event).
        if sql.is_postgresql():
            if self._cpa_rows is not None:
                player_at = sql.reader(LedgerEntry)[0].index(
                    LedgerEntry._meta.get_field("player").column
                )
                fetched = [row for row in self._cpa_rows if row[player_at] in player_ids]
            else:
                with connection.cursor() as cursor:
                    cursor.execute(_cpa_state_sql(), [list(player_ids)])
                    fetched = cursor.fetchall()
            width = len(sql.reader(LedgerEntry)[0])
            pairs = []
            for row in fetched:
                entry = sql.instance(LedgerEntry, row)
                entry.plan = sql.instance(CommissionPlan, row, width)
                pairs.append((entry, row[-1]))
        else:
            pairs = [
                (entry, entry.source_event.event_time if entry.source_event else None)
                for entry in LedgerEntry.objects.filter(player_id__in=player_ids)
                .filter(
                    Q(kind__in=[LedgerKind.CPA, LedgerKind.CPA_REVERSAL])
                    | Q(kind=LedgerKind.REATTRIBUTION, reattributed_kind=LedgerKind.CPA)
                )
                .select_related("plan", "source_event")
                .order_by("id")
            ]
        rows = [entry for entry, _ in pairs]
        for entry, source_time in pairs:
            state = self.cpa[entry.player_id]
            if entry.kind == LedgerKind.CPA:
                state.has_cpa = True
                state.cpa_entry = entry
                state.qualified_at = (
                    source_time
                    if source_time is not None
                    else datetime.combine(entry.activity_date, datetime.min.time(), UTC)
                )
            elif entry.kind == LedgerKind.CPA_REVERSAL:
                state.reversed = True
        for entry in rows:
            state = self.cpa[entry.player_id]
            facts = self.facts.get(entry.player_id)
            if (
                entry.kind != LedgerKind.CPA_REVERSAL
                and facts is not None
                and entry.affiliate_id == facts.affiliate_id
            ):
                state.credit_entries.append(entry)

    def _load_money(self, player_ids) -> None:
        self.money: dict[int, list[_Money]] = defaultdict(list)
        if not player_ids:
            return
        if sql.is_postgresql():
            # The deposit key alone, not the whole payload: one JSON parse less per row.
            with connection.cursor() as cursor:
                cursor.execute(_money_sql(), [list(player_ids), sorted(MONEY_TYPES)])
                for row in cursor.fetchall():
                    self.money[row[1]].append(_Money(row[0], *row[2:7], deposit_key=row[7] or ""))
            return
        rows = (
            Event.objects.filter(player_id__in=player_ids, event_type__in=MONEY_TYPES)
            .order_by("event_time", "idempotency_key")
            .values(
                "id",
                "player_id",
                "event_type",
                "event_time",
                "currency",
                "amount",
                "idempotency_key",
                "payload",
            )
        )
        for row in rows:
            self.money[row["player_id"]].append(_money_of(row))

    def _load_fx(self, work) -> None:
        needs = []
        for e, plan in work:
            if plan is not None:
                needs.append((e.currency, plan.currency, utc_date(e.event_time)))
            for m in self.money.get(e.player_id, ()) if e.event_type in MONEY_TYPES else ():
                for currency in self._cpa_currencies(e, plan):
                    needs.append((m.currency, currency, utc_date(m.event_time)))
        self.fx = fx_table_load(needs=needs)

    def _cpa_currencies(self, e: Event, plan: CommissionPlan | None) -> set[str]:
        currencies = {plan.currency} if plan is not None else set()
        state = self.cpa.get(e.player_id)
        if state is not None:
            currencies.update(entry.currency for entry in state.credit_entries)
        return currencies

    def _load_ngr(self, ngr_events: list[Event]) -> None:
        self.ngr: dict[tuple[int, date], PlayerMonthNgr] = {}
        self.ngr_dirty: dict[tuple[int, date], PlayerMonthNgr] = {}
        if not ngr_events:
            return
        player_ids = {e.player_id for e in ngr_events}
        months = {month_start(utc_date(e.event_time)) for e in ngr_events}
        if sql.is_postgresql():
            fetched = self._ngr_rows
            if fetched is None:
                with connection.cursor() as cursor:
                    cursor.execute(_ngr_lock_sql(), [list(player_ids), list(months)])
                    fetched = cursor.fetchall()
            rows = [sql.instance(PlayerMonthNgr, row) for row in fetched]
            # Prefetched rows may include months and players no update of this run books.
            rows = [r for r in rows if r.player_id in player_ids and r.month in months]
        else:
            rows = PlayerMonthNgr.objects.select_for_update(no_key=True).filter(
                player_id__in=player_ids, month__in=months
            )
        self.ngr = {(row.player_id, row.month): row for row in rows}

    def _known(self, player_id: int) -> list[_Money]:
        return [m for m in self.money.get(player_id, ()) if m.id not in self.unprocessed]

    # Rules -----------------------------------------------------------------------------

    def _entry(self, e: Event, *, kind: str, amount: Decimal, currency: str, plan, **extra):
        facts = self.facts[e.player_id]
        activity = utc_date(e.event_time)
        return LedgerEntry(
            operator_id=self.operator_id,
            affiliate_id=facts.affiliate_id,
            kind=kind,
            amount=amount,
            currency=currency,
            period=self.periods.for_day(activity),
            activity_date=activity,
            player_id=e.player_id,
            brand_id=e.brand_id,
            source_event_id=e.id,
            plan=plan,
            **extra,
        )

    def _status_at(self, e: Event) -> str:
        """The player's status when `e` happened: that of its latest `player_status` event
        up to `e`'s time. The stored status, unless a later-dated change set it (then the
        player's status events are read, once per player and batch), so that the answer
        depends neither on when the booking runs (a pending FX rate) nor on batching."""
        facts = self.facts[e.player_id]
        if facts.status_event_time is None or facts.status_event_time <= e.event_time:
            return facts.status
        history = self._status_history.get(e.player_id)
        if history is None:
            history = self._status_history[e.player_id] = _status_history(e.player_id)
        return _status_as_of(history, e.event_time)

    def _wait_for_fx(self, e: Event, to_currency: str, blocker: _Money | None = None) -> None:
        """`e`'s effect waits for a rate: of its own amount, or of `blocker`'s, another
        event's amount its decision needs."""
        source = blocker or e
        self.pending[e.id] = (e, source.currency, to_currency, utc_date(source.event_time))

    def _book_cpa(self, e: Event, plan: CommissionPlan) -> None:
        state, facts = self.cpa[e.player_id], self.facts[e.player_id]
        if state.has_cpa or facts.registered_at is None:
            return
        if self._status_at(e) in EXCLUDED_STATUSES:
            return  # as of the qualifying event: a later change neither gives nor takes it
        countries = plan_countries(plan)
        if countries and facts.country.upper() not in countries:
            return
        if e.event_time > facts.registered_at + timedelta(days=plan.qualification_days):
            return  # only an event inside the qualification window qualifies the player
        if self.fx.convert(e.amount, e.currency, plan.currency, utc_date(e.event_time)) is None:
            self._wait_for_fx(e, plan.currency)
            return
        # A chargeback dated after the clawback window could never claw this CPA back, so it
        # cannot stop it either (whether it arrived before the deposits or after them).
        check = _thresholds_met(
            plan,
            facts.registered_at,
            self._known(e.player_id),
            self.fx,
            chargebacks_until=e.event_time + timedelta(days=plan.clawback_days),
        )
        if check.unconverted_chargeback is not None:
            # A chargeback that cannot be converted may undo the qualification, and no one
            # else decides for it (without a CPA it books nothing): wait for its rate. An
            # unconverted deposit only adds, and waits as pending FX itself.
            self._wait_for_fx(e, plan.currency, check.unconverted_chargeback)
            return
        if not check.met:
            return
        entry = self._entry(
            e,
            kind=LedgerKind.CPA,
            amount=plan.cpa_amount,
            currency=plan.currency,
            plan=plan,
            memo=f"CPA: player {e.player.external_ref} qualified",
        )
        self.once_entries.append(entry)
        state.has_cpa, state.qualified_at, state.cpa_entry = True, e.event_time, entry
        state.credit_entries = [entry]

    def _book_clawback(self, e: Event) -> None:
        state, facts = self.cpa[e.player_id], self.facts[e.player_id]
        if not state.has_cpa or state.reversed or not state.credit_entries:
            return
        credit_entry = state.credit_entries[-1]
        # Judged by the terms the CPA was earned under (its own plan), also when it was
        # moved to an affiliate whose plan asks for more.
        plan = state.cpa_entry.plan if state.cpa_entry is not None else credit_entry.plan
        credit = sum(
            (x.amount for x in state.credit_entries if x.currency == credit_entry.currency), ZERO
        )
        if plan is None or credit <= 0 or facts.registered_at is None:
            return
        window_end = state.qualified_at + timedelta(days=plan.clawback_days)
        if e.event_time > window_end:
            return  # outside the clawback window: the CPA stands
        if self.fx.convert(e.amount, e.currency, plan.currency, utc_date(e.event_time)) is None:
            self._wait_for_fx(e, plan.currency)
            return
        known = self._known(e.player_id)
        check = _thresholds_met(
            plan, facts.registered_at, known, self.fx, chargebacks_until=window_end
        )
        if check.unconverted_deposit is not None and not check.unmet_in_any_case:
            # A deposit that cannot be converted may keep the thresholds met; it booked
            # nothing (the player had a CPA), so it waits for no rate: this chargeback does.
            # (An unconverted chargeback is pending itself and decides when it is converted.)
            self._wait_for_fx(e, plan.currency, check.unconverted_deposit)
            return
        if check.met:
            return
        self.once_entries.append(
            self._entry(
                e,
                kind=LedgerKind.CPA_REVERSAL,
                amount=-credit,
                currency=credit_entry.currency,
                plan=plan,
                reverses=credit_entry,
                memo=f"CPA clawback: chargeback {e.idempotency_key} brought net deposits "
                "below the qualification thresholds",
            )
        )
        state.reversed = True

    def _book_revshare(self, e: Event, plan: CommissionPlan) -> None:
        month = month_start(utc_date(e.event_time))
        key = (e.player_id, month)
        state = self.ngr.get(key)
        if state is not None and (e.event_time, e.idempotency_key) < (
            state.latest_event_time,
            state.latest_idempotency_key,
        ):
            return  # an older update: the latest total already stands
        conversion = self.fx.convert(e.amount, e.currency, plan.currency, utc_date(e.event_time))
        if conversion is None:
            self._wait_for_fx(e, plan.currency)
            return
        target = revshare_target(plan, conversion.amount)
        booked = ZERO
        booked_ngr = ZERO  # the NGR (plan currency) the booked RevShare is for
        if state is not None and state.revshare_booked:
            if state.revshare_currency == plan.currency:
                booked = state.revshare_booked
                booked_ngr = state.ngr_total_plan or ZERO
            else:  # the plan's currency changed: unwind what was booked in the old one
                self.entries.append(
                    self._entry(
                        e,
                        kind=LedgerKind.REVSHARE,
                        amount=-state.revshare_booked,
                        currency=state.revshare_currency,
                        plan=plan,
                        ngr_amount=-(state.ngr_total_plan or ZERO),
                        memo="RevShare restated in the plan's new currency",
                    )
                )
        delta = target - booked
        if delta:
            self.entries.append(
                self._entry(
                    e,
                    kind=LedgerKind.REVSHARE,
                    amount=delta,
                    currency=plan.currency,
                    plan=plan,
                    ngr_amount=conversion.amount - booked_ngr,
                    original_amount=conversion.original_amount,
                    original_currency=conversion.original_currency,
                    fx_rate=conversion.fx_rate,
                    memo=f"RevShare on NGR month-to-date {e.amount} {e.currency} ({month:%Y-%m})",
                )
            )
        if state is None:
            state = PlayerMonthNgr(player_id=e.player_id, month=month)
            self.ngr[key] = state
        state.latest_event_id = e.id
        state.latest_event_time = e.event_time
        state.latest_idempotency_key = e.idempotency_key
        state.ngr_total = e.amount
        state.currency = e.currency
        state.ngr_total_plan = conversion.amount
        state.revshare_booked = target
        state.revshare_currency = plan.currency
        self.ngr_dirty[key] = state

    # Writing ---------------------------------------------------------------------------

    def _write_once_entries(self) -> None:
        """CPAs and clawbacks: the database's once-per-player constraints decide.

        The players are locked, so a conflict means a writer that did not lock them. CPAs go
        in first (a clawback in the same batch refers to its CPA). On PostgreSQL each group
        is one `INSERT … ON CONFLICT DO NOTHING`; elsewhere one savepoint around both bulk
        inserts and, on a conflict, one savepoint per entry."""
        if not self.once_entries:
            return
        cpas = [x for x in self.once_entries if x.kind == LedgerKind.CPA]
        reversals = [x for x in self.once_entries if x.kind != LedgerKind.CPA]
        if sql.is_postgresql():
            # ON CONFLICT DO NOTHING instead of savepoints: two round trips fewer per CPA.
            # An entry per player in each group (has_cpa and reversed are set as they book).
            if cpas:
                sql.bulk_insert_unless_conflict(cpas, unique_by="player")
            # A clawback of a CPA of this batch that another writer beat is not ours.
            reversals = [x for x in reversals if x.reverses is None or x.reverses.pk is not None]
            if reversals:
                sql.bulk_insert_unless_conflict(reversals, unique_by="player")
            return
        try:
            with transaction.atomic():
                for group in (cpas, reversals):
                    if group:
                        sql.bulk_insert(group)
            return
        except IntegrityError:
            for entry in self.once_entries:
                entry.pk, entry._state.adding = None, True
        lost_cpa = set()
        for entry in self.once_entries:
            if entry.kind == LedgerKind.CPA_REVERSAL and entry.player_id in lost_cpa:
                continue  # its CPA was not ours to book
            try:
                with transaction.atomic():
                    entry.save(force_insert=True)
            except IntegrityError:
                # Another request booked this player's CPA (or its clawback) first: the
                # database constraint decides, and this one books nothing.
                lost_cpa.add(entry.player_id)

    def _write(self) -> None:
        self._write_once_entries()
        if self.entries:
            sql.bulk_insert(self.entries)
        new = [s for s in self.ngr_dirty.values() if s.pk is None]
        old = [s for s in self.ngr_dirty.values() if s.pk is not None]
        if new:
            sql.bulk_insert(new)
        if old:
            sql.bulk_update(
                old,
                (
                    "latest_event",
                    "latest_event_time",
                    "latest_idempotency_key",
                    "ngr_total",
                    "currency",
                    "ngr_total_plan",
                    "revshare_booked",
                    "revshare_currency",
                ),
            )
        if self.pending:
            # In a reprocess run too: an event still waiting may now wait for another rate
            # (its deposit's came, its chargeback's did not), and its row must say which.
            PendingFx.objects.bulk_create(
                [
                    PendingFx(
                        event_id=e.id,
                        operator_id=self.operator_id,
                        from_currency=from_currency,
                        to_currency=to_currency,
                        rate_date=rate_date,
                    )
                    for e, from_currency, to_currency, rate_date in self.pending.values()
                ],
                # An event waiting again (its deposits replayed after a reassignment) reopens
                # its row, resolved meanwhile (nothing to book while the player was organic).
                update_conflicts=True,
                unique_fields=["event"],
                update_fields=["from_currency", "to_currency", "rate_date", "resolved_at"],
            )


@functools.cache
def _earlier_events_sql() -> str:
    meta = Event._meta

    def column(name):
        return f"e.{sql.qn(meta.get_field(name).column)}"

    return (
        f"SELECT {sql.select_list(Event, 'e')} FROM {sql.qn(meta.db_table)} e "
        f"WHERE {column('player')} = ANY(%s) AND {column('event_type')} = ANY(%s) "
        f"ORDER BY {column('event_time')}, {column('idempotency_key')}"
    )


def events_book(*, events: list[Event], newly_registered: list[Player]) -> None:
    """Book the commission effects of newly stored events, in the caller's transaction.

    Args:
        events: the request's new events in event_time order, each with `.player` loaded
            (affiliate, registration, country and status as of attribution).
        newly_registered: players this request registered; their events stored before the
            registration now count too, as if they had arrived in order.
    """
    if not events:
        return
    to_book = list(events)
    # A player created in this transaction has no events but this request's: its earlier
    # events are only looked for when it existed before (PostgreSQL marks the new ones).
    attributed = [
        p
        for p in newly_registered
        if p.affiliate_id is not None and not getattr(p, "created_in_this_transaction", False)
    ]
    if attributed:
        players = {p.pk: p for p in attributed}
        if sql.is_postgresql():
            # This request's own events are left out here rather than in the SQL, where each
            # of their ids would be quoted in Python.
            this_request = {e.id for e in events}
            id_at = sql.reader(Event)[0].index(Event._meta.pk.column)
            with connection.cursor() as cursor:
                cursor.execute(_earlier_events_sql(), [list(players), sorted(BOOKING_TYPES)])
                # This request's rows are skipped before they are built: building them (their
                # payloads decoded) was 14 % of events_book under cProfile, bench mix.
                earlier = [
                    sql.instance(Event, row)
                    for row in cursor.fetchall()
                    if row[id_at] not in this_request
                ]
        else:
            earlier = list(
                Event.objects.filter(player_id__in=players, event_type__in=BOOKING_TYPES)
                .exclude(id__in=[e.id for e in events])
                .order_by("event_time", "idempotency_key")
            )
        for e in earlier:
            e.player = players[e.player_id]
        if earlier:
            to_book = sorted(earlier + to_book, key=lambda e: (e.event_time, e.idempotency_key))
    _Batch(events[0].operator_id, to_book).run()
    _late_status_reversals(events)


def _status_history(player_id: int) -> list[tuple[datetime, str]]:
    """The player's `player_status` events as (event_time, status), in time order."""
    rows = (
        Event.objects.filter(player_id=player_id, event_type=EventType.PLAYER_STATUS)
        .order_by("event_time", "received_at", "idempotency_key")
        .values_list("event_time", "payload")
    )
    return [(event_time, payload["status"]) for event_time, payload in rows]


def _status_as_of(history: list[tuple[datetime, str]], when: datetime) -> str:
    status = PlayerStatus.ACTIVE
    for event_time, value in history:
        if event_time > when:
            break
        status = value
    return status


def _late_status_reversals(events: list[Event]) -> None:
    """A self-exclusion, closure or fraud status dated at or before a player's qualifying
    event, arriving after its CPA was booked: as of the qualifying event the player was
    excluded, so the CPA is reversed (once, like a clawback; SPEC §5: never a CPA for
    them). The same stream in time order would have booked no CPA."""
    late: dict[int, Event] = {}
    for e in events:
        if (
            e.event_type == EventType.PLAYER_STATUS
            and e.player_id is not None
            and (e.payload or {}).get("status") in EXCLUDED_STATUSES
            and (e.player_id not in late or e.event_time < late[e.player_id].event_time)
        ):
            late[e.player_id] = e
    if not late:
        return
    cpas = {
        x.player_id: x
        for x in LedgerEntry.objects.filter(player_id__in=late, kind=LedgerKind.CPA)
        .exclude(
            Exists(
                LedgerEntry.objects.filter(
                    player_id=OuterRef("player_id"), kind=LedgerKind.CPA_REVERSAL
                )
            )
        )
        .select_related("source_event")
        if x.source_event is not None and late[x.player_id].event_time <= x.source_event.event_time
    }
    entries = []
    periods: dict[int, _Periods] = {}
    for player_id, cpa in cpas.items():
        e = late[player_id]
        status = _status_as_of(_status_history(player_id), cpa.source_event.event_time)
        if status not in EXCLUDED_STATUSES:
            continue  # the player was active again by the time it qualified
        affiliate_id = e.player.affiliate_id
        credits = list(
            LedgerEntry.objects.filter(player_id=player_id, affiliate_id=affiliate_id)
            .filter(
                Q(kind=LedgerKind.CPA)
                | Q(kind=LedgerKind.REATTRIBUTION, reattributed_kind=LedgerKind.CPA)
            )
            .order_by("id")
        )
        if affiliate_id is None or not credits:
            continue
        last = credits[-1]
        credit = sum((x.amount for x in credits if x.currency == last.currency), ZERO)
        if credit <= 0:
            continue
        activity = utc_date(e.event_time)
        entries.append(
            LedgerEntry(
                operator_id=e.operator_id,
                affiliate_id=affiliate_id,
                kind=LedgerKind.CPA_REVERSAL,
                amount=-credit,
                currency=last.currency,
                period=periods.setdefault(e.operator_id, _Periods(e.operator_id)).for_day(activity),
                activity_date=activity,
                player_id=player_id,
                brand_id=e.brand_id,
                source_event_id=e.id,
                plan_id=cpa.plan_id,
                reverses=last,
                memo=f"CPA reversed: player {e.player.external_ref} was {status} when it "
                f"qualified ({e.idempotency_key} arrived after the CPA)",
            )
        )
    if entries:
        # The once-per-player constraint on reversals has the last word.
        LedgerEntry.objects.bulk_create(entries, ignore_conflicts=True)


# --- Pending FX ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ReprocessResult:
    applied: int
    still_pending: int


REPROCESS_CHUNK = 500


def pending_fx_reprocess(*, operator=None, pending_ids=None) -> ReprocessResult:
    """Apply the commission effect of pending-FX events whose rate now exists, exactly once:
    each row is locked, booked and marked resolved in one transaction (rows another run
    holds are skipped). Events still without a rate stay pending."""
    applied = still = 0
    last_id = 0
    while True:
        with transaction.atomic():
            waiting_rows = PendingFx.objects.filter(resolved_at__isnull=True, pk__gt=last_id)
            if operator is not None:
                waiting_rows = waiting_rows.filter(operator=operator)
            if pending_ids is not None:
                waiting_rows = waiting_rows.filter(pk__in=pending_ids)
            chunk = list(
                waiting_rows.order_by("pk").values_list("pk", "event__player_id")[:REPROCESS_CHUNK]
            )
            if not chunk:
                break
            last_id = chunk[-1][0]
            # The players first, in id order, then their rows: the order in which a booking
            # and a reassignment take them (player, then its pending-FX row), so that a
            # reprocess run and a reassignment of the same player never deadlock.
            player_ids = sorted({player_id for _, player_id in chunk if player_id is not None})
            list(
                Player.objects.select_for_update(no_key=True)
                .filter(pk__in=player_ids)
                .order_by("pk")
                .values_list("pk", flat=True)
            )
            rows = list(
                PendingFx.objects.select_for_update(skip_locked=True, of=("self",))
                .filter(pk__in=[pk for pk, _ in chunk], resolved_at__isnull=True)
                .select_related("event__player")
                .order_by("pk")
            )
            if not rows:
                continue
            by_operator = defaultdict(list)
            for row in rows:
                by_operator[row.operator_id].append(row.event)
            waiting: set[uuid.UUID] = set()
            for operator_id, events in by_operator.items():
                events += _deposits_arrived_after(events)
                # As if each rate had been there: in the order the events were booked (by
                # request, then by time within a request), each deposit seeing only what
                # was booked before it (the later ones are in the run).
                events.sort(key=_booking_order)
                waiting |= _Batch(operator_id, events, reprocess=True).run()
            done = [row.pk for row in rows if row.event_id not in waiting]
            PendingFx.objects.filter(pk__in=done).update(resolved_at=timezone.now())
            applied += len(done)
            still += len(rows) - len(done)
    return ReprocessResult(applied=applied, still_pending=still)


def _booking_order(e: Event) -> tuple:
    """The order in which events were first booked: requests in the order they arrived, and
    within a request (one `received_at`) by event time, then key (events_ingest)."""
    return (e.received_at, e.event_time, e.idempotency_key)


def _deposits_arrived_after(events: list[Event]) -> list[Event]:
    """The deposits that arrived after the earliest pending deposit of each of these players
    and are not among `events`. A deposit that waited for its rate may be what made a later
    deposit qualify the player (that deposit then booked nothing): replayed after it, the
    CPA is booked by the event that qualifies, under its plan and on its date, as it would
    have been with the rate on time. Deposits book nothing but the CPA, at most once."""
    earliest: dict[int, tuple] = {}
    for e in events:
        if e.event_type in DEPOSIT_TYPES and e.player_id is not None:
            if e.player_id not in earliest or _booking_order(e) < earliest[e.player_id]:
                earliest[e.player_id] = _booking_order(e)
    if not earliest:
        return []
    condition = Q()
    for player_id, order in earliest.items():
        # The same request too (the same received_at): its later events came after.
        condition |= Q(player_id=player_id, received_at__gte=order[0])
    ids = {e.id for e in events}
    later = (
        Event.objects.filter(condition, event_type__in=DEPOSIT_TYPES)
        .exclude(
            Exists(LedgerEntry.objects.filter(player_id=OuterRef("player_id"), kind=LedgerKind.CPA))
        )
        .select_related("player")
    )
    return [e for e in later if e.id not in ids and _booking_order(e) > earliest[e.player_id]]


# --- Reattribution ------------------------------------------------------------------------


def _group_of(entry_kind: str, reattributed_kind: str) -> str | None:
    if entry_kind in (LedgerKind.CPA, LedgerKind.CPA_REVERSAL):
        return LedgerKind.CPA
    if entry_kind == LedgerKind.REVSHARE:
        return LedgerKind.REVSHARE
    if entry_kind == LedgerKind.REATTRIBUTION:
        return reattributed_kind or None
    return None  # manual adjustments stay with the affiliate they were made for


def ledger_player_reassigned(*, player: Player, from_affiliate, to_affiliate, author) -> None:
    """Move a player's commission from one affiliate to another, in the open period.

    Called by attribution's reassignment service, in its transaction, after the player
    moved. The old affiliate gets one negative `reattribution` entry per kind (CPA, RevShare)
    and currency, reversing what it earned from the player; the new affiliate gets the
    re-computation under its own plans as positive `reattribution` entries: the CPA, when
    the player qualified and was not clawed back (the `cpa` row stays the single CPA of the
    player, its qualification is not re-run), and for each month with NGR the RevShare of
    the latest total. A player who never earned a CPA has its deposits replayed under the
    new affiliate's plan, which books its CPA (kind `cpa`) if it qualifies there. Later
    events book for the new affiliate as usual.
    """
    today = timezone.now().date()
    periods = _Periods(player.brand.operator_id)
    open_period = periods.for_day(today)
    brand_id = player.brand_id
    operator_id = player.brand.operator_id
    list(Player.objects.select_for_update(no_key=True).filter(pk=player.pk).values_list("pk"))
    entries: list[LedgerEntry] = []

    def entry(affiliate_id, amount, currency, reattributed_kind, plan_id, memo, **extra):
        return LedgerEntry(
            operator_id=operator_id,
            affiliate_id=affiliate_id,
            kind=LedgerKind.REATTRIBUTION,
            reattributed_kind=reattributed_kind,
            amount=amount,
            currency=currency,
            period=open_period,
            activity_date=today,
            player_id=player.pk,
            brand_id=brand_id,
            plan_id=plan_id,
            memo=memo,
            author=author,
            **extra,
        )

    to_name = str(to_affiliate) if to_affiliate is not None else "organic"
    from_name = str(from_affiliate) if from_affiliate is not None else "organic"
    history = list(LedgerEntry.objects.filter(player_id=player.pk).order_by("id"))
    if from_affiliate is not None:
        from .periods import closed_month_revshare_paid

        totals: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
        plans: dict[tuple[str, str], int | None] = {}
        # The player's RevShare per closed month: what the old affiliate was paid for it
        # may be less than what was booked (a reset negative month paid nothing for it).
        closed_revshare: dict[tuple[str, date], Decimal] = defaultdict(Decimal)
        for x in history:
            group = _group_of(x.kind, x.reattributed_kind)
            if x.affiliate_id == from_affiliate.pk and group is not None:
                totals[(group, x.currency)] += x.amount
                plans[(group, x.currency)] = x.plan_id
                if x.kind == LedgerKind.REVSHARE and x.period < open_period:
                    closed_revshare[(x.currency, x.period)] += x.amount
        for (currency, month), booked in sorted(closed_revshare.items()):
            paid = closed_month_revshare_paid(
                affiliate_id=from_affiliate.pk, month=month, amount=booked
            )
            if paid is not None:
                totals[(LedgerKind.REVSHARE, currency)] += paid - booked
        for (group, currency), total in sorted(totals.items()):
            if total:
                entries.append(
                    entry(
                        from_affiliate.pk,
                        -total,
                        currency,
                        group,
                        plans[(group, currency)],
                        f"{group} of player {player.external_ref} moved to {to_name}",
                    )
                )

    states = list(PlayerMonthNgr.objects.select_for_update(no_key=True).filter(player=player))
    pending: list[PendingFx] = []
    if to_affiliate is not None:
        # The latest update of each month is its total. A month whose NGR never booked (the
        # player was organic, or its plan had no RevShare) has no state yet, and a state may
        # be behind (updates that arrived while the player was organic): bring both up to it.
        by_month = {state.month: state for state in states}
        for e in Event.objects.filter(
            player_id=player.pk, event_type=EventType.NGR_UPDATE
        ).order_by("event_time", "idempotency_key"):
            month = month_start(utc_date(e.event_time))
            state = by_month.get(month)
            if state is None:
                state = by_month[month] = PlayerMonthNgr(player=player, month=month)
                states.append(state)
            elif (e.event_time, e.idempotency_key) < (
                state.latest_event_time,
                state.latest_idempotency_key,
            ):
                continue
            state.latest_event, state.latest_event_time = e, e.event_time
            state.latest_idempotency_key = e.idempotency_key
            state.ngr_total, state.currency = e.amount, e.currency
        book = _PlanBook([to_affiliate.pk])
        cpa = next((x for x in history if x.kind == LedgerKind.CPA), None)
        reversed_ = any(x.kind == LedgerKind.CPA_REVERSAL for x in history)
        fx = fx_table_load(
            needs=[
                (s.currency, plan.currency, utc_date(s.latest_event_time))
                for s in states
                for plan in [
                    book.plan_for(to_affiliate.pk, brand_id, utc_date(s.latest_event_time))
                ]
                if plan is not None
            ]
        )
        if cpa is not None and not reversed_:
            plan = book.plan_for(to_affiliate.pk, brand_id, cpa.activity_date)
            if plan is not None and plan.cpa_amount is not None:
                entries.append(
                    entry(
                        to_affiliate.pk,
                        plan.cpa_amount,
                        plan.currency,
                        LedgerKind.CPA,
                        plan.pk,
                        f"CPA of player {player.external_ref} moved from {from_name}",
                    )
                )
        for state in states:
            day = utc_date(state.latest_event_time)
            plan = book.plan_for(to_affiliate.pk, brand_id, day)
            state.revshare_booked, state.revshare_currency, state.ngr_total_plan = ZERO, "", None
            if plan is None or plan.revshare_rate is None:
                continue
            state.revshare_currency = plan.currency
            conversion = fx.convert(state.ngr_total, state.currency, plan.currency, day)
            if conversion is None:
                pending.append(
                    PendingFx(
                        event_id=state.latest_event_id,
                        operator_id=operator_id,
                        from_currency=state.currency,
                        to_currency=plan.currency,
                        rate_date=day,
                    )
                )
                continue
            target = revshare_target(plan, conversion.amount)
            state.ngr_total_plan, state.revshare_booked = conversion.amount, target
            if target:
                entries.append(
                    entry(
                        to_affiliate.pk,
                        target,
                        plan.currency,
                        LedgerKind.REVSHARE,
                        plan.pk,
                        f"RevShare {state.month:%Y-%m} of player {player.external_ref} "
                        f"moved from {from_name}",
                        original_amount=conversion.original_amount,
                        original_currency=conversion.original_currency,
                        fx_rate=conversion.fx_rate,
                    )
                )
    else:
        for state in states:
            state.revshare_booked, state.revshare_currency, state.ngr_total_plan = ZERO, "", None
    if any(state.pk is None for state in states):
        PlayerMonthNgr.objects.bulk_create([state for state in states if state.pk is None])
    if any(state.pk is not None for state in states):
        PlayerMonthNgr.objects.bulk_update(
            [state for state in states if state.pk is not None],
            [
                "latest_event",
                "latest_event_time",
                "latest_idempotency_key",
                "ngr_total",
                "currency",
                "revshare_booked",
                "revshare_currency",
                "ngr_total_plan",
            ],
        )
    LedgerEntry.objects.bulk_create(entries)
    moved_cpa = to_affiliate is not None and any(
        x.affiliate_id == to_affiliate.pk and x.reattributed_kind == LedgerKind.CPA for x in entries
    )
    if moved_cpa:
        # Chargebacks that booked nothing when they came (the player was organic, or its
        # affiliate had no CPA to claw back) still count against the moved CPA: replayed,
        # each claws it back as it would have the original, inside its window.
        chargebacks = list(
            Event.objects.filter(player_id=player.pk, event_type=EventType.CHARGEBACK).order_by(
                "event_time", "idempotency_key"
            )
        )
        for e in chargebacks:
            e.player = player
        if chargebacks:
            _Batch(operator_id, chargebacks).run()
    if to_affiliate is not None and not any(x.kind == LedgerKind.CPA for x in history):
        # The player never earned a CPA: under the new affiliate's plan its deposits may
        # qualify it. Replaying them books that (first and only) CPA as usual.
        deposits = list(
            Event.objects.filter(player_id=player.pk, event_type__in=MONEY_TYPES).order_by(
                "event_time", "idempotency_key"
            )
        )
        for e in deposits:
            e.player = player
        if deposits:
            _Batch(operator_id, deposits).run()
    for row in pending:
        PendingFx.objects.update_or_create(
            event_id=row.event_id,
            defaults={
                "operator_id": row.operator_id,
                "from_currency": row.from_currency,
                "to_currency": row.to_currency,
                "rate_date": row.rate_date,
                "resolved_at": None,
            },
        )


# --- Manual adjustments -------------------------------------------------------------------


def ledger_adjust(
    *,
    affiliate: Affiliate,
    amount: Decimal,
    currency: str,
    memo: str,
    author,
    player: Player | None = None,
) -> LedgerEntry:
    """A manual adjustment: a new entry in the open period, with its author and memo.

    Raises:
        ValidationError: zero or non-Decimal amount, no memo or author, a currency other
            than the affiliate's payout currency, or a player of another operator.
        PermissionDenied: the author is a manager of another operator.
    """
    errors = {}
    if not isinstance(amount, Decimal) or not amount.is_finite():
        errors["amount"] = "must be a decimal amount"
    elif amount == 0:
        errors["amount"] = "must not be zero"
    elif amount != quantize(amount):
        errors["amount"] = "has more than 4 decimal places"
    elif abs(amount) >= MAX_ADJUSTMENT:
        errors["amount"] = f"must be less than {MAX_ADJUSTMENT:,} in absolute value"
    if currency != affiliate.payout_currency:
        errors["currency"] = (
            f"must be the affiliate's payout currency {affiliate.payout_currency}: "
            "statements are in one currency"
        )
    if not (memo or "").strip():
        errors["memo"] = "say why: the memo is what the affiliate and auditors read"
    if author is None:
        errors["author"] = "a manual adjustment needs its author"
    if player is not None and player.brand.operator_id != affiliate.operator_id:
        errors["player"] = "the player belongs to another operator"
    if errors:
        raise ValidationError(errors)
    operator_access_check(user=author, operator_id=affiliate.operator_id, what="this affiliate")
    today = timezone.now().date()
    with transaction.atomic():
        return LedgerEntry.objects.create(
            operator_id=affiliate.operator_id,
            affiliate=affiliate,
            kind=LedgerKind.MANUAL_ADJUSTMENT,
            amount=amount,
            currency=currency,
            period=period_for(operator=affiliate.operator, day=today),
            activity_date=today,
            player=player,
            brand_id=player.brand_id if player is not None else None,
            memo=memo.strip(),
            author=author,
        )


# --- Plan assignments ---------------------------------------------------------------------


def plan_assignment_validate(
    *,
    affiliate: Affiliate,
    plan: CommissionPlan,
    brand=None,
    valid_from: date,
    valid_to: date | None = None,
    exclude_pk: int | None = None,
    check_overlaps: bool = True,
    exclude_pks: frozenset = frozenset(),
) -> None:
    """Raises ValidationError when the assignment is not allowed (see plan_assign)."""
    errors: dict[str, str] = {}
    if plan.operator_id != affiliate.operator_id:
        errors["plan"] = "the plan belongs to another operator"
    elif plan.currency != affiliate.payout_currency:
        errors["plan"] = (
            f"the plan pays in {plan.currency} but the affiliate is paid in "
            f"{affiliate.payout_currency}; pick a plan in {affiliate.payout_currency}"
        )
    if brand is not None and brand.operator_id != affiliate.operator_id:
        errors["brand"] = "the brand belongs to another operator"
    from .periods import MONTH_MAX, MONTH_MIN

    last_day = date(MONTH_MAX.year, 12, 31)
    for name, day in (("valid_from", valid_from), ("valid_to", valid_to)):
        if day is not None and not MONTH_MIN <= day <= last_day:
            errors[name] = f"must be from {MONTH_MIN} to {last_day} (the months a period can be)"
    if "valid_to" not in errors and valid_to is not None and valid_to < valid_from:
        errors["valid_to"] = "must be on or after valid_from"
    if not errors and check_overlaps:
        overlapping = PlanAssignment.objects.filter(
            affiliate=affiliate,
            brand=brand,
            valid_from__lte=valid_to or date.max,
        ).filter(Q(valid_to__isnull=True) | Q(valid_to__gte=valid_from))
        if exclude_pk is not None:
            overlapping = overlapping.exclude(pk=exclude_pk)
        if exclude_pks:
            # Rows a page edits in the same save: the page checks them among themselves.
            overlapping = overlapping.exclude(pk__in=exclude_pks)
        clash = overlapping.select_related("plan").first()
        if clash is not None:
            scope = f"brand {brand}" if brand is not None else "all brands"
            until = clash.valid_to or "open-ended"
            errors["valid_from"] = (
                f"overlaps the assignment of '{clash.plan}' for {scope} from "
                f"{clash.valid_from} to {until}; end that one first (set its valid_to)"
            )
    if errors:
        raise ValidationError(errors)


def plan_assignments_overlap_check(*, affiliate: Affiliate) -> None:
    """After a page changed several assignments of `affiliate` at once: none of them
    overlaps another for the same brand (a concurrent save of the same page could leave two
    overlapping; each row was checked without the page's other rows).

    Raises:
        ValidationError: naming the two assignments.
    """
    affiliate.payout_currency = _lock_affiliate(affiliate.pk)
    # Each row against the others as they now are: the overlap rule of plan_assign.
    for row in PlanAssignment.objects.filter(affiliate=affiliate).select_related("plan", "brand"):
        plan_assignment_validate(
            affiliate=affiliate,
            plan=row.plan,
            brand=row.brand,
            valid_from=row.valid_from,
            valid_to=row.valid_to,
            exclude_pk=row.pk,
        )


def _lock_affiliate(affiliate_id: int) -> str:
    """Lock the affiliate's row; returns its payout currency as locked. Concurrent
    assignments and payout-currency changes of one affiliate serialise here, so the overlap
    and currency checks hold. Also takes its operator's period lock, shared, as a booking
    does: an assignment made while a close runs waits for it (the close reads the plans and
    assignments of the month more than once, and must see the same ones)."""
    from .periods import period_lock_shared

    payout_currency, operator_id = (
        Affiliate.objects.select_for_update(no_key=True)
        .filter(pk=affiliate_id)
        .values_list("payout_currency", "operator_id")
        .get()
    )
    period_lock_shared(operator_id=operator_id)
    return payout_currency


@transaction.atomic
def plan_assign(
    *,
    affiliate: Affiliate,
    plan: CommissionPlan,
    brand=None,
    valid_from: date,
    valid_to: date | None = None,
) -> PlanAssignment:
    """Assign a plan to an affiliate, for all brands or one, from valid_from to valid_to
    (inclusive; None: open-ended).

    The plan must be the affiliate's operator's and pay in the affiliate's payout currency
    (so that each statement is in one currency), and must not overlap another assignment
    for the same affiliate and brand. The affiliate row is locked, so concurrent
    assignments serialise and the overlap check holds.

    Raises:
        ValidationError: with a message per field saying what to fix.
    """
    # The currency as locked, not as the caller read it (a form's affiliate may be stale).
    affiliate.payout_currency = _lock_affiliate(affiliate.pk)
    plan_assignment_validate(
        affiliate=affiliate, plan=plan, brand=brand, valid_from=valid_from, valid_to=valid_to
    )
    return PlanAssignment.objects.create(
        affiliate=affiliate, plan=plan, brand=brand, valid_from=valid_from, valid_to=valid_to
    )


@transaction.atomic
def plan_assignment_change(
    *,
    assignment: PlanAssignment,
    plan: CommissionPlan,
    brand=None,
    valid_from: date,
    valid_to: date | None = None,
    exclude_pks: frozenset = frozenset(),
) -> PlanAssignment:
    """Change an assignment (typically: end it with valid_to), with plan_assign's checks.

    `exclude_pks`: assignments changed in the same save (the affiliate page), whose new
    dates the caller has checked against this one; they are left out of the overlap check,
    which would otherwise see their old dates."""
    assignment.affiliate.payout_currency = _lock_affiliate(assignment.affiliate_id)
    plan_assignment_validate(
        affiliate=assignment.affiliate,
        plan=plan,
        brand=brand,
        valid_from=valid_from,
        valid_to=valid_to,
        exclude_pk=assignment.pk,
        exclude_pks=exclude_pks,
    )
    assignment.plan, assignment.brand = plan, brand
    assignment.valid_from, assignment.valid_to = valid_from, valid_to
    assignment.save()
    return assignment
