"""The close's first month, the month argument, and statements that add up (each test
failed on the code before its fix)."""

import csv
import io
from datetime import date
from decimal import Decimal
from io import StringIO

import pytest
from django.contrib.auth.models import Permission
from django.core.management import CommandError, call_command

from commissions.models import LedgerKind, Period, PeriodStatus
from commissions.services.periods import PeriodError, period_close
from tests.commissions.period_factories import (
    MARCH,
    affiliate_on_plan,
    entry,
    statement_of,
)
from tests.factories import ManagerFactory, OperatorFactory

pytestmark = pytest.mark.django_db

OCT, NOV, DEC = date(2026, 10, 1), date(2026, 11, 1), date(2026, 12, 1)


def run(*args):
    out, err = StringIO(), StringIO()
    call_command("close_period", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


# --- months close in order: the first close ------------------------------------------------


def test_the_first_close_cannot_be_a_month_before_the_earliest_entries():
    """docs/commissions.md: "The first close of an operator must be its earliest month with
    ledger entries". A typo (2016-03 for 2026-03) closes an empty month ten years back, and
    from then on months close in order: 2026-03 is refused until the manager has closed the
    119 empty months in between, one by one (the Periods list only offers months with
    entries). Irreversible."""
    operator = OperatorFactory()
    affiliate, plan = affiliate_on_plan(operator)
    entry(affiliate, LedgerKind.CPA, "100", plan=plan)

    with pytest.raises(PeriodError, match="2026-03"):
        period_close(operator=operator, month=date(2016, 3, 1))

    assert not Period.objects.filter(status=PeriodStatus.CLOSED).exists()
    period_close(operator=operator, month=MARCH)  # the real first month still closes


# --- close_period arguments ------------------------------------------------------------


@pytest.mark.parametrize("value", ["2026-1", "2026-3", " 2026-1"])
def test_close_period_refuses_a_month_that_is_not_yyyy_mm(value):
    """The command (and the admin page) documents YYYY-MM, but `month_parse` uses strptime,
    whose %m takes one digit: "2026-1" (a typo of 2026-10/11/12?) closes January, an
    irreversible action, with exit 0."""
    OperatorFactory()
    with pytest.raises(CommandError, match="YYYY-MM"):
        run(value)
    assert not Period.objects.filter(status=PeriodStatus.CLOSED).exists()


# --- the statement adds up ---------------------------------------------------------------


def test_a_statement_with_reset_negative_revshare_reconciles_to_its_net_payable(client):
    """Carryover off: the month's negative RevShare (-100) resets to zero and the CPA (150)
    is paid. The statement and its CSV show revshare -100, cpa 150, carryovers and
    rollovers 0 and net payable 150: nothing says where the other 100 came from, so the
    statement is not "exactly the sum of its lines" (docs) and an affiliate or auditor
    cannot reconcile it. The reset should be a total of its own (e.g. revshare_reset)."""
    operator = OperatorFactory()
    affiliate, plan = affiliate_on_plan(operator, negative_carryover=False)
    entry(affiliate, LedgerKind.REVSHARE, "-100", plan=plan)
    entry(affiliate, LedgerKind.CPA, "150", plan=plan)
    period_close(operator=operator, month=MARCH)
    statement = statement_of(affiliate)
    assert statement.net_payable == Decimal("150")
    manager = ManagerFactory(operator=operator)
    manager.user_permissions.add(*Permission.objects.filter(content_type__app_label="commissions"))
    client.force_login(manager)

    response = client.get(f"/admin/commissions/statement/{statement.pk}/csv/")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    totals = {row[1]: Decimal(row[4]) for row in rows if row and row[0] == "total"}

    going_out = {"net_payable", "carryover_out", "rollover_out"}
    brought = sum(amount for name, amount in totals.items() if name not in going_out)
    assert brought - totals["carryover_out"] - totals["rollover_out"] == totals["net_payable"]
