"""Reads of the commission side for the API, the admin and the portal."""

from events.models import Event

from .models import LedgerEntry, PendingFx


def _money(value) -> str | None:
    return None if value is None else str(value)


def ledger_entries_for_event(*, event: Event) -> list[dict]:
    """The ledger entries an event booked, as API dicts (money as strings)."""
    rows = LedgerEntry.objects.filter(source_event=event).order_by("id")
    return [
        {
            "entry_id": row.pk,
            "kind": row.kind,
            "amount": _money(row.amount),
            "currency": row.currency,
            "affiliate_id": row.affiliate_id,
            "period": row.period.strftime("%Y-%m"),
            "activity_date": row.activity_date.isoformat(),
            "original_amount": _money(row.original_amount),
            "original_currency": row.original_currency or None,
            "fx_rate": _money(row.fx_rate),
        }
        for row in rows
    ]


def commission_status_for_event(*, event: Event) -> dict | None:
    """For an event whose commission effect waited for an FX rate: where it stands.

    None when the event never waited. Otherwise `{"status": "pending_fx" | "fx_applied",
    "from_currency", "to_currency", "rate_date", "since", "resolved_at"}`."""
    pending = PendingFx.objects.filter(event=event).first()
    if pending is None:
        return None
    return {
        "status": "pending_fx" if pending.resolved_at is None else "fx_applied",
        "from_currency": pending.from_currency,
        "to_currency": pending.to_currency,
        "rate_date": pending.rate_date.isoformat(),
        "since": pending.created_at.isoformat().replace("+00:00", "Z"),
        "resolved_at": (
            pending.resolved_at.isoformat().replace("+00:00", "Z") if pending.resolved_at else None
        ),
    }


def pending_fx_count(*, operator_id: int | None) -> int:
    """Events waiting for an FX rate (all operators when operator_id is None)."""
    rows = PendingFx.objects.filter(resolved_at__isnull=True)
    if operator_id is not None:
        rows = rows.filter(operator_id=operator_id)
    return rows.count()
