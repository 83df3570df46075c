"""Period close and statements (SPEC §5: periods).

`period_close` turns one operator's month of ledger entries into statements, in one
transaction: it books the month's RevShare tier adjustments and sub-affiliate earnings, then
one statement per affiliate with activity or carryover, then marks the period closed. The
exact statement formula is in docs/commissions.md ("Periods and statements"); `figures_compute`
below is that formula and nothing else.

Everything is set-based: ledger entries are summed in the database (GROUP BY affiliate, kind,
currency), affiliates are walked in chunks, statements and entries are bulk-inserted, so the
memory used does not grow with the number of entries.
"""

import functools
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from itertools import groupby, islice

from django.core.exceptions import ValidationError
from django.db import DataError, connection, transaction
from django.db.models import Case, Exists, OuterRef, Q, QuerySet, Sum, Value, When
from django.utils import timezone

from attribution.models import Affiliate
from revvvs.models import Operator
from revvvs.money import quantize
from revvvs.tenancy import operator_access_check

from ..models import (
    CommissionPlan,
    LedgerEntry,
    LedgerKind,
    Period,
    PeriodStatus,
    PlanAssignment,
    Statement,
    StatementStatus,
    TierBasis,
    TierMode,
)

ZERO = Decimal("0")
CHUNK_SIZE = 500
# pg_advisory_xact_lock(namespace, operator_id): a close takes it exclusively, booking takes
# it shared (`period_booking_floor`), so no entry can land in a month while it is closing.
PERIOD_LOCK_NAMESPACE = 0x52565053  # "RVPS"

TOTAL_KINDS = [kind.value for kind in LedgerKind]


class PeriodError(Exception):
    """A period cannot be closed as asked; the message tells the manager why."""


class PeriodNotEnded(PeriodError):
    pass


class StatementTransitionError(Exception):
    """A statement cannot move to the asked state; the message tells why."""


@dataclass(frozen=True)
class CloseResult:
    period: Period
    created: bool  # False: the period was already closed and nothing changed
    statements: QuerySet  # the period's statements
    tier_adjustments: int = 0
    sub_affiliate_entries: int = 0


# --- months -------------------------------------------------------------------------------

# The months a period can be: wide enough for any operator's history, narrow enough that the
# month before and the month after exist (date.min and date.max would overflow).
MONTH_MIN = date(1970, 1, 1)
MONTH_MAX = date(9998, 12, 1)
MONTH_RE = re.compile(r"[0-9]{4}-[0-9]{2}")  # strptime alone takes 2026-1 for January


def month_parse(value: str) -> date:
    """The first day of the month `value` ("YYYY-MM"); ValueError with a message to show."""
    try:
        if not MONTH_RE.fullmatch(value.strip()):
            raise ValueError
        month = datetime.strptime(value.strip(), "%Y-%m").date()
    except ValueError:
        raise ValueError(f"bad month {value!r}: give it as YYYY-MM, e.g. 2026-03") from None
    if not MONTH_MIN <= month <= MONTH_MAX:
        raise ValueError(
            f"bad month {value!r}: a period is a month from {MONTH_MIN:%Y-%m} to {MONTH_MAX:%Y-%m}"
        )
    return month


def month_start(day: date) -> date:
    return day.replace(day=1)


def month_next(month: date) -> date:
    return (month.replace(day=28) + timedelta(days=4)).replace(day=1)


def month_previous(month: date) -> date:
    return (month.replace(day=1) - timedelta(days=1)).replace(day=1)


def month_end_utc(month: date) -> datetime:
    """The instant the month is over: the first day of the next month, 00:00 UTC."""
    return datetime.combine(month_next(month), time.min, tzinfo=UTC)


def period_booking_floor(*, operator_id: int) -> date | None:
    """The first month new ledger entries may book into, for the booking engine.

    Takes the operator's period lock in shared mode for the rest of the transaction, so a
    close waits for bookings in flight and bookings wait for a close: an entry never lands in
    a month while it is being closed. Returns the month after the latest closed period (an
    entry dated earlier books into that month, keeping its own `activity_date`), or None when
    no period is closed. Must be called inside a transaction.
    """
    if connection.vendor != "postgresql":
        latest = (
            Period.objects.filter(operator_id=operator_id, status=PeriodStatus.CLOSED)
            .order_by("-month")
            .values_list("month", flat=True)
            .first()
        )
        return month_next(latest) if latest else None
    statement, params = period_booking_floor_sql(operator_id=operator_id)
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        cursor.nextset()
        return period_booking_floor_of(cursor.fetchone()[0])


