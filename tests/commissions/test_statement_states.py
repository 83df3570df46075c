"""Statement states: draft → approved → paid, and the wrong transitions."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied
from django.utils import timezone

from commissions.models import LedgerKind, StatementStatus
from commissions.services.periods import (
    StatementTransitionError,
    period_close,
    statement_approve,
    statement_mark_paid,
)
from tests.commissions.period_factories import MARCH, affiliate_on_plan, entry, statement_of
from tests.factories import ManagerFactory, OperatorFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator():
    return OperatorFactory()


@pytest.fixture
def manager(operator):
    return ManagerFactory(operator=operator)


@pytest.fixture
def statement(operator):
    affiliate, plan = affiliate_on_plan(operator)
    entry(affiliate, LedgerKind.CPA, "150", plan=plan)
    period_close(operator=operator, month=MARCH)
    return statement_of(affiliate)


def pay(statement, user, **fields):
    defaults = {
        "method": "bank transfer",
        "reference": "TX-123",
        "paid_on": timezone.now().date(),
    }
    return statement_mark_paid(statement=statement, user=user, **{**defaults, **fields})


def test_draft_is_approved_then_paid(statement, manager):
    assert statement.status == StatementStatus.DRAFT

    approved = statement_approve(statement=statement, user=manager)
    assert approved.status == StatementStatus.APPROVED
    assert approved.approved_by == manager and approved.approved_at is not None

    today = timezone.now().date()
    paid = pay(statement, manager, method=" Skrill ", reference="SK-9", paid_on=today)
    statement.refresh_from_db()
    assert paid.status == statement.status == StatementStatus.PAID
    assert (statement.payment_method, statement.payment_reference) == ("Skrill", "SK-9")
    assert statement.paid_on == today
    assert statement.net_payable == Decimal("150")  # the numbers never change


def test_only_a_draft_can_be_approved(statement, manager):
    statement_approve(statement=statement, user=manager)
    with pytest.raises(StatementTransitionError, match="only a draft"):
        statement_approve(statement=statement, user=manager)
    pay(statement, manager)
    with pytest.raises(StatementTransitionError, match="is paid"):
        statement_approve(statement=statement, user=manager)


def test_only_an_approved_statement_can_be_paid(statement, manager):
    with pytest.raises(StatementTransitionError, match="only an approved"):
        pay(statement, manager)
    statement.refresh_from_db()
    assert statement.status == StatementStatus.DRAFT and statement.paid_on is None
    statement_approve(statement=statement, user=manager)
    pay(statement, manager)
    with pytest.raises(StatementTransitionError, match="is paid"):
        pay(statement, manager)


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"method": "  "}, "payment method is required"),
        ({"paid_on": None}, "payment date is required"),
        ({"paid_on": timezone.now().date() + timedelta(days=2)}, "in the future"),
    ],
)
def test_payment_details_are_checked(statement, manager, fields, message):
    statement_approve(statement=statement, user=manager)
    with pytest.raises(StatementTransitionError, match=message):
        pay(statement, manager, **fields)
    statement.refresh_from_db()
    assert statement.status == StatementStatus.APPROVED


def test_a_statement_with_nothing_to_pay_cannot_be_paid(operator, manager):
    affiliate, plan = affiliate_on_plan(operator, minimum_payout=Decimal("500"))
    entry(affiliate, LedgerKind.CPA, "100", plan=plan)
    period_close(operator=operator, month=MARCH)
    statement = statement_of(affiliate)
    statement_approve(statement=statement, user=manager)

    with pytest.raises(StatementTransitionError, match="nothing to pay"):
        pay(statement, manager)


def test_a_manager_cannot_move_another_operators_statement(statement):
    stranger = ManagerFactory()
    with pytest.raises(PermissionDenied):
        statement_approve(statement=statement, user=stranger)
    statement.refresh_from_db()
    assert statement.status == StatementStatus.DRAFT
