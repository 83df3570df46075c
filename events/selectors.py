import uuid

from revvvs.models import Operator

from .models import Event


def event_detail(*, operator: Operator, event_id: uuid.UUID) -> dict | None:
    """The event as the API shows it to the operator that sent it, with its effects."""
    from attribution.selectors import attribution_for_event
    from commissions.selectors import commission_status_for_event, ledger_entries_for_event

    event = Event.objects.select_related("player").filter(operator=operator, id=event_id).first()
    if event is None:
        return None
    detail = {
        "event_id": str(event.id),
        "idempotency_key": event.idempotency_key,
        "status": "accepted",
        "event_type": event.event_type,
        "event_time": event.event_time.isoformat().replace("+00:00", "Z"),
        "received_at": event.received_at.isoformat().replace("+00:00", "Z"),
        "brand_id": str(event.brand_id),
        "player_external_ref": event.player.external_ref,
        "payload": event.payload,
        "warnings": event.warnings,
        "ledger_entries": ledger_entries_for_event(event=event),
    }
    attribution = attribution_for_event(event=event)
    if attribution is not None:
        detail["attribution"] = attribution
    commission = commission_status_for_event(event=event)
    if commission is not None:
        detail["commission"] = commission
    return detail
