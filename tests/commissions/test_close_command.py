"""The close_period command: --json, --operator, errors, progress only on a terminal."""

import json
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from commissions.models import LedgerKind, Period, PeriodStatus, Statement
from tests.commissions.period_factories import MARCH, affiliate_on_plan, entry
from tests.factories import OperatorFactory

pytestmark = pytest.mark.django_db


def run(*args):
    out, err = StringIO(), StringIO()
    call_command("close_period", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_json_prints_every_statement(db):
    operator = OperatorFactory()
    first, plan = affiliate_on_plan(operator, tiers=[("1000", "0.30")])
    second, second_plan = affiliate_on_plan(operator, minimum_payout=Decimal("50"))
    entry(first, LedgerKind.REVSHARE, "500", plan=plan)
    entry(first, LedgerKind.CPA, "100.5", plan=plan)
    entry(second, LedgerKind.CPA, "20", plan=second_plan)

    out, err = run("2026-03", "--json")

    body = json.loads(out)
    assert body["period"] == "2026-03" and body["operator_id"] == operator.pk
    assert body["already_closed"] is False
    by_affiliate = {s["affiliate_id"]: s for s in body["statements"]}
    assert set(by_affiliate) == {first.pk, second.pk}
    assert by_affiliate[first.pk]["cpa"] == "100.5000"
    assert by_affiliate[first.pk]["revshare"] == "500.0000"
    assert by_affiliate[first.pk]["revshare_tier_adjustment"] == "100.0000"
    assert by_affiliate[first.pk]["net_payable"] == "700.5000"
    assert by_affiliate[first.pk]["currency"] == "EUR"
    assert by_affiliate[first.pk]["status"] == "draft"
    assert by_affiliate[second.pk]["net_payable"] == "0.0000"
    assert by_affiliate[second.pk]["rollover_out"] == "20.0000"
    assert err == ""  # not a terminal: no progress

    again = json.loads(run("2026-03", "--json")[0])
    assert again["already_closed"] is True
    assert again["statements"] == body["statements"]


def test_text_output_and_already_closed(db):
    operator = OperatorFactory(name="Acme")
    affiliate, plan = affiliate_on_plan(operator)
    entry(affiliate, LedgerKind.CPA, "10", plan=plan)

    out, _ = run("2026-03")
    assert "Closed 2026-03 for Acme: 1 statements" in out
    out, _ = run("2026-03")
    assert "already closed" in out and "nothing changed" in out
    assert Statement.objects.count() == 1


def test_operator_is_required_with_several_operators(db):
    first, second = OperatorFactory(), OperatorFactory()
    affiliate, plan = affiliate_on_plan(second)
    entry(affiliate, LedgerKind.CPA, "10", plan=plan)

    with pytest.raises(CommandError, match="several operators: pass --operator"):
        run("2026-03")
    run("2026-03", "--operator", str(second.pk))

    assert Period.objects.get(month=MARCH).operator == second
    assert not Period.objects.filter(operator=first).exists()
    with pytest.raises(CommandError, match="no operator with id"):
        run("2026-03", "--operator", "999999")


@pytest.mark.parametrize("month", ["2026-13", "03-2026", "2026/03", "march"])
def test_bad_month_format(db, month):
    OperatorFactory()
    with pytest.raises(CommandError, match="give it as YYYY-MM"):
        run(month)


def test_month_not_ended(db):
    OperatorFactory()
    this_month = f"{timezone.now():%Y-%m}"
    with pytest.raises(CommandError, match="has not ended yet"):
        run(this_month)
    assert not Period.objects.filter(status=PeriodStatus.CLOSED).exists()


def test_progress_is_shown_on_a_terminal(db, monkeypatch):
    operator = OperatorFactory()
    affiliate, plan = affiliate_on_plan(operator)
    entry(affiliate, LedgerKind.CPA, "10", plan=plan)

    class Terminal(StringIO):
        def isatty(self):
            return True

    out, err = Terminal(), StringIO()
    call_command("close_period", "2026-03", stdout=out, stderr=err)

    assert "\rclosing: 100 %" in err.getvalue()
    assert "Closed 2026-03" in out.getvalue()
