"""FX conversion, pending FX, reprocessing and the ECB CSV import (SPEC §5: FX)."""

from datetime import date
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from commissions.models import FxRate, LedgerKind, PendingFx
from commissions.selectors import commission_status_for_event
from commissions.services import fx_convert, fx_rates_import, pending_fx_reprocess
from commissions.services.fx import FxImportError
from events.models import Event
from tests.commissions.factories import (
    FxRateFactory,
    attributed_player,
    deal,
    entries,
    money,
    send,
    total,
)

# The daily file's shape, trailing ", " and all.
DAILY = "Date, USD, JPY, BGN, CYP, GBP, \n25 November 2026, 1.0512, 162.31, N/A, N/A, 0.8341, \n"
HIST = """Date,USD,JPY,GBP,CYP,
2026-11-25,1.0512,162.31,0.8341,N/A,
2026-11-24,1.0498,161.90,0.8329,N/A,
2026-11-23,1.0477,N/A,0.8317,N/A,
"""


def test_convert_crosses_via_eur_at_the_latest_rate_on_or_before_the_day(db):
    FxRateFactory(currency="USD", date=date(2026, 3, 13), rate=Decimal("1.25"))
    FxRateFactory(currency="GBP", date=date(2026, 3, 13), rate=Decimal("0.8"))
    FxRateFactory(currency="USD", date=date(2026, 3, 16), rate=Decimal("2"))  # after: unused
    conversion = fx_convert(
        amount=Decimal("100"), from_currency="USD", to_currency="GBP", day=date(2026, 3, 15)
    )
    assert conversion.amount == Decimal("64.0000")  # 100 / 1.25 * 0.8
    assert conversion.fx_rate == Decimal("0.64")
    assert (conversion.original_amount, conversion.original_currency) == (Decimal("100"), "USD")
    assert isinstance(conversion.amount, Decimal) and isinstance(conversion.fx_rate, Decimal)
    to_eur = fx_convert(
        amount=Decimal("10"), from_currency="USD", to_currency="EUR", day=date(2026, 3, 13)
    )
    assert to_eur.amount == Decimal("8.0000")


def test_no_rate_or_a_stale_rate_is_never_guessed(db):
    FxRateFactory(currency="USD", date=date(2026, 3, 1), rate=Decimal("1.25"))
    kwargs = dict(amount=Decimal("10"), from_currency="USD", to_currency="EUR")
    assert fx_convert(day=date(2026, 2, 28), **kwargs) is None  # before the first rate
    assert fx_convert(day=date(2026, 3, 11), **kwargs) is not None  # 10 days old
    assert fx_convert(day=date(2026, 3, 12), **kwargs) is None  # 11 days: too old
    assert (
        fx_convert(
            day=date(2026, 3, 5), amount=Decimal("1"), from_currency="JPY", to_currency="EUR"
        )
        is None
    )


def test_cpa_thresholds_use_the_converted_deposits(tenant):
    FxRateFactory(currency="USD", date=date(2026, 3, 13), rate=Decimal("1.25"))
    affiliate, _ = deal(tenant, cpa_amount=Decimal("100"), min_first_deposit=Decimal("20"))
    low = attributed_player(tenant, affiliate, ref="low")
    high = attributed_player(tenant, affiliate, ref="high")
    send(
        tenant,
        money(tenant, "first_deposit", "ftd_low", "24.99", ref="low", currency="USD"),
        money(tenant, "first_deposit", "ftd_high", "25", ref="high", currency="USD"),
    )
    assert entries(player=low) == []
    assert len(entries(player=high, kind=LedgerKind.CPA)) == 1


def test_revshare_in_another_currency_keeps_the_original_and_the_rate(tenant):
    FxRateFactory(currency="USD", date=date(2026, 3, 13), rate=Decimal("1.25"))
    affiliate, _ = deal(tenant, revshare_rate=Decimal("0.5"))
    player = attributed_player(tenant, affiliate)
    (event_id,) = send(tenant, money(tenant, "ngr_update", "n1", "100", currency="USD"))
    (entry,) = entries(player=player)
    assert (entry.amount, entry.currency) == (Decimal("40"), "EUR")
    assert (entry.original_amount, entry.original_currency) == (Decimal("100"), "USD")
    assert entry.fx_rate == Decimal("0.8")
    (api_entry,) = tenant.get_event(event_id).json()["ledger_entries"]
    assert api_entry["amount"] == "40.0000"
    assert api_entry["original_amount"] == "100.0000"
    assert api_entry["original_currency"] == "USD"
    assert api_entry["fx_rate"] == "0.8000000000"


