"""FX: ECB reference rates (1 EUR = `rate` units), conversion, and the ECB CSV import.

A conversion crosses via EUR: amount / rate(from) * rate(to), with the rates of the latest
ECB day on or before the event's date, no older than FX_MAX_RATE_AGE_DAYS (the ECB skips
weekends and TARGET holidays; a rate older than that would be a guess). The cross rate is
kept to 10 places (the precision of `LedgerEntry.fx_rate`) and the converted amount is
`quantize(amount * fx_rate)`: ROUND_HALF_UP to 4 places, so anyone can re-derive an entry
from its `original_amount` and `fx_rate`. Decimal only, never a float."""

import bisect
import csv
import io
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from django.db import transaction

from revvvs.money import quantize

from ..models import FxRate

BASE_CURRENCY = "EUR"
FX_MAX_RATE_AGE_DAYS = 10
FX_RATE_QUANTUM = Decimal("0.0000000001")  # LedgerEntry.fx_rate has 10 decimal places


@dataclass(frozen=True)
class Conversion:
    """An amount in the target currency and how it was obtained (`fx_rate` None: no FX)."""

    amount: Decimal
    original_amount: Decimal | None = None
    original_currency: str = ""
    fx_rate: Decimal | None = None


class FxTable:
    """The rates a batch needs, loaded with one query (`fx_table_load`)."""

    def __init__(self, rows: Iterable[tuple[str, date, Decimal]] = ()):
        self._dates: dict[str, list[date]] = defaultdict(list)
        self._rates: dict[str, list[Decimal]] = defaultdict(list)
        for currency, day, rate in sorted(rows):
            self._dates[currency].append(day)
            self._rates[currency].append(rate)

    def rate(self, currency: str, day: date) -> Decimal | None:
        """1 EUR in `currency` on `day`: the latest ECB rate on or before it, or None."""
        if currency == BASE_CURRENCY:
            return Decimal(1)
        dates = self._dates.get(currency)
        if not dates:
            return None
        index = bisect.bisect_right(dates, day) - 1
        if index < 0 or (day - dates[index]).days > FX_MAX_RATE_AGE_DAYS:
            return None
        return self._rates[currency][index]

    def cross(self, from_currency: str, to_currency: str, day: date) -> Decimal | None:
        """Units of `to_currency` per unit of `from_currency` on `day`, or None."""
        rate_from = self.rate(from_currency, day)
        rate_to = self.rate(to_currency, day)
        if rate_from is None or rate_to is None:
            return None
        return (rate_to / rate_from).quantize(FX_RATE_QUANTUM, rounding=ROUND_HALF_UP)

    def convert(
        self, amount: Decimal, from_currency: str, to_currency: str, day: date
    ) -> Conversion | None:
        """`amount` in `to_currency`, or None when a rate is missing (never guessed)."""
        if from_currency == to_currency or not from_currency:
            return Conversion(amount=amount)
        fx_rate = self.cross(from_currency, to_currency, day)
        if fx_rate is None:
            return None
        return Conversion(
            amount=quantize(amount * fx_rate),
            original_amount=amount,
            original_currency=from_currency,
            fx_rate=fx_rate,
        )


def fx_table_load(*, needs: Iterable[tuple[str, str, date]]) -> FxTable:
    """Load, in one query, the rates for conversions (from_currency, to_currency, day)."""
    currencies: set[str] = set()
    days: list[date] = []
    for from_currency, to_currency, day in needs:
        if from_currency and from_currency != to_currency:
            currencies.update({from_currency, to_currency})
            days.append(day)
    currencies.discard(BASE_CURRENCY)
    if not currencies:
        return FxTable()
    rows = FxRate.objects.filter(
        currency__in=currencies,
        date__gte=min(days) - timedelta(days=FX_MAX_RATE_AGE_DAYS),
        date__lte=max(days),
    ).values_list("currency", "date", "rate")
    return FxTable(rows)


def fx_convert(
    *, amount: Decimal, from_currency: str, to_currency: str, day: date
) -> Conversion | None:
    """Convert one amount (one query); None when there is no rate for that day."""
    table = fx_table_load(needs=[(from_currency, to_currency, day)])
    return table.convert(amount, from_currency, to_currency, day)


# --- ECB CSV import ---------------------------------------------------------------------


class FxImportError(ValueError):
    """The file is not an ECB reference-rate CSV; the message says where and why."""


@dataclass(frozen=True)
class FxImportResult:
    created: int
    updated: int
    unchanged: int
    skipped: int  # 'N/A' or empty cells (currencies the ECB did not quote that day)


def _parse_ecb_date(text: str, line: int) -> date:
    text = text.strip()
    # eurofxref-hist.csv: 2026-11-25; the daily eurofxref.csv: 25 November 2026.
    for fmt in ("%Y-%m-%d", "%d %B %Y"):
        try:
            return datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    raise FxImportError(f"line {line}: '{text}' is not a date (expected 2026-11-25)")


# The FxRate column holds 20 digits, 10 of them decimals: rates below 1e10.
FX_RATE_MAX_ADJUSTED = 9


