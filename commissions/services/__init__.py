"""Writes of the commission side.

`booking` books events into the ledger (CPA, RevShare, FX, reattribution, adjustments);
`periods` closes months into statements and moves statements to approved and paid."""

from .booking import events_book, ledger_player_reassigned  # noqa: F401