def period_lock_shared(*, operator_id: int) -> None:
    """The operator's period lock, shared (PostgreSQL; SQLite serialises writes anyway):
    waits for a close in progress, and holds the next one off until the transaction ends."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock_shared(%s, %s)", [PERIOD_LOCK_NAMESPACE, operator_id]
        )


def period_booking_floor_sql(*, operator_id: int) -> tuple[str, list]:
    """`period_booking_floor` as SQL (PostgreSQL) for a caller that sends it in the same
    round trip as other statements: two statements, the lock and then the read, whose one
    row is the latest closed month to pass to `period_booking_floor_of`.

    The read is a statement of its own, after the lock, so its snapshot sees a close the
    lock waited for. Plain SQL: this runs for every booking request, and building the ORM
    query cost more than running it."""
    return (
        f"SELECT pg_advisory_xact_lock_shared(%s, %s); {_latest_closed_sql()}",
        [PERIOD_LOCK_NAMESPACE, operator_id, operator_id, PeriodStatus.CLOSED],
    )


def period_booking_floor_of(latest_closed: date | None) -> date | None:
    return month_next(latest_closed) if latest_closed else None


@functools.cache
def _latest_closed_sql() -> str:
    meta, qn = Period._meta, connection.ops.quote_name
    column = meta.get_field
    return (
        f"SELECT max({qn(column('month').column)}) FROM {qn(meta.db_table)} "
        f"WHERE {qn(column('operator').column)} = %s AND {qn(column('status').column)} = %s"
    )


# --- the statement formula ----------------------------------------------------------------


@dataclass(frozen=True)
class Figures:
    """One statement's numbers (see docs/commissions.md for the formula)."""

    totals: dict[str, Decimal]
    carryover_in: Decimal
    rollover_in: Decimal
    carryover_out: Decimal
    revshare_written_off: Decimal
    rollover_out: Decimal
    net_payable: Decimal
    earned: Decimal  # this period's commission, carry-ins applied, before rollover_in

    @property
    def sub_affiliate_base(self) -> Decimal:
        """What a referrer's share is taken from: earned without own sub-affiliate earnings."""
        return self.earned - self.totals[LedgerKind.SUB_AFFILIATE]


def figures_compute(
    *,
    totals: dict[str, Decimal],
    previous_carryover_out: Decimal,
    previous_rollover_out: Decimal,
    negative_carryover: bool,
    revshare_offsets_cpa: bool,
    minimum_payout: Decimal,
    reattributed_revshare: Decimal = ZERO,
    reattributed_cpa: Decimal = ZERO,
) -> Figures:
    """The statement formula of docs/commissions.md, on Decimals, nothing rounded away.

    `reattributed_revshare` and `reattributed_cpa` are the parts of the `reattribution`
    total that move RevShare and CPA (by `reattributed_kind`): a reassignment moves RevShare
    and CPA, so they count in those lines, under the plan's carryover and offset rules."""
    totals = {kind: quantize(totals.get(kind, ZERO)) for kind in TOTAL_KINDS}
    carryover_in = previous_carryover_out if negative_carryover else ZERO
    rollover_in = previous_rollover_out
    revshare = (
        totals[LedgerKind.REVSHARE]
        + totals[LedgerKind.REVSHARE_TIER_ADJUSTMENT]
        + reattributed_revshare
        + carryover_in
    )
    cpa = totals[LedgerKind.CPA] + totals[LedgerKind.CPA_REVERSAL] + reattributed_cpa
    if revshare < 0 and revshare_offsets_cpa:
        absorbed = min(-revshare, max(cpa, ZERO))
        revshare += absorbed
        cpa -= absorbed
    carryover_out = revshare if revshare < 0 and negative_carryover else ZERO
    # Off, a negative RevShare resets to zero: the statement shows what it wrote off.
    written_off = -revshare if revshare < 0 and not negative_carryover else ZERO
    earned = (
        max(revshare, ZERO)
        + cpa
        + totals[LedgerKind.SUB_AFFILIATE]
        + totals[LedgerKind.MANUAL_ADJUSTMENT]
        + (totals[LedgerKind.REATTRIBUTION] - reattributed_revshare - reattributed_cpa)
    )
    balance = earned + rollover_in
    net_payable = balance if balance > 0 and balance >= minimum_payout else ZERO
    return Figures(
        totals=totals,
        carryover_in=quantize(carryover_in),
        rollover_in=quantize(rollover_in),
        carryover_out=quantize(carryover_out),
        revshare_written_off=quantize(written_off),
        rollover_out=quantize(balance - net_payable),
        net_payable=quantize(net_payable),
        earned=quantize(earned),
    )


