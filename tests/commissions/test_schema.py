"""The database constraints that money relies on exist after the migrations, and the
indexes the hot paths need are there (a migration can drop them as a side effect)."""

import pytest
from django.db import connection

pytestmark = pytest.mark.django_db


def constraints(table):
    with connection.cursor() as cursor:
        return connection.introspection.get_constraints(cursor, table)


def test_a_cpa_and_its_reversal_are_once_per_player_in_the_database():
    ledger = constraints("commissions_ledgerentry")
    for name in ("ledger_cpa_once_per_player", "ledger_cpa_reversal_once_per_player"):
        assert name in ledger, f"{name} is missing"
        assert ledger[name]["unique"] is True
        assert ledger[name]["columns"] == ["player_id"]


def test_ngr_state_is_one_row_per_player_and_month():
    ngr = constraints("commissions_playermonthngr")
    assert ngr["ngr_one_row_per_player_month"]["unique"] is True
    assert ngr["ngr_one_row_per_player_month"]["columns"] == ["player_id", "month"]


def test_the_idempotency_key_is_unique_per_operator():
    events = constraints("events_event")
    assert events["event_idempotency_key_per_operator"]["unique"] is True
    assert events["event_idempotency_key_per_operator"]["columns"] == [
        "operator_id",
        "idempotency_key",
    ]


@pytest.mark.parametrize(
    ("table", "leading"),
    [
        ("events_event", ["operator_id", "brand_id", "player_id"]),
        ("commissions_ledgerentry", ["operator_id", "affiliate_id", "player_id"]),
        ("commissions_playermonthngr", ["player_id"]),
    ],
)
def test_every_foreign_key_without_its_own_index_leads_another_one(table, leading):
    indexed = constraints(table)
    for column in leading:
        single = [c for c in indexed.values() if c["columns"] == [column] and c["index"]]
        led = [
            c
            for c in indexed.values()
            if c["columns"][:1] == [column] and (c["index"] or c["unique"])
        ]
        assert not [c for c in single if not c["unique"]], f"{table}.{column} indexed alone"
        assert led, f"no index leads with {table}.{column}"
