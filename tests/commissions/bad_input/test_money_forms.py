"""Manual adjustment, mark paid, and the FX rate form."""

from datetime import UTC, date, datetime

import pytest
import time_machine
from django.db import DataError

from commissions.models import FxRate, LedgerEntry, LedgerKind, StatementStatus
from commissions.services.periods import period_close, statement_approve
from tests.commissions.period_factories import MARCH, affiliate_on_plan, entry, statement_of
from tests.factories import AffiliateFactory

from .helpers import manager_of, superuser


def test_two_maximal_adjustments_do_not_crash_the_close(client, tenant):
    # LedgerAdjustForm (commissions/forms.py) takes any 18-digit amount: two adjustments of
    # 99,999,999,999,999.9999 are each accepted, and the close's statement (MoneyField,
    # 18 digits) overflows: DataError "numeric field overflow", a 500 on the close page,
    # and the month can never close. (A plan's cpa_amount has the same range.)
    affiliate = AffiliateFactory(operator=tenant.operator, payout_currency="EUR")
    client.force_login(manager_of(tenant.operator))
    with time_machine.travel(datetime(2026, 3, 15, 12, tzinfo=UTC), tick=False):
        for _ in range(2):
            client.post(
                "/admin/commissions/ledgerentry/adjust/",
                {"affiliate": affiliate.pk, "amount": "99999999999999.9999", "memo": "bonus"},
            )
    booked = LedgerEntry.objects.filter(affiliate=affiliate, kind=LedgerKind.MANUAL_ADJUSTMENT)
    if booked.count() < 2:
        return  # the form refused the amount: fixed at the input
    with time_machine.travel(datetime(2026, 4, 2, 12, tzinfo=UTC), tick=False):
        try:
            response = client.post("/admin/commissions/period/close/", {"month": "2026-03"})
        except DataError as exc:
            pytest.fail(f"the close page answered 500: DataError {exc}")
    assert response.status_code in (200, 302)


def test_mark_paid_refuses_a_payment_date_before_the_period_ended(client, tenant):
    # statement_mark_paid (commissions/services/periods.py) refuses only a future date:
    # a March 2026 statement is recorded as paid on 0001-01-01.
    affiliate, plan = affiliate_on_plan(tenant.operator)
    entry(affiliate, LedgerKind.CPA, "100", plan=plan)
    period_close(operator=tenant.operator, month=MARCH)
    statement = statement_of(affiliate)
    statement_approve(statement=statement, user=None)
    client.force_login(manager_of(tenant.operator))
    client.post(
        "/admin/commissions/statement/",
        {
            "action": "mark_paid",
            "_selected_action": [statement.pk],
            "apply": "1",
            "method": "bank transfer",
            "paid_on": "0001-01-01",
        },
    )
    statement.refresh_from_db()
    assert statement.status == StatementStatus.APPROVED, f"paid on {statement.paid_on}"


@pytest.mark.parametrize("currency", ["usd", "$$", "EUR"])
def test_the_fx_rate_form_refuses_a_code_no_conversion_can_use(client, db, currency):
    # FxRateAdmin (commissions/admin/booking.py) uses a bare ModelForm: any 1-3 characters
    # are stored. Conversions look rates up by the uppercase ISO code and never by EUR (the
    # base), so 'usd' or '$$' is a rate that silently never applies: the pending-FX events
    # it was added for stay pending.
    client.force_login(superuser())
    response = client.post(
        "/admin/commissions/fxrate/add/",
        {"currency": currency, "date": "2026-03-13", "rate": "1.1", "source": "ecb"},
    )
    stored = list(FxRate.objects.values_list("currency", flat=True))
    assert stored in ([], ["USD"]), f"stored {stored} (status {response.status_code})"


def test_an_fx_rate_dated_9999_does_not_break_the_fx_list(client, db):
    # The add form takes 9999-12-31; the list's date hierarchy then links ?date__year=9999,
    # and Django's ChangeList computes the year's end as year 10000: ValueError, a 500.
    client.force_login(superuser())
    client.post(
        "/admin/commissions/fxrate/add/",
        {"currency": "SEK", "date": "9999-12-31", "rate": "10", "source": "ecb"},
    )
    if not FxRate.objects.filter(date=date(9999, 12, 31)).exists():
        return  # refused at the input
    page = client.get("/admin/commissions/fxrate/").content.decode()
    assert "date__year=9999" in page  # the link the list offers
    for url in (
        "/admin/commissions/fxrate/?date__year=9999",
        "/admin/commissions/fxrate/?date__year=9999&date__month=12",
    ):
        try:
            response = client.get(url)
        except (ValueError, OverflowError) as exc:
            pytest.fail(f"{url}: 500 {type(exc).__name__}: {exc}")
        assert response.status_code in (200, 302)