def tier_adjustment_compute(
    *,
    revshare_booked: Decimal,
    base_rate: Decimal,
    tiers: list[tuple[Decimal, Decimal]],
    mode: str,
    basis: str,
    cpa_count: int = 0,
    monthly_ngr: Decimal | None = None,
) -> Decimal:
    """Tier commission minus the base-rate RevShare already booked, for one affiliate-plan.

    `revshare_booked` is the plan's RevShare R for the month (base rate, after the admin
    fee); the plan's commissionable NGR is C = R / base_rate. The basis is the affiliate's
    month, over all its plans: its NGR before the admin fee (`monthly_ngr`; C when not
    given) or its qualified CPA count. Below the lowest threshold the base rate applies (a tier with
    threshold 0 replaces it). `tiered`: C at the reached tier's rate. `ladder`: C at the
    average rate of the bands, each band of the basis at its own rate (with one plan and
    the NGR basis, exactly Σ rate × band).
    """
    if not base_rate or not tiers or revshare_booked <= 0:
        return ZERO
    commissionable = revshare_booked / base_rate
    if basis == TierBasis.NGR:
        amount = commissionable if monthly_ngr is None else monthly_ngr
    else:
        amount = Decimal(cpa_count)
    if amount < 0:
        return ZERO  # a negative month stays at the base rate
    bands = sorted(tiers)
    if bands[0][0] > 0:
        bands.insert(0, (ZERO, base_rate))
    if mode == TierMode.TIERED or amount == 0:
        # At 0 (no CPA yet) the ladder's first band is the rate: the same as tiered.
        rate = base_rate
        for threshold, tier_rate in bands:
            if amount >= threshold:
                rate = tier_rate
        return quantize(revshare_booked * (rate - base_rate) / base_rate)
    weighted = ZERO  # Σ rate × the part of `amount` inside the band
    for index, (lower, rate) in enumerate(bands):
        upper = bands[index + 1][0] if index + 1 < len(bands) else None
        if amount <= lower:
            break
        top = amount if upper is None else min(amount, upper)
        weighted += rate * (top - lower)
    if amount == commissionable:
        commission = weighted
    else:
        commission = commissionable * weighted / amount
    return quantize(commission - revshare_booked)


# --- reassignment of a player paid in a closed month -----------------------------------------


def closed_month_revshare_paid(*, affiliate_id: int, month: date, amount: Decimal):
    """What `amount` of an affiliate's RevShare booked in a closed `month` changed in what
    its statement paid, when that month's plan resets negative RevShare and does not offset
    CPA: `max(line, 0) − max(line − amount, 0)`, `line` the statement's RevShare line. So a
    player's negative RevShare that the close reset cost the affiliate nothing (0), and a
    positive one paid only the part the line kept. None when the month is not closed or its
    plan carries negative RevShare or offsets it (then the amount itself is what it cost or
    paid, through the carried balance or the CPA)."""
    statement = (
        Statement.objects.filter(
            affiliate_id=affiliate_id, period__month=month, period__status=PeriodStatus.CLOSED
        )
        .only("revshare", "revshare_tier_adjustment")
        .first()
    )
    if statement is None:
        return None
    plans = {
        plan.pk: plan
        for plan in CommissionPlan.objects.filter(assignments__affiliate_id=affiliate_id)
    }
    plan = _month_end_plans([affiliate_id], month, plans).get(affiliate_id)
    if plan is None or plan.negative_carryover or plan.revshare_offsets_cpa:
        return None
    line = statement.revshare + statement.revshare_tier_adjustment
    return max(line, ZERO) - max(line - amount, ZERO)


# --- payout currency -----------------------------------------------------------------------


def payout_currency_change_check(*, affiliate_id: int, currency: str) -> None:
    """An affiliate's payout currency may change only when nothing can book in the old one
    any more: no entry in a month not yet closed, no balance carried by its last statement,
    no plan assignment in another currency (ended ones included: late events dated under
    them still book), no commission from players in another currency (a reassignment gives
    it back in that currency). A statement is in one currency, and the close refuses an
    affiliate whose month mixes two (the ledger being append-only, such a month could never
    be closed). So only an affiliate whose history in the old currency is manual
    adjustments can change; one paid by a plan keeps its currency.

    Raises:
        ValidationError: on `payout_currency`, saying what is open in which currency.
    """
    affiliate = Affiliate.objects.only("operator_id").get(pk=affiliate_id)
    latest_closed = (
        Period.objects.filter(operator_id=affiliate.operator_id, status=PeriodStatus.CLOSED)
        .order_by("-month")
        .values_list("month", flat=True)
        .first()
    )
    open_entries = LedgerEntry.objects.filter(affiliate_id=affiliate_id).exclude(currency=currency)
    if latest_closed:
        open_entries = open_entries.filter(period__gt=latest_closed)
    problems = []
    entry = open_entries.order_by("period").values_list("currency", "period").first()
    if entry:
        problems.append(
            f"it has {entry[0]} entries in {entry[1]:%Y-%m}, not yet closed (close the month, "
            "then change the currency)"
        )
    last = (
        Statement.objects.filter(affiliate_id=affiliate_id)
        .order_by("-period__month")
        .only("currency", "carryover_out", "rollover_out", "period__month")
        .select_related("period")
        .first()
    )
    if last and last.currency != currency and (last.carryover_out or last.rollover_out):
        problems.append(
            f"its {last.period.month:%Y-%m} statement carries a {last.currency} balance "
            f"(carryover {last.carryover_out}, rollover {last.rollover_out}); settle it with a "
            f"manual adjustment in {last.currency} first"
        )
    # Ended assignments count too: an event dated while one was in force books under it
    # whenever it arrives (late events have no time limit), in its plan's currency.
    plans = sorted(
        PlanAssignment.objects.filter(affiliate_id=affiliate_id)
        .exclude(plan__currency=currency)
        .values_list("plan__name", "plan__currency")
        .distinct()
    )
    if plans:
        names = ", ".join(f"{name} ({plan_currency})" for name, plan_currency in plans)
        problems.append(
            f"it is assigned {names} (in force, to come or ended: late events, chargebacks "
            "and reassignments of players dated under an assignment book in its plan's "
            "currency at any time)"
        )
    elif (
        LedgerEntry.objects.filter(affiliate_id=affiliate_id, player__isnull=False)
        .exclude(currency=currency)
        .exists()
    ):
        # Commission earned from players (e.g. moved to this affiliate by a reassignment)
        # is given back in its own currency if a player is reassigned again.
        problems.append(
            "it holds commission from players in another currency, which a reassignment "
            "of those players would reverse in that currency"
        )
    if problems:
        raise ValidationError(
            {
                "payout_currency": f"the payout currency cannot change to {currency}: "
                + "; ".join(problems)
            }
        )