def test_missing_rate_waits_as_pending_fx_and_reprocess_applies_it_once(tenant):
    affiliate, _ = deal(tenant, revshare_rate=Decimal("0.5"), cpa_amount=Decimal("30"))
    player = attributed_player(tenant, affiliate)
    response = tenant.post(money(tenant, "ngr_update", "n1", "100", currency="SEK"))
    assert response.status_code == 201  # accepted: only its commission waits
    event = Event.objects.get(pk=response.json()["event_id"])
    ftd = send(tenant, money(tenant, "first_deposit", "ftd1", "50", currency="SEK"))[0]
    assert entries(player=player) == []
    assert PendingFx.objects.filter(resolved_at__isnull=True).count() == 2
    status = commission_status_for_event(event=event)
    assert status["status"] == "pending_fx"
    assert (status["from_currency"], status["to_currency"], status["rate_date"]) == (
        "SEK",
        "EUR",
        "2026-03-15",
    )

    assert pending_fx_reprocess().applied == 0  # still no rate: nothing moves
    assert entries(player=player) == []

    FxRateFactory(currency="SEK", date=date(2026, 3, 13), rate=Decimal("10"))
    result = pending_fx_reprocess(operator=tenant.operator)
    assert (result.applied, result.still_pending) == (2, 0)
    assert total(player=player, kind=LedgerKind.REVSHARE) == Decimal("5")
    (cpa,) = entries(player=player, kind=LedgerKind.CPA)
    assert str(cpa.source_event_id) == ftd
    assert commission_status_for_event(event=event)["status"] == "fx_applied"

    assert pending_fx_reprocess().applied == 0  # exactly once
    out = StringIO()
    call_command("reprocess_pending", stdout=out)
    assert "0 pending-FX events applied" in out.getvalue()
    assert total(player=player) == Decimal("35")


def test_pending_fx_of_an_older_update_does_not_override_a_newer_one(tenant):
    affiliate, _ = deal(tenant, revshare_rate=Decimal("0.5"))
    player = attributed_player(tenant, affiliate)
    send(
        tenant,
        money(tenant, "ngr_update", "old", "100", currency="SEK", when="2026-03-10T10:00:00Z"),
    )
    send(tenant, money(tenant, "ngr_update", "new", "10", when="2026-03-20T10:00:00Z"))
    FxRateFactory(currency="SEK", date=date(2026, 3, 10), rate=Decimal("10"))
    pending_fx_reprocess()
    assert total(player=player) == Decimal("5")  # the newer EUR total stands


def test_events_of_unattributed_players_never_wait_for_fx(tenant):
    response = tenant.post(money(tenant, "first_deposit", "ftd1", "50", currency="SEK"))
    assert response.status_code == 201
    assert PendingFx.objects.count() == 0


def test_import_the_daily_ecb_csv(db):
    result = fx_rates_import(text=DAILY)
    assert (result.created, result.skipped) == (3, 2)
    assert FxRate.objects.get(currency="USD", date=date(2026, 11, 25)).rate == Decimal("1.0512")
    assert not FxRate.objects.filter(currency="BGN").exists()
    again = fx_rates_import(text=DAILY)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 3)


def test_import_the_historical_ecb_csv_with_the_command(db, tmp_path):
    path = tmp_path / "eurofxref-hist.csv"
    path.write_text(HIST)
    out = StringIO()
    call_command("import_fx_rates", str(path), stdout=out)
    assert "8 rates created" in out.getvalue()
    assert FxRate.objects.count() == 8
    call_command("import_fx_rates", str(path), stdout=StringIO())
    assert FxRate.objects.count() == 8
    path.write_text(HIST.replace("1.0498", "1.0499"))
    out = StringIO()
    call_command("import_fx_rates", str(path), stdout=out)
    assert "0 rates created, 1 updated, 7 unchanged" in out.getvalue()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("Currency,USD\n2026-01-01,1.1\n", "header must start with 'Date'"),
        ("Date,USD\nyesterday,1.1\n", "line 2: 'yesterday' is not a date"),
        ("Date,USD\n2026-01-01,abc\n", "line 2: USD 'abc' is not a decimal number"),
        ("Date,USD\n2026-01-01,-1\n", "positive"),
        ("Date,usd1\n2026-01-01,1\n", "not an ISO 4217"),
    ],
)
def test_import_rejects_what_is_not_an_ecb_csv(db, text, message):
    with pytest.raises(FxImportError, match=message):
        fx_rates_import(text=text)
    assert FxRate.objects.count() == 0


