"""How many round trips booking costs on PostgreSQL (docs/performance.md, "Booking in one
round trip"): what each statement left out or merged must still book exactly as before."""

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from attribution.models import Player
from commissions.models import LedgerEntry, LedgerKind
from commissions.services import booking
from revvvs import sql
from tests.commissions.factories import attributed_player, deal, money, send, total
from tests.factories import PromoCodeFactory

HYBRID = dict(
    cpa_amount=Decimal("50"), min_first_deposit=Decimal("10"), revshare_rate=Decimal("0.3")
)


def _sent(tenant, *bodies) -> list[str]:
    tenant.api_key.last_used_at = timezone.now()  # no last-used update in the capture
    tenant.api_key.save()
    with CaptureQueriesContext(connection) as captured:
        send(tenant, *bodies)
    return [q["sql"] for q in captured]


def _registration(tenant, ref, key, **extra):
    return {
        "event_type": "registration",
        "event_time": "2026-03-01T10:00:00Z",
        "brand_id": str(tenant.brand.id),
        "player_external_ref": ref,
        "idempotency_key": key,
        "country": "GB",
        **extra,
    }


def _earlier_events_lookups(queries) -> int:
    head = booking._earlier_events_sql().split(" WHERE ")[0]
    return sum(q.startswith(head) for q in queries)


def test_registering_a_new_player_looks_for_no_earlier_events(tenant):
    affiliate, _ = deal(tenant, **HYBRID)
    PromoCodeFactory(affiliate=affiliate, brand=tenant.brand, code="WELCOME")
    queries = _sent(tenant, _registration(tenant, "fresh", "reg-fresh", promo_code="WELCOME"))
    assert Player.objects.get(external_ref="fresh").affiliate == affiliate
    assert _earlier_events_lookups(queries) == 0


def test_registering_a_player_with_earlier_events_still_books_them(tenant):
    affiliate, _ = deal(tenant, **HYBRID)
    PromoCodeFactory(affiliate=affiliate, brand=tenant.brand, code="WELCOME")
    send(tenant, money(tenant, "first_deposit", "early-ftd", "20", ref="early"))
    queries = _sent(tenant, _registration(tenant, "early", "reg-early", promo_code="WELCOME"))
    assert _earlier_events_lookups(queries) == 1
    assert total(affiliate=affiliate, kind=LedgerKind.CPA) == Decimal("50")


def test_the_players_created_by_a_request_are_marked(tenant):
    from attribution.services import players_get_or_create

    existing = attributed_player(tenant, None, ref="known")
    found = players_get_or_create(keys={(tenant.brand.id, "known"), (tenant.brand.id, "new")})
    assert found[(tenant.brand.id, "known")].pk == existing.pk
    assert found[(tenant.brand.id, "known")].created_in_this_transaction is False
    assert found[(tenant.brand.id, "new")].created_in_this_transaction is True


def test_a_qualifying_deposit_reads_its_booking_state_in_one_statement(tenant):
    affiliate, _ = deal(tenant, **HYBRID)
    attributed_player(tenant, affiliate, ref="p1")
    queries = _sent(tenant, money(tenant, "first_deposit", "p1-ftd", "20", ref="p1"))
    assert total(affiliate=affiliate, kind=LedgerKind.CPA) == Decimal("50")
    locking = [q for q in queries if "FOR NO KEY UPDATE" in q]
    assert len(locking) == 1
    # The player's lock, the plans, the CPA state and the period lock and floor together.
    assert "pg_advisory_xact_lock_shared" in locking[0]
    assert "commissions_planassignment" in locking[0]
    # One savepoint: the request's own transaction, nested in the test's. The CPA needs none.
    assert len([q for q in queries if q.startswith("SAVEPOINT")]) == 1


def test_an_ngr_update_reads_its_booking_state_in_one_statement(tenant):
    affiliate, _ = deal(tenant, **HYBRID)
    attributed_player(tenant, affiliate, ref="p1")
    send(tenant, money(tenant, "ngr_update", "n1", "100", ref="p1"))
    queries = _sent(tenant, money(tenant, "ngr_update", "n2", "150", ref="p1"))
    assert total(affiliate=affiliate, kind=LedgerKind.REVSHARE) == Decimal("45")
    locking = [q for q in queries if "FOR NO KEY UPDATE" in q]
    assert len(locking) == 1
    assert "commissions_playermonthngr" in locking[0]


def test_a_clawback_of_a_cpa_another_writer_booked_first_is_not_written(tenant, monkeypatch):
    """A CPA of the batch that the constraint refused (a writer that did not lock the player
    booked one first) leaves its clawback out too, and the request still succeeds."""
    affiliate, _ = deal(tenant, **HYBRID)
    attributed_player(tenant, affiliate, ref="unseen")
    send(tenant, money(tenant, "first_deposit", "unseen_ftd", "20", ref="unseen"))
    real = booking._Batch._load_cpa_state

    def stale(self, player_ids):  # as if the earlier CPA were not there yet
        real(self, player_ids)
        self.cpa.clear()

    monkeypatch.setattr(booking._Batch, "_load_cpa_state", stale)
    send(
        tenant,
        money(tenant, "deposit", "unseen_dep", "20", ref="unseen"),
        money(
            tenant,
            "chargeback",
            "unseen_cb",
            "40",
            ref="unseen",
            when="2026-03-16T10:00:00Z",
        ),
    )
    assert LedgerEntry.objects.filter(kind=LedgerKind.CPA).count() == 1
    assert not LedgerEntry.objects.filter(kind=LedgerKind.CPA_REVERSAL).exists()


def test_bulk_insert_unless_conflict_leaves_out_what_a_constraint_refuses(tenant):
    affiliate, plan = deal(tenant, **HYBRID)
    players = [attributed_player(tenant, affiliate, ref=ref) for ref in ("p1", "p2")]

    def cpa(player):
        return LedgerEntry(
            operator_id=tenant.operator.pk,
            affiliate=affiliate,
            kind=LedgerKind.CPA,
            amount=Decimal("50"),
            currency="EUR",
            period=timezone.now().date().replace(day=1),
            activity_date=timezone.now().date(),
            player=player,
            brand_id=tenant.brand.id,
            plan=plan,
            memo="test",
        )

    with pytest.raises(ValueError, match="player must tell the objects apart"):
        sql.bulk_insert_unless_conflict([cpa(players[0]), cpa(players[0])], unique_by="player")
    first = sql.bulk_insert_unless_conflict([cpa(players[0])], unique_by="player")
    assert [e.pk for e in first] == [LedgerEntry.objects.get(player=players[0]).pk]
    again, other = cpa(players[0]), cpa(players[1])
    inserted = sql.bulk_insert_unless_conflict([again, other], unique_by="player")
    assert inserted == [other]
    assert again.pk is None
    assert other.pk == LedgerEntry.objects.get(player=players[1]).pk
    assert LedgerEntry.objects.filter(kind=LedgerKind.CPA).count() == 2
