"""Writes of the commission side.

`booking` books events into the ledger (CPA, RevShare, FX, reattribution, adjustments);
`fx` keeps the ECB rates and converts; `periods` closes months into statements and moves
statements to approved and paid."""

from .booking import (  # noqa: F401
    events_book,
    ledger_adjust,
    ledger_player_reassigned,
    pending_fx_reprocess,
    period_for,
    plan_assign,
    plan_assignment_change,
)
from .fx import fx_convert, fx_rates_import  # noqa: F401
