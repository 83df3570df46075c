"""Reads of periods and statements: statement lines and totals, and the admin index figures."""

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from decimal import Decimal

from django.db.models import Count, Exists, OuterRef, Sum

from attribution.models import Affiliate, AffiliateStatus, Player
from events.models import Event, EventType
from revvvs.money import quantize
from revvvs.tenancy import scope_queryset

from .models import LedgerEntry, LedgerKind, PendingFx, Statement, StatementStatus
from .services.periods import month_end_utc

STATEMENT_AMOUNTS = [
    *(kind.value for kind in LedgerKind),
    "carryover_in",
    "rollover_in",
    "carryover_out",
    "revshare_written_off",
    "rollover_out",
    "net_payable",
]


def statement_as_dict(statement: Statement) -> dict:
    """A statement's totals, amounts as strings (the `close_period --json` shape)."""
    return {
        "statement_id": statement.pk,
        "affiliate_id": statement.affiliate_id,
        "currency": statement.currency,
        **{name: str(getattr(statement, name)) for name in STATEMENT_AMOUNTS},
        "status": statement.status,
    }


@dataclass(frozen=True)
class StatementLine:
    date: date
    kind: str
    player_ref: str
    brand: str
    amount: Decimal
    currency: str
    memo: str
    event_id: str


def statement_lines(*, statement: Statement) -> Iterator[StatementLine]:
    """The ledger entries a statement sums: its affiliate's entries booked into its period."""
    entries = (
        LedgerEntry.objects.filter(
            operator_id=statement.operator_id,
            affiliate_id=statement.affiliate_id,
            period=statement.period.month,
        )
        .select_related("player", "brand")
        .order_by("activity_date", "id")
    )
    for entry in entries.iterator(chunk_size=2000):
        yield StatementLine(
            date=entry.activity_date,
            kind=entry.kind,
            player_ref=entry.player.external_ref if entry.player else "",
            brand=entry.brand.name if entry.brand else "",
            amount=entry.amount,
            currency=entry.currency,
            memo=entry.memo,
            event_id=str(entry.source_event_id or ""),
        )


@dataclass(frozen=True)
class IndexFigures:
    """The admin index: this month's numbers and what needs attention."""

    month: date
    registrations: int
    ftds: int
    cpa_count: int
    # {currency: {kind: amount}} and {currency: net}; several currencies for a superuser
    commission: dict[str, dict[str, Decimal]] = field(default_factory=dict)
    net: dict[str, Decimal] = field(default_factory=dict)
    pending_applications: int = 0
    pending_fx: int = 0
    statements_to_approve: int = 0


def admin_index_figures(*, user, today: date) -> IndexFigures:
    """The figures of `today`'s month for what `user` may see (a manager: their operator)."""
    month = today.replace(day=1)
    start = datetime.combine(month, time.min, tzinfo=UTC)
    end = month_end_utc(month)
    players = scope_queryset(Player.objects.all(), user, "brand__operator")
    # Through the brand: the events index leads with the brand.
    ftd_events = scope_queryset(Event.objects.all(), user, "brand__operator")
    ledger = scope_queryset(LedgerEntry.objects.filter(period=month), user, "operator")
    commission: dict[str, dict[str, Decimal]] = {}
    net: dict[str, Decimal] = {}
    rows = ledger.values("currency", "kind").annotate(total=Sum("amount"), n=Count("id"))
    cpa_count = 0
    for row in rows.order_by("currency", "kind"):
        total = quantize(row["total"])  # SQLite's SUM of decimals is not exact
        commission.setdefault(row["currency"], {})[row["kind"]] = total
        net[row["currency"]] = net.get(row["currency"], Decimal("0")) + total
        if row["kind"] == LedgerKind.CPA:
            cpa_count += row["n"]
    return IndexFigures(
        month=month,
        registrations=players.filter(registered_at__gte=start, registered_at__lt=end).count(),
        # The player's FTD is its earliest first_deposit (as booking takes it): a resend
        # dated this month of a player who deposited before is not a new FTD.
        ftds=ftd_events.filter(
            event_type=EventType.FIRST_DEPOSIT, event_time__gte=start, event_time__lt=end
        )
        .exclude(
            Exists(
                Event.objects.filter(
                    player_id=OuterRef("player_id"),
                    event_type=EventType.FIRST_DEPOSIT,
                    event_time__lt=start,
                )
            )
        )
        .values("player_id")
        .distinct()
        .count(),
        cpa_count=cpa_count,
        commission=commission,
        net=net,
        pending_applications=scope_queryset(
            Affiliate.objects.filter(status=AffiliateStatus.PENDING), user, "operator"
        ).count(),
        pending_fx=scope_queryset(
            PendingFx.objects.filter(resolved_at__isnull=True), user, "operator"
        ).count(),
        statements_to_approve=scope_queryset(
            Statement.objects.filter(status=StatementStatus.DRAFT), user, "operator"
        ).count(),
    )