# --- the close ----------------------------------------------------------------------------


@dataclass
class _AffiliateState:
    affiliate: Affiliate
    totals: dict[str, Decimal] = field(default_factory=dict)
    currencies: set[str] = field(default_factory=set)
    # the `reattribution` total by the kind it moves (LedgerKind.REVSHARE, LedgerKind.CPA)
    reattributed: dict[str, Decimal] = field(default_factory=dict)
    previous: Statement | None = None
    plan: CommissionPlan | None = None


def _chunks(iterable: Iterable, size: int) -> Iterator[list]:
    iterator = iter(iterable)
    while chunk := list(islice(iterator, size)):
        yield chunk


def _lock_operator(operator: Operator) -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_advisory_xact_lock(%s, %s)", [PERIOD_LOCK_NAMESPACE, operator.pk]
            )


def _check_order(operator: Operator, month: date) -> None:
    later = (
        Period.objects.filter(operator=operator, month__gt=month, status=PeriodStatus.CLOSED)
        .order_by("month")
        .values_list("month", flat=True)
        .first()
    )
    if later:
        raise PeriodError(
            f"{later:%Y-%m} is already closed: months close in order, so {month:%Y-%m} "
            "can no longer be closed (its late entries book into the open period)"
        )
    latest_closed = (
        Period.objects.filter(operator=operator, month__lt=month, status=PeriodStatus.CLOSED)
        .order_by("-month")
        .values_list("month", flat=True)
        .first()
    )
    if latest_closed and month_next(latest_closed) != month:
        # Consecutive, even through a month without entries: its carried balances still
        # make statements, and booking never leaves a gap it could book into.
        raise PeriodError(
            f"close {month_next(latest_closed):%Y-%m} first: months close in order "
            f"(the last closed month is {latest_closed:%Y-%m})"
        )
    earlier = LedgerEntry.objects.filter(operator=operator, period__lt=month)
    if latest_closed:
        earlier = earlier.filter(period__gt=latest_closed)
    open_month = earlier.order_by("period").values_list("period", flat=True).first()
    if open_month:
        raise PeriodError(
            f"close {open_month:%Y-%m} first: it has ledger entries and is still open "
            "(months close in order)"
        )
    if latest_closed is None:
        # The first close starts the chain of consecutive months: it must be the earliest
        # month with entries, or every empty month from it to the first real one would have
        # to be closed by hand first.
        first = (
            LedgerEntry.objects.filter(operator=operator)
            .order_by("period")
            .values_list("period", flat=True)
            .first()
        )
        if first is None:
            raise PeriodError(
                f"{month:%Y-%m} has nothing to close: the operator has no ledger entries yet "
                "(the first close is the earliest month with entries)"
            )
        if first > month:
            raise PeriodError(
                f"{month:%Y-%m} has no ledger entries; the first close is the earliest month "
                f"with entries, {first:%Y-%m}"
            )


def _plans(operator: Operator) -> dict[int, CommissionPlan]:
    return {
        plan.pk: plan
        for plan in CommissionPlan.objects.filter(operator=operator).prefetch_related("tiers")
    }


def _month_end_plans(
    affiliate_ids: list[int], month: date, plans: dict[int, CommissionPlan]
) -> dict[int, CommissionPlan]:
    """Each affiliate's plan of the month: the one in force on its last day (the all-brands
    assignment first, then the latest `valid_from`, then the oldest assignment); for an
    affiliate whose assignments all ended during the month, the one that ended last (same
    order on a tie), so that its carryover and offset rules still apply to the month."""
    last_day = month_next(month) - timedelta(days=1)
    assignments = (
        PlanAssignment.objects.filter(affiliate_id__in=affiliate_ids, valid_from__lte=last_day)
        .filter(Q(valid_to__isnull=True) | Q(valid_to__gte=month))
        .values_list("affiliate_id", "plan_id", "brand_id", "valid_from", "valid_to", "id")
    )
    best: dict[int, tuple] = {}
    for affiliate_id, plan_id, brand_id, valid_from, valid_to, pk in assignments:
        ends = last_day if valid_to is None or valid_to >= last_day else valid_to
        rank = (ends, brand_id is None, valid_from, -pk)
        if affiliate_id not in best or rank > best[affiliate_id][0]:
            best[affiliate_id] = (rank, plans[plan_id])
    return {affiliate_id: plan for affiliate_id, (_, plan) in best.items()}


