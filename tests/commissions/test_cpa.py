"""CPA qualification through the real Event API (SPEC §5: CPA)."""

import threading
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, transaction

from commissions.models import LedgerEntry, LedgerKind
from tests.commissions.factories import attributed_player, deal, entries, money, send, total
from tests.factories import PlayerFactory

CPA = dict(cpa_amount=Decimal("100.00"), min_first_deposit=Decimal("20"))


def cpa_entries(player):
    return entries(player=player, kind=LedgerKind.CPA)


@pytest.mark.parametrize(("deposit", "books"), [("20.00", True), ("19.9999", False), ("500", True)])
def test_first_deposit_must_reach_min_first_deposit(tenant, deposit, books):
    affiliate, plan = deal(tenant, **CPA)
    player = attributed_player(tenant, affiliate)
    (event_id,) = send(tenant, money(tenant, "first_deposit", "ftd1", deposit))
    booked = cpa_entries(player)
    if not books:
        assert booked == []
        return
    assert len(booked) == 1
    entry = booked[0]
    assert (entry.amount, entry.currency, entry.affiliate, entry.plan) == (
        Decimal("100.0000"),
        "EUR",
        affiliate,
        plan,
    )
    assert str(entry.source_event_id) == event_id
    assert entry.period.isoformat() == "2026-03-01"
    assert entry.activity_date.isoformat() == "2026-03-15"
    assert isinstance(entry.amount, Decimal)


def test_baseline_reached_by_a_later_deposit_inside_the_window(tenant):
    affiliate, _ = deal(tenant, min_total_deposits=Decimal("100"), qualification_days=30, **CPA)
    player = attributed_player(tenant, affiliate)  # registered 2026-03-01 10:00
    send(tenant, money(tenant, "first_deposit", "ftd1", "50", when="2026-03-02T10:00:00Z"))
    assert cpa_entries(player) == []
    send(tenant, money(tenant, "deposit", "dep1", "49.99", when="2026-03-20T10:00:00Z"))
    assert cpa_entries(player) == []
    (qualifying,) = send(
        tenant, money(tenant, "deposit", "dep2", "0.01", when="2026-03-31T10:00:00Z")
    )
    (entry,) = cpa_entries(player)
    assert str(entry.source_event_id) == qualifying


def test_deposits_outside_the_qualification_window_do_not_count(tenant):
    affiliate, _ = deal(tenant, min_total_deposits=Decimal("100"), qualification_days=30, **CPA)
    player = attributed_player(tenant, affiliate)  # registered 2026-03-01 10:00, window to 03-31
    send(
        tenant,
        money(tenant, "first_deposit", "ftd1", "50", when="2026-03-02T10:00:00Z"),
        money(tenant, "deposit", "dep1", "50", when="2026-03-31T10:00:01Z"),
    )
    assert cpa_entries(player) == []


def test_a_first_deposit_after_the_window_does_not_qualify(tenant):
    affiliate, _ = deal(tenant, qualification_days=30, **CPA)
    player = attributed_player(tenant, affiliate)
    send(tenant, money(tenant, "first_deposit", "ftd1", "500", when="2026-04-15T10:00:00Z"))
    assert cpa_entries(player) == []


@pytest.mark.parametrize(("country", "books"), [("GB", True), ("gb", True), ("DE", False)])
def test_country_allow_list(tenant, country, books):
    affiliate, _ = deal(tenant, cpa_countries="GB, IE", **CPA)
    player = attributed_player(tenant, affiliate, country=country.upper())
    send(tenant, money(tenant, "first_deposit", "ftd1", "50"))
    assert len(cpa_entries(player)) == (1 if books else 0)


def test_empty_allow_list_allows_every_country(tenant):
    affiliate, _ = deal(tenant, cpa_countries="", **CPA)
    player = attributed_player(tenant, affiliate, country="")
    send(tenant, money(tenant, "first_deposit", "ftd1", "50"))
    assert len(cpa_entries(player)) == 1


@pytest.mark.parametrize("status", ["self_excluded", "closed", "fraud"])
def test_excluded_players_never_qualify(tenant, status):
    affiliate, _ = deal(tenant, **CPA)
    player = attributed_player(tenant, affiliate, status=status)
    send(tenant, money(tenant, "first_deposit", "ftd1", "50"))
    assert cpa_entries(player) == []


def test_status_event_in_the_same_batch_before_the_deposit_blocks_cpa(tenant):
    affiliate, _ = deal(tenant, **CPA)
    player = attributed_player(tenant, affiliate)
    status = {
        "event_type": "player_status",
        "event_time": "2026-03-15T09:00:00Z",
        "brand_id": str(tenant.brand.id),
        "player_external_ref": "player_001",
        "idempotency_key": "status1",
        "status": "fraud",
    }
    send(tenant, status, money(tenant, "first_deposit", "ftd1", "50"))
    assert cpa_entries(player) == []


