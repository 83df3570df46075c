"""Writes of the commission side: ledger, plans, FX, periods, statements."""

from attribution.models import Player
from events.models import Event


def events_book(*, events: list[Event], newly_registered: list[Player]) -> None:
    """Book the commission effects of newly stored events (filled in by the commission engine)."""
    return None