def _previous_statements(operator: Operator, month: date) -> QuerySet:
    """The statements of the month before. Months close in order and a balance carried makes
    a statement every month, so an affiliate's carried balance, if any, is always on its
    statement of the month before."""
    return Statement.objects.filter(operator=operator, period__month=month_previous(month))


def _affiliates_in_scope(operator: Operator, month: date) -> QuerySet:
    """Affiliates with entries in the period, or whose last statement left a balance."""
    # EXISTS per affiliate: an index probe on (affiliate, period) each, however many entries.
    with_entries = LedgerEntry.objects.filter(affiliate=OuterRef("pk"), period=month)
    with_balance = (
        _previous_statements(operator, month)
        .filter(affiliate=OuterRef("pk"))
        .exclude(carryover_out=0, rollover_out=0)
    )
    return (
        Affiliate.objects.filter(operator=operator)
        .filter(Exists(with_entries) | Exists(with_balance))
        .only("id", "referrer_id", "minimum_payout", "payout_currency", "email", "company")
        .order_by("pk")
    )


def _states(
    operator: Operator,
    month: date,
    plans: dict[int, CommissionPlan],
    progress: Callable[[], None],
) -> Iterator[_AffiliateState]:
    """Each in-scope affiliate with its period totals, last statement and month-end plan."""
    for chunk in _chunks(_affiliates_in_scope(operator, month).iterator(CHUNK_SIZE), CHUNK_SIZE):
        ids = [affiliate.pk for affiliate in chunk]
        states = {affiliate.pk: _AffiliateState(affiliate) for affiliate in chunk}
        sums = (
            LedgerEntry.objects.filter(operator=operator, period=month, affiliate_id__in=ids)
            .values("affiliate_id", "kind", "currency", "reattributed_kind")
            .annotate(total=Sum("amount"))
            .order_by()
        )
        for row in sums:
            state = states[row["affiliate_id"]]
            kind = row["kind"]
            state.totals[kind] = state.totals.get(kind, ZERO) + row["total"]
            state.currencies.add(row["currency"])
            if kind == LedgerKind.REATTRIBUTION and row["reattributed_kind"]:
                moved = row["reattributed_kind"]
                state.reattributed[moved] = state.reattributed.get(moved, ZERO) + row["total"]
        for statement in _previous_statements(operator, month).filter(affiliate_id__in=ids):
            state = states[statement.affiliate_id]
            state.previous = statement
            if statement.carryover_out or statement.rollover_out:
                state.currencies.add(statement.currency)
        for affiliate_id, plan in _month_end_plans(ids, month, plans).items():
            states[affiliate_id].plan = plan
        yield from states.values()
        progress(len(chunk))


def _figures(state: _AffiliateState) -> Figures:
    plan = state.plan
    previous = state.previous
    return figures_compute(
        totals=state.totals,
        previous_carryover_out=previous.carryover_out if previous else ZERO,
        previous_rollover_out=previous.rollover_out if previous else ZERO,
        negative_carryover=plan.negative_carryover if plan else True,
        revshare_offsets_cpa=plan.revshare_offsets_cpa if plan else False,
        minimum_payout=state.affiliate.minimum_payout,
        reattributed_revshare=quantize(state.reattributed.get(LedgerKind.REVSHARE, ZERO)),
        reattributed_cpa=quantize(state.reattributed.get(LedgerKind.CPA, ZERO)),
    )


def _qualified_cpa_counts(operator: Operator, month: date, affiliate_ids) -> dict[int, int]:
    """The CPA-count tier basis: per affiliate, the CPAs the month credits it, net: +1 for a
    `cpa` entry, −1 for a `cpa_reversal` (a clawback undoes one), ±1 for a CPA moved to or
    from it by a reassignment (`reattribution` of a CPA, by the sign of its amount); never
    below 0. CPAs count where their commission is booked, as the NGR basis does."""
    moved_cpa = Q(kind=LedgerKind.REATTRIBUTION, reattributed_kind=LedgerKind.CPA)
    rows = (
        LedgerEntry.objects.filter(operator=operator, period=month, affiliate_id__in=affiliate_ids)
        .filter(Q(kind__in=[LedgerKind.CPA, LedgerKind.CPA_REVERSAL]) | moved_cpa)
        .values("affiliate_id")
        .annotate(
            n=Sum(
                Case(
                    When(kind=LedgerKind.CPA, then=Value(1)),
                    When(kind=LedgerKind.CPA_REVERSAL, then=Value(-1)),
                    When(moved_cpa & Q(amount__gt=0), then=Value(1)),
                    When(moved_cpa & Q(amount__lt=0), then=Value(-1)),
                    default=Value(0),
                )
            )
        )
        .order_by()
        .values_list("affiliate_id", "n")
    )
    return {affiliate_id: max(n, 0) for affiliate_id, n in rows}


