"""The ledger is append-only in the database, not only in the code and the admin."""

from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, transaction

from commissions.models import LedgerEntry, LedgerKind
from tests.commissions.period_factories import affiliate_on_plan, entry
from tests.factories import OperatorFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def booked():
    affiliate, plan = affiliate_on_plan(OperatorFactory())
    return entry(affiliate, LedgerKind.CPA, "100", plan=plan)


def test_an_entry_cannot_be_updated(booked):
    with pytest.raises(IntegrityError, match="the ledger is append-only: UPDATE"):
        with transaction.atomic():
            LedgerEntry.objects.filter(pk=booked.pk).update(amount=Decimal("1000"))
    booked.refresh_from_db()
    assert booked.amount == Decimal("100")


def test_an_entry_cannot_be_deleted_even_in_raw_sql(booked):
    with pytest.raises(IntegrityError, match="the ledger is append-only: DELETE"):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f"DELETE FROM {LedgerEntry._meta.db_table} WHERE id = %s", [booked.pk])
    assert LedgerEntry.objects.filter(pk=booked.pk).exists()


def test_new_entries_still_go_in(booked):
    entry(booked.affiliate, LedgerKind.MANUAL_ADJUSTMENT, "-100", plan=None)
    assert LedgerEntry.objects.filter(affiliate=booked.affiliate).count() == 2