def test_import_command_reports_a_missing_file(db, tmp_path):
    with pytest.raises(CommandError, match="cannot read"):
        call_command("import_fx_rates", str(tmp_path / "nope.csv"))


# --- A decision that needs another event's amount waits for that amount's rate -----------

BASELINE = dict(
    cpa_amount=Decimal("100"),
    min_first_deposit=Decimal("10"),
    min_total_deposits=Decimal("100"),
    clawback_days=90,
)


def _cpa_net(player):
    return total(player=player, kind__in=[LedgerKind.CPA, LedgerKind.CPA_REVERSAL])


def _baseline_player(tenant):
    affiliate, _ = deal(tenant, **BASELINE)
    return attributed_player(tenant, affiliate)


def _qualifying(tenant):
    """60 + 50 EUR: the BASELINE's CPA (100) on the second deposit."""
    return [
        money(tenant, "first_deposit", "ftd", "60", when="2026-03-02T10:00:00Z"),
        money(tenant, "deposit", "d1", "50", when="2026-03-03T10:00:00Z"),
    ]


def _chargeback_of_d1(tenant):
    return money(
        tenant, "chargeback", "cb", "50", when="2026-03-05T10:00:00Z", deposit_idempotency_key="d1"
    )


def test_a_clawback_waits_for_the_rate_of_a_deposit_that_may_keep_the_cpa(tenant):
    player = _baseline_player(tenant)
    send(tenant, *_qualifying(tenant))
    assert _cpa_net(player) == Decimal("100")
    # After the CPA a deposit books nothing, so nothing waits for its rate of its own.
    send(
        tenant,
        money(tenant, "deposit", "dnok", "1000", currency="NOK", when="2026-03-04T10:00:00Z"),
    )
    assert not PendingFx.objects.exists()
    send(tenant, _chargeback_of_d1(tenant))
    # 60 + 50 + 1000 NOK − 50: not known to be below the baseline until NOK converts.
    assert _cpa_net(player) == Decimal("100")
    pending = PendingFx.objects.get()
    assert pending.event.idempotency_key == "cb"
    assert (pending.from_currency, pending.to_currency, pending.rate_date) == (
        "NOK",
        "EUR",
        date(2026, 3, 4),
    )
    FxRateFactory(currency="NOK", date=date(2026, 3, 4), rate=Decimal("11.5"))
    assert pending_fx_reprocess().applied == 1
    assert _cpa_net(player) == Decimal("100")  # 60 + 86.96 ≥ 100: the CPA stands


def test_the_waiting_clawback_claws_back_when_the_deposit_is_too_small(tenant):
    player = _baseline_player(tenant)
    send(
        tenant,
        *_qualifying(tenant),
        money(tenant, "deposit", "dnok", "100", currency="NOK", when="2026-03-04T10:00:00Z"),
        _chargeback_of_d1(tenant),
    )
    assert _cpa_net(player) == Decimal("100")
    FxRateFactory(currency="NOK", date=date(2026, 3, 4), rate=Decimal("11.5"))
    pending_fx_reprocess()
    assert _cpa_net(player) == Decimal("0")  # 60 + 8.70 < 100: clawed back, once
    assert pending_fx_reprocess().applied == 0
    assert _cpa_net(player) == Decimal("0")


def test_a_cpa_waits_for_the_rate_of_an_earlier_chargeback(tenant):
    player = _baseline_player(tenant)
    send(
        tenant,
        money(tenant, "chargeback", "cb", "500", currency="NOK", when="2026-03-02T09:00:00Z"),
    )
    send(tenant, *_qualifying(tenant))
    # 110 EUR less 500 NOK: not known to reach the baseline until NOK converts.
    assert _cpa_net(player) == Decimal("0")
    assert set(PendingFx.objects.values_list("from_currency", flat=True)) == {"NOK"}
    FxRateFactory(currency="NOK", date=date(2026, 3, 2), rate=Decimal("11.5"))
    pending_fx_reprocess()
    assert _cpa_net(player) == Decimal("0")  # 110 − 43.48 = 66.52 < 100: no CPA
    assert PendingFx.objects.filter(resolved_at__isnull=True).count() == 0