def _book_tier_adjustments(
    operator: Operator, month: date, plans: dict[int, CommissionPlan]
) -> int:
    """One `revshare_tier_adjustment` per affiliate and plan whose tiers change the month.

    The tier basis is the affiliate's month over all its plans (a plan change mid-month
    keeps the month's NGR whole); each tiered plan's adjustment is on its own RevShare."""
    tiered = {plan.pk for plan in plans.values() if plan.revshare_rate and plan.tiers.all()}
    if not tiered:
        return 0
    last_day = month_next(month) - timedelta(days=1)
    with_tiers = LedgerEntry.objects.filter(
        operator=operator,
        period=month,
        kind=LedgerKind.REVSHARE,
        plan_id__in=tiered,
        affiliate_id=OuterRef("affiliate_id"),
    )
    rows = (
        LedgerEntry.objects.filter(operator=operator, period=month, kind=LedgerKind.REVSHARE)
        .filter(Exists(with_tiers))
        .values("affiliate_id", "plan_id", "currency")
        .annotate(
            total=Sum("amount"),
            ngr=Sum("ngr_amount", default=ZERO),
            # Entries booked before they recorded their NGR: read back from the RevShare.
            unrecorded=Sum(
                Case(When(ngr_amount__isnull=True, then="amount"), default=Value(ZERO)),
                default=ZERO,
            ),
        )
        .order_by("affiliate_id", "plan_id", "currency")
    )
    booked = 0
    # Each group is read whole before the next: groupby's groups share one iterator.
    by_affiliate = (
        (affiliate_id, list(group))
        for affiliate_id, group in groupby(
            rows.iterator(CHUNK_SIZE), key=lambda row: row["affiliate_id"]
        )
    )
    for chunk in _chunks(by_affiliate, CHUNK_SIZE):
        count_ids = {
            affiliate_id
            for affiliate_id, group in chunk
            if any(
                row["plan_id"] in tiered and plans[row["plan_id"]].tier_basis == TierBasis.CPA_COUNT
                for row in group
            )
        }
        cpa_counts = _qualified_cpa_counts(operator, month, count_ids)
        entries = []
        for affiliate_id, group in chunk:
            # The affiliate's NGR of the month (before the admin fee), over all its plans.
            monthly_ngr = sum(
                (
                    row["ngr"] + row["unrecorded"] / plans[row["plan_id"]].revshare_rate
                    for row in group
                    if row["plan_id"] in plans and plans[row["plan_id"]].revshare_rate
                ),
                ZERO,
            )
            cpa_count = cpa_counts.get(affiliate_id, 0)
            for row in group:
                if row["plan_id"] not in tiered:
                    continue
                plan = plans[row["plan_id"]]
                adjustment = tier_adjustment_compute(
                    revshare_booked=row["total"],
                    base_rate=plan.revshare_rate,
                    tiers=[(tier.threshold, tier.rate) for tier in plan.tiers.all()],
                    mode=plan.tier_mode,
                    basis=plan.tier_basis,
                    cpa_count=cpa_count,
                    monthly_ngr=monthly_ngr,
                )
                if not adjustment:
                    continue
                basis = (
                    f"the month's NGR {quantize(monthly_ngr)}"
                    if plan.tier_basis == TierBasis.NGR
                    else f"{cpa_count} qualified CPA"
                )
                entries.append(
                    LedgerEntry(
                        operator=operator,
                        affiliate_id=affiliate_id,
                        kind=LedgerKind.REVSHARE_TIER_ADJUSTMENT,
                        amount=adjustment,
                        currency=row["currency"],
                        period=month,
                        activity_date=last_day,
                        plan=plan,
                        memo=f"{month:%Y-%m} tiers ({plan.tier_mode}) on {basis}: RevShare "
                        f"{row['total']} at base rate {plan.revshare_rate}",
                    )
                )
        LedgerEntry.objects.bulk_create(entries)
        booked += len(entries)
    return booked


