"""Money is Decimal end to end: these are the project-wide digits and quantization."""

from decimal import ROUND_HALF_UP, Decimal

from django.db import models

MONEY_MAX_DIGITS = 18
MONEY_DECIMAL_PLACES = 4
CENT = Decimal("0.01")
MONEY_QUANTUM = Decimal("0.0001")


def MoneyField(**kwargs) -> models.DecimalField:  # noqa: N802 - reads like a field class
    kwargs.setdefault("max_digits", MONEY_MAX_DIGITS)
    kwargs.setdefault("decimal_places", MONEY_DECIMAL_PLACES)
    return models.DecimalField(**kwargs)


def quantize(amount: Decimal, quantum: Decimal = MONEY_QUANTUM) -> Decimal:
    return amount.quantize(quantum, rounding=ROUND_HALF_UP)