def fx_rates_parse(*, text: str) -> tuple[list[tuple[str, date, Decimal]], int]:
    """The (currency, date, rate) triples of an ECB CSV, and the number of skipped cells.

    Raises:
        FxImportError: with the line (as counted in the file) of the first problem.
    """
    # Any line ending (CR LF, LF, or an old Mac's CR alone) reads the same.
    text = text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    reader = csv.reader(io.StringIO(text))
    header: list[str] | None = None
    currencies: list[str] = []
    rates: dict[tuple[str, date], tuple[Decimal, int]] = {}
    skipped = 0
    try:
        for row in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in row):
                continue
            if header is None:
                header = [cell.strip() for cell in row]
                currencies = _header_currencies(header, line)
                continue
            skipped += _parse_row(row, line, currencies, rates)
    except csv.Error as exc:
        raise FxImportError(f"line {reader.line_num}: not a CSV row ({exc})") from None
    if header is None:
        raise FxImportError("the file is empty")
    return [(c, d, rate) for (c, d), (rate, _) in rates.items()], skipped


def _header_currencies(header: list[str], line: int) -> list[str]:
    if header[0].lower() != "date":
        raise FxImportError(
            f"line {line}: the header must start with 'Date' (an ECB reference-rate CSV)"
        )
    currencies = header[1:]
    seen = set()
    for currency in currencies:
        if not currency:
            continue
        if len(currency) != 3 or not currency.isascii() or not currency.isalpha():
            raise FxImportError(f"line {line}: '{currency}' is not an ISO 4217 currency code")
        if not currency.isupper():
            raise FxImportError(f"line {line}: '{currency}' is not an ISO 4217 currency code")
        if currency in seen:
            raise FxImportError(f"line {line}: {currency} appears twice in the header")
        seen.add(currency)
    return currencies


def _parse_row(row, line, currencies, rates) -> int:
    """Adds the row's rates to `rates`; returns how many cells it skipped (N/A, empty)."""
    cells = row[1:]
    named = max((i + 1 for i, c in enumerate(currencies) if c), default=0)
    if len(cells) < named:
        raise FxImportError(
            f"line {line}: {len(cells)} rates where the header names {named} columns "
            "(a truncated row)"
        )
    if any(cell.strip() for cell in cells[len(currencies) :]):
        raise FxImportError(f"line {line}: more cells than the header has columns")
    day = _parse_ecb_date(row[0], line)
    skipped = 0
    for currency, cell in zip(currencies, cells, strict=False):
        cell = cell.strip()
        if not currency:
            continue
        if not cell or cell.upper() == "N/A":
            skipped += 1
            continue
        try:
            rate = Decimal(cell)
        except InvalidOperation:
            raise FxImportError(
                f"line {line}: {currency} '{cell}' is not a decimal number"
            ) from None
        if not rate.is_finite() or rate <= 0:
            raise FxImportError(f"line {line}: {currency} rate must be a positive number")
        if rate.adjusted() > FX_RATE_MAX_ADJUSTED:
            raise FxImportError(f"line {line}: {currency} rate {cell} is too large (below 1e10)")
        quantized = rate.quantize(FX_RATE_QUANTUM)
        if quantized <= 0:
            raise FxImportError(
                f"line {line}: {currency} rate {cell} rounds to 0 at 10 decimal places"
            )
        earlier = rates.get((currency, day))
        if earlier is not None and earlier[0] != quantized:
            raise FxImportError(
                f"line {line}: {currency} on {day} is {cell} here and {earlier[0]} on line "
                f"{earlier[1]}: which one is the ECB's?"
            )
        rates.setdefault((currency, day), (quantized, line))
    return skipped


def fx_rates_import(*, text: str, source: str = "ecb") -> FxImportResult:
    """Import an ECB reference-rate CSV (daily `eurofxref.csv` or `eurofxref-hist.csv`).

    Idempotent: a rate already stored unchanged is left alone; a revised one is updated
    (entries already booked keep the rate they were booked at, in `fx_rate`).

    Raises:
        FxImportError: the file is not an ECB CSV; nothing is imported.
    """
    rates, skipped = fx_rates_parse(text=text)
    if not rates:
        return FxImportResult(created=0, updated=0, unchanged=0, skipped=skipped)
    with transaction.atomic():
        existing = {
            (row.currency, row.date): row
            for row in FxRate.objects.select_for_update().filter(
                currency__in={c for c, _, _ in rates},
                date__gte=min(d for _, d, _ in rates),
                date__lte=max(d for _, d, _ in rates),
            )
        }
        new, changed, unchanged = [], [], 0
        for currency, day, rate in rates:
            row = existing.get((currency, day))
            if row is None:
                new.append(FxRate(currency=currency, date=day, rate=rate, source=source))
                existing[(currency, day)] = new[-1]
            elif row.rate != rate:
                row.rate, row.source = rate, source
                if row.pk is not None:
                    changed.append(row)
            else:
                unchanged += 1
        FxRate.objects.bulk_create(new, batch_size=2000)
        FxRate.objects.bulk_update(changed, ["rate", "source"], batch_size=2000)
    return FxImportResult(
        created=len(new), updated=len(changed), unchanged=unchanged, skipped=skipped
    )