def test_cpa_is_booked_once_per_player(tenant):
    affiliate, _ = deal(tenant, **CPA)
    player = attributed_player(tenant, affiliate)
    send(tenant, money(tenant, "first_deposit", "ftd1", "50"))
    send(
        tenant,
        money(tenant, "first_deposit", "ftd2", "60", when="2026-03-16T10:00:00Z"),
        money(tenant, "deposit", "dep1", "60", when="2026-03-17T10:00:00Z"),
    )
    assert len(cpa_entries(player)) == 1
    assert total(affiliate=affiliate) == Decimal("100")


def test_database_refuses_a_second_cpa_for_a_player(tenant):
    affiliate, plan = deal(tenant, **CPA)
    player = attributed_player(tenant, affiliate)
    send(tenant, money(tenant, "first_deposit", "ftd1", "50"))
    (first,) = cpa_entries(player)
    with pytest.raises(IntegrityError), transaction.atomic():
        LedgerEntry.objects.create(
            operator=tenant.operator,
            affiliate=affiliate,
            kind="cpa",
            amount=1,
            currency="EUR",
            period=first.period,
            activity_date=first.activity_date,
            player=player,
        )


def test_unattributed_and_planless_players_book_nothing(tenant):
    affiliate, _ = deal(tenant, **CPA)
    PlayerFactory(
        brand=tenant.brand, external_ref="organic", registered_at=datetime(2026, 3, 1, tzinfo=UTC)
    )
    from tests.factories import AffiliateFactory

    no_plan = AffiliateFactory(operator=tenant.operator)
    attributed_player(tenant, no_plan, ref="planless")
    send(
        tenant,
        money(tenant, "first_deposit", "ftd_o", "50", ref="organic"),
        money(tenant, "first_deposit", "ftd_p", "50", ref="planless"),
    )
    assert LedgerEntry.objects.count() == 0


def test_assignment_in_force_at_the_event_time_applies(tenant):
    from datetime import date

    affiliate, old = deal(tenant, valid_from=date(2026, 1, 1), cpa_amount=Decimal("10"))
    old_assignment = affiliate.plan_assignments.get()
    old_assignment.valid_to = date(2026, 3, 9)
    old_assignment.save()
    _, new = deal(
        tenant, affiliate=affiliate, valid_from=date(2026, 3, 10), cpa_amount=Decimal("30")
    )
    player = attributed_player(tenant, affiliate)
    send(tenant, money(tenant, "first_deposit", "ftd1", "50", when="2026-03-09T23:59:59Z"))
    (entry,) = cpa_entries(player)
    assert (entry.plan, entry.amount) == (old, Decimal("10"))


def test_brand_specific_assignment_beats_all_brands(tenant):
    affiliate, _ = deal(tenant, cpa_amount=Decimal("10"))
    _, specific = deal(tenant, affiliate=affiliate, brand=tenant.brand, cpa_amount=Decimal("25"))
    player = attributed_player(tenant, affiliate)
    send(tenant, money(tenant, "first_deposit", "ftd1", "50"))
    (entry,) = cpa_entries(player)
    assert (entry.plan, entry.amount) == (specific, Decimal("25"))


def test_event_api_lists_the_entries_an_event_booked(tenant):
    affiliate, _ = deal(tenant, **CPA)
    attributed_player(tenant, affiliate)
    (event_id,) = send(tenant, money(tenant, "first_deposit", "ftd1", "50"))
    body = tenant.get_event(event_id).json()
    (entry,) = body["ledger_entries"]
    assert entry["kind"] == "cpa"
    assert entry["amount"] == "100.0000"  # money is a string in the API, never a float
    assert entry["currency"] == "EUR"
    assert entry["affiliate_id"] == affiliate.pk
    assert entry["period"] == "2026-03"
    assert entry["activity_date"] == "2026-03-15"
    assert entry["original_amount"] is None and entry["fx_rate"] is None


@pytest.mark.django_db(transaction=True)
def test_concurrent_first_deposits_book_one_cpa(tenant):
    affiliate, _ = deal(tenant, **CPA)
    player = attributed_player(tenant, affiliate)
    barrier = threading.Barrier(6)
    statuses = []

    def deposit(n):
        try:
            barrier.wait()
            response = tenant.post(money(tenant, "first_deposit", f"ftd_{n}", "50"))
            statuses.append(response.status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=deposit, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [201] * 6
    assert len(cpa_entries(player)) == 1
    assert total(affiliate=affiliate, kind="cpa") == Decimal("100")
