from events.models import Event


def ledger_entries_for_event(*, event: Event) -> list[dict]:
    """The ledger entries an event booked, as API dicts."""
    return []