def _book_sub_affiliate(
    operator: Operator,
    month: date,
    plans: dict[int, CommissionPlan],
    progress: Callable[[], None],
) -> int:
    """Referrers earn their month-end plan's `sub_affiliate_rate` of each referred affiliate's
    positive commission for the period (one level: sub-affiliate earnings are not passed up).
    Also checks that each affiliate's period is in one currency."""
    last_day = month_next(month) - timedelta(days=1)
    booked = 0
    mixed: list[str] = []
    pending: list[tuple[int, _AffiliateState, Decimal]] = []

    def flush():
        nonlocal booked
        referrer_plans = _month_end_plans(
            sorted({referrer_id for referrer_id, _, _ in pending}), month, plans
        )
        entries = []
        for referrer_id, state, base in pending:
            plan = referrer_plans.get(referrer_id)
            if plan is None or not plan.sub_affiliate_rate:
                continue
            amount = quantize(base * plan.sub_affiliate_rate)
            if not amount:
                continue
            entries.append(
                LedgerEntry(
                    operator=operator,
                    affiliate_id=referrer_id,
                    kind=LedgerKind.SUB_AFFILIATE,
                    amount=amount,
                    currency=next(iter(state.currencies)),
                    period=month,
                    activity_date=last_day,
                    plan=plan,
                    memo=f"{month:%Y-%m}: {plan.sub_affiliate_rate * 100:.2f} % of "
                    f"{state.affiliate} (#{state.affiliate.pk}) net commission {base}",
                )
            )
        LedgerEntry.objects.bulk_create(entries)
        booked += len(entries)
        pending.clear()

    for state in _states(operator, month, plans, progress):
        if len(state.currencies) > 1:
            mixed.append(f"{state.affiliate} (#{state.affiliate.pk}): {sorted(state.currencies)}")
            continue
        referrer_id = state.affiliate.referrer_id
        if referrer_id is None:
            continue
        base = _figures(state).sub_affiliate_base
        if base > 0:
            pending.append((referrer_id, state, base))
            if len(pending) >= CHUNK_SIZE:
                flush()
    if mixed:
        raise PeriodError(
            "a statement is in one currency, but these affiliates have entries or balances in "
            "several (their plans must share a currency): " + "; ".join(mixed[:10])
        )
    if pending:
        flush()
    return booked


def _build_statements(
    operator: Operator,
    period: Period,
    plans: dict[int, CommissionPlan],
    progress: Callable[[], None],
) -> int:
    built = 0
    batch: list[Statement] = []
    for state in _states(operator, period.month, plans, progress):
        if len(state.currencies) > 1:
            # Only a sub-affiliate share in another currency than the referrer's can do this.
            raise PeriodError(
                f"{state.affiliate} (#{state.affiliate.pk}) would earn in several currencies "
                f"{sorted(state.currencies)}: a referrer's plan must use its referrals' currency"
            )
        figures = _figures(state)
        if state.currencies:
            currency = next(iter(state.currencies))
        elif state.plan:
            currency = state.plan.currency
        else:
            currency = state.affiliate.payout_currency
        batch.append(
            Statement(
                operator=operator,
                period=period,
                affiliate=state.affiliate,
                currency=currency,
                carryover_in=figures.carryover_in,
                rollover_in=figures.rollover_in,
                carryover_out=figures.carryover_out,
                revshare_written_off=figures.revshare_written_off,
                rollover_out=figures.rollover_out,
                net_payable=figures.net_payable,
                status=StatementStatus.DRAFT,
                **figures.totals,
            )
        )
        if len(batch) >= CHUNK_SIZE:
            Statement.objects.bulk_create(batch)
            built += len(batch)
            batch = []
    Statement.objects.bulk_create(batch)
    return built + len(batch)


def periods_to_close_record(*, operator_id: int | None, now: datetime | None = None) -> int:
    """Record an open `Period` row for every ended month that has ledger entries and no row
    yet, for the operator (None: every operator), so that the admin lists the months there
    are to close, beside the closed ones. Returns how many rows it added.

    A row only names a month: `period_close` creates it too when it is missing, and nothing
    else reads an open row."""
    current = month_start((now or timezone.now()).astimezone(UTC).date())
    months = LedgerEntry.objects.filter(period__lt=current)
    if operator_id is not None:
        # Past the latest closed month only: the index on (operator, period) then reads the
        # entries of the months still to close, not the operator's whole ledger.
        months = months.filter(operator_id=operator_id)
        floor = period_booking_floor_of(
            Period.objects.filter(operator_id=operator_id, status=PeriodStatus.CLOSED)
            .order_by("-month")
            .values_list("month", flat=True)
            .first()
        )
        if floor is not None:
            months = months.filter(period__gte=floor)
    wanted = set(months.order_by().values_list("operator_id", "period").distinct())
    if not wanted:
        return 0
    known = set(
        Period.objects.filter(operator_id__in={o for o, _ in wanted}).values_list(
            "operator_id", "month"
        )
    )
    missing = sorted(wanted - known)
    Period.objects.bulk_create(
        [Period(operator_id=o, month=m, status=PeriodStatus.OPEN) for o, m in missing],
        ignore_conflicts=True,
    )
    return len(missing)


