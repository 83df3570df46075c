"""CPA clawback on chargebacks (SPEC §5: CPA clawback)."""

from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction

from commissions.models import LedgerEntry, LedgerKind
from tests.commissions.factories import attributed_player, deal, entries, money, send, total

PLAN = dict(
    cpa_amount=Decimal("100"),
    min_first_deposit=Decimal("20"),
    min_total_deposits=Decimal("50"),
    clawback_days=90,
)


@pytest.fixture
def qualified(tenant):
    affiliate, plan = deal(tenant, **PLAN)
    player = attributed_player(tenant, affiliate)
    send(
        tenant,
        money(tenant, "first_deposit", "ftd1", "30", when="2026-03-02T10:00:00Z"),
        money(tenant, "deposit", "dep1", "30", when="2026-03-03T10:00:00Z"),
    )
    assert len(entries(player=player, kind=LedgerKind.CPA)) == 1
    return affiliate, player


def test_chargeback_inside_the_window_below_the_baseline_claws_back(tenant, qualified):
    affiliate, player = qualified
    (chargeback,) = send(
        tenant, money(tenant, "chargeback", "cb1", "10.01", when="2026-05-01T10:00:00Z")
    )
    (reversal,) = entries(player=player, kind=LedgerKind.CPA_REVERSAL)
    (cpa,) = entries(player=player, kind=LedgerKind.CPA)
    assert reversal.amount == Decimal("-100")
    assert reversal.reverses == cpa
    assert str(reversal.source_event_id) == chargeback
    assert reversal.period.isoformat() == "2026-05-01"
    assert total(affiliate=affiliate) == 0


def test_chargeback_leaving_the_thresholds_met_keeps_the_cpa(tenant, qualified):
    affiliate, player = qualified
    send(tenant, money(tenant, "chargeback", "cb1", "10", when="2026-05-01T10:00:00Z"))
    assert entries(player=player, kind=LedgerKind.CPA_REVERSAL) == []
    assert total(affiliate=affiliate) == Decimal("100")


def test_chargeback_of_the_first_deposit_below_min_first_deposit_claws_back(tenant, qualified):
    affiliate, player = qualified
    send(
        tenant,
        money(
            tenant,
            "chargeback",
            "cb1",
            "10.5",
            when="2026-03-10T10:00:00Z",
            deposit_idempotency_key="ftd1",
        ),
    )
    # 60 - 10.5 = 49.5 < 50 as well, but the first deposit is 19.5 < 20 either way.
    assert len(entries(player=player, kind=LedgerKind.CPA_REVERSAL)) == 1


def test_chargeback_after_the_window_keeps_the_cpa(tenant, qualified):
    affiliate, player = qualified
    # Qualified on 2026-03-03 10:00; 90 days later is 2026-06-01 10:00.
    send(tenant, money(tenant, "chargeback", "cb1", "60", when="2026-06-01T10:00:01Z"))
    assert entries(player=player, kind=LedgerKind.CPA_REVERSAL) == []
    assert total(affiliate=affiliate) == Decimal("100")


def test_clawback_happens_once(tenant, qualified):
    affiliate, player = qualified
    send(tenant, money(tenant, "chargeback", "cb1", "20", when="2026-04-01T10:00:00Z"))
    send(
        tenant,
        money(tenant, "chargeback", "cb2", "20", when="2026-04-02T10:00:00Z"),
        money(tenant, "chargeback", "cb3", "5", when="2026-04-03T10:00:00Z"),
    )
    assert len(entries(player=player, kind=LedgerKind.CPA_REVERSAL)) == 1
    assert total(affiliate=affiliate) == 0
    with pytest.raises(IntegrityError), transaction.atomic():
        first = entries(player=player, kind=LedgerKind.CPA_REVERSAL)[0]
        LedgerEntry.objects.create(
            operator=tenant.operator,
            affiliate=affiliate,
            kind="cpa_reversal",
            amount=-1,
            currency="EUR",
            period=first.period,
            activity_date=first.activity_date,
            player=player,
        )


def test_chargeback_before_qualification_prevents_it(tenant):
    affiliate, _ = deal(tenant, **PLAN)
    player = attributed_player(tenant, affiliate)
    send(
        tenant,
        money(tenant, "first_deposit", "ftd1", "30", when="2026-03-02T10:00:00Z"),
        money(tenant, "chargeback", "cb1", "30", when="2026-03-02T12:00:00Z"),
        money(tenant, "deposit", "dep1", "30", when="2026-03-03T10:00:00Z"),
    )
    assert entries(player=player) == []


def test_chargeback_with_no_cpa_books_nothing(tenant):
    affiliate, _ = deal(tenant, **PLAN)
    player = attributed_player(tenant, affiliate)
    send(tenant, money(tenant, "chargeback", "cb1", "30"))
    assert entries(player=player) == []


def test_qualification_and_clawback_in_one_batch(tenant):
    affiliate, _ = deal(tenant, **PLAN)
    player = attributed_player(tenant, affiliate)
    send(
        tenant,
        money(tenant, "first_deposit", "ftd1", "30", when="2026-03-02T10:00:00Z"),
        money(tenant, "deposit", "dep1", "25", when="2026-03-03T10:00:00Z"),
        money(tenant, "chargeback", "cb1", "30", when="2026-03-20T10:00:00Z"),
    )
    # The deposit qualified the player (55 >= 50); the later chargeback (25 < 50) undid it.
    assert [e.kind for e in entries(player=player)] == ["cpa", "cpa_reversal"]
    assert total(affiliate=affiliate) == 0
