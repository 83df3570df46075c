"""Writes of the commission side: ledger, plans, FX, periods, statements."""

from attribution.models import Player
from events.models import Event


def events_book(*, events: list[Event], newly_registered: list[Player]) -> None:
    """Book the commission effects of newly stored events (filled in by the commission engine)."""
    return None


def ledger_player_reassigned(*, player: Player, from_affiliate, to_affiliate, author) -> None:
    """Called by attribution's reassignment service, in its transaction, after the player
    moved: reverse the old affiliate's entries for the player and book them for the new one
    in the open period (filled in by the commission engine)."""
    return None