def period_close(
    *,
    operator: Operator,
    month: date,
    user=None,
    progress: Callable[[int, int], None] | None = None,
    now: datetime | None = None,
) -> CloseResult:
    """Close an operator's month into statements.

    Args:
        month: any day of the month (the first day is used).
        user: who closes; a manager may close only their own operator's months.
        progress: called with (done, total) affiliates as the close advances.
        now: the current time (tests); defaults to now.

    Returns the CloseResult; when the month is already closed, `created` is False and the
    existing statements are returned unchanged.

    Raises:
        PeriodNotEnded: the month has not ended yet (UTC).
        PeriodError: an earlier month with entries is still open, a later one is closed, or
            an affiliate's entries are in several currencies.
        PermissionDenied: a manager closing another operator's month.
    """
    operator_access_check(user=user, operator_id=operator.pk, what="this period")
    month = month_start(month)
    if not MONTH_MIN <= month <= MONTH_MAX:
        raise PeriodError(
            f"{month:%Y-%m} is not a period: months run from {MONTH_MIN:%Y-%m} to {MONTH_MAX:%Y-%m}"
        )
    ends_at = month_end_utc(month)
    if (now or timezone.now()) < ends_at:
        raise PeriodNotEnded(
            f"{month:%Y-%m} has not ended yet: it can be closed from {ends_at:%Y-%m-%d %H:%M} UTC"
        )
    try:
        return _period_close(operator, month, user, progress)
    except DataError as exc:  # a sum beyond the ledger's 14 integer digits
        raise PeriodError(
            f"{month:%Y-%m} cannot be closed: a statement total is beyond the amounts the "
            f"ledger holds ({exc.__cause__ or exc}); correct the entries with manual adjustments"
        ) from None


def _period_close(operator, month, user, progress) -> CloseResult:
    with transaction.atomic():
        _lock_operator(operator)
        Period.objects.bulk_create([Period(operator=operator, month=month)], ignore_conflicts=True)
        period = Period.objects.select_for_update().get(operator=operator, month=month)
        statements = Statement.objects.filter(period=period)
        if period.status == PeriodStatus.CLOSED:
            return CloseResult(period=period, created=False, statements=statements)
        _check_order(operator, month)

        plans = _plans(operator)
        tier_adjustments = _book_tier_adjustments(operator, month, plans)
        total = 2 * _affiliates_in_scope(operator, month).count()
        done = 0

        def advance(count: int) -> None:
            nonlocal done
            done += count
            if progress:
                progress(min(done, total), total)

        sub_entries = _book_sub_affiliate(operator, month, plans, advance)
        # Sub-affiliate earnings may bring referrers into scope: count again.
        total = done + _affiliates_in_scope(operator, month).count()
        _build_statements(operator, period, plans, advance)

        period.status = PeriodStatus.CLOSED
        period.closed_at = timezone.now()
        period.closed_by = user if user is not None and user.is_authenticated else None
        period.save(update_fields=["status", "closed_at", "closed_by"])
    return CloseResult(
        period=period,
        created=True,
        statements=statements,
        tier_adjustments=tier_adjustments,
        sub_affiliate_entries=sub_entries,
    )


# --- statement states ---------------------------------------------------------------------


def _locked_statement(statement: Statement, user) -> Statement:
    locked = Statement.objects.select_for_update().get(pk=statement.pk)
    operator_access_check(user=user, operator_id=locked.operator_id, what="this statement")
    return locked


def statement_approve(*, statement: Statement, user) -> Statement:
    """draft → approved. Raises StatementTransitionError from any other state."""
    with transaction.atomic():
        locked = _locked_statement(statement, user)
        if locked.status != StatementStatus.DRAFT:
            raise StatementTransitionError(
                f"statement {locked} is {locked.status}: only a draft statement can be approved"
            )
        locked.status = StatementStatus.APPROVED
        locked.approved_at = timezone.now()
        locked.approved_by = user
        locked.save(update_fields=["status", "approved_at", "approved_by"])
    return locked


def statement_mark_paid(
    *, statement: Statement, method: str, reference: str, paid_on: date, user
) -> Statement:
    """approved → paid, recording the payment method, reference and date.

    Raises StatementTransitionError when the statement is not approved, has nothing to pay,
    or the payment details are missing or dated in the future."""
    method = (method or "").strip()
    reference = (reference or "").strip()
    if not method:
        raise StatementTransitionError("a payment method is required")
    if paid_on is None:
        raise StatementTransitionError("the payment date is required")
    if paid_on > timezone.now().date():
        raise StatementTransitionError(f"the payment date {paid_on} is in the future")
    with transaction.atomic():
        locked = _locked_statement(statement, user)
        if locked.status != StatementStatus.APPROVED:
            raise StatementTransitionError(
                f"statement {locked} is {locked.status}: only an approved statement can be "
                "marked paid"
            )
        ended = month_next(locked.period.month)
        if paid_on < ended:
            raise StatementTransitionError(
                f"the payment date {paid_on} is before {locked.period.month:%Y-%m} ended "
                f"({ended}): a statement is paid after its month closes"
            )
        if locked.net_payable <= 0:
            raise StatementTransitionError(
                f"statement {locked} has nothing to pay (net payable {locked.net_payable})"
            )
        locked.status = StatementStatus.PAID
        locked.payment_method = method
        locked.payment_reference = reference
        locked.paid_on = paid_on
        locked.save(update_fields=["status", "payment_method", "payment_reference", "paid_on"])
    return locked
