"""Admin: plans, assignments, ledger, FX rates, pending FX."""
