"""Booking rules that cut across CPA and RevShare: periods, events before registration,
query counts, manual adjustments, plan assignments (SPEC §5)."""

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from commissions.models import LedgerEntry, LedgerKind, Period, PeriodStatus, PlanAssignment
from commissions.services import events_book, ledger_adjust, period_for, plan_assign
from events.models import Event
from tests.commissions.factories import (
    CommissionPlanFactory,
    attributed_player,
    deal,
    entries,
    money,
    send,
    total,
)
from tests.factories import (
    AffiliateFactory,
    BrandFactory,
    ManagerFactory,
    PlayerFactory,
    PromoCodeFactory,
)

HYBRID = dict(
    cpa_amount=Decimal("50"), min_first_deposit=Decimal("10"), revshare_rate=Decimal("0.3")
)


def close(operator, month):
    return Period.objects.create(operator=operator, month=month, status=PeriodStatus.CLOSED)


# --- Periods ------------------------------------------------------------------------------


def test_period_for_books_after_the_closed_months(tenant, other_tenant):
    assert period_for(operator=tenant.operator, day=date(2026, 3, 31)) == date(2026, 3, 1)
    close(tenant.operator, date(2026, 3, 1))
    close(tenant.operator, date(2026, 4, 1))  # months close in order (periods service)
    Period.objects.create(operator=tenant.operator, month=date(2026, 5, 1))  # open
    close(other_tenant.operator, date(2026, 5, 1))
    assert period_for(operator=tenant.operator, day=date(2026, 3, 31)) == date(2026, 5, 1)
    assert period_for(operator=tenant.operator, day=date(2026, 4, 1)) == date(2026, 5, 1)
    assert period_for(operator=tenant.operator, day=date(2026, 5, 31)) == date(2026, 5, 1)
    assert period_for(operator=tenant.operator, day=date(2026, 6, 2)) == date(2026, 6, 1)


def test_late_events_dated_in_a_closed_period_book_into_the_open_one(tenant, other_tenant):
    affiliate, _ = deal(tenant, **HYBRID)
    player = attributed_player(tenant, affiliate)
    close(tenant.operator, date(2026, 3, 1))
    close(other_tenant.operator, date(2026, 4, 1))  # another operator's close changes nothing
    send(
        tenant,
        money(tenant, "first_deposit", "ftd1", "20", when="2026-03-20T10:00:00Z"),
        money(tenant, "ngr_update", "n1", "100", when="2026-03-21T10:00:00Z"),
    )
    booked = entries(player=player)
    assert {e.kind for e in booked} == {LedgerKind.CPA, LedgerKind.REVSHARE}
    for entry in booked:
        assert entry.period == date(2026, 4, 1)
        assert entry.activity_date in (date(2026, 3, 20), date(2026, 3, 21))


# --- Events before the registration -------------------------------------------------------


def test_events_before_the_registration_count_when_it_attributes_the_player(tenant):
    affiliate, _ = deal(tenant, **HYBRID)
    PromoCodeFactory(affiliate=affiliate, brand=tenant.brand, code="WELCOME")
    send(
        tenant,
        money(tenant, "first_deposit", "ftd1", "20", when="2026-03-02T10:00:00Z"),
        money(tenant, "ngr_update", "n1", "100", when="2026-03-03T10:00:00Z"),
    )
    assert LedgerEntry.objects.count() == 0  # not registered, so nobody's yet
    registration = {
        "event_type": "registration",
        "event_time": "2026-03-01T10:00:00Z",
        "brand_id": str(tenant.brand.id),
        "player_external_ref": "player_001",
        "idempotency_key": "reg1",
        "promo_code": "WELCOME",
        "country": "GB",
    }
    send(
        tenant, registration, money(tenant, "ngr_update", "n2", "200", when="2026-03-04T10:00:00Z")
    )
    by_kind = {e.kind: e for e in entries(affiliate=affiliate, kind=LedgerKind.CPA)}
    ftd = Event.objects.get(idempotency_key="ftd1")
    assert by_kind[LedgerKind.CPA].source_event == ftd  # booked by the earlier deposit
    assert total(affiliate=affiliate, kind=LedgerKind.REVSHARE) == Decimal("60")
    # CPA, then RevShare 30 for the earlier update and +30 for the later one: each once.
    assert [e.amount for e in entries(affiliate=affiliate)] == [50, 30, 30]


def test_events_book_loads_earlier_events_without_double_booking(tenant):
    """The service contract: events of this request come in `events`, earlier ones are
    loaded; an event in both is booked once."""
    affiliate, _ = deal(tenant, **HYBRID)
    player = PlayerFactory(brand=tenant.brand, external_ref="p")
    send(tenant, money(tenant, "ngr_update", "n1", "100", ref="p"))
    n1 = Event.objects.get(idempotency_key="n1")
    player.affiliate = affiliate
    player.registered_at = datetime(2026, 3, 1, tzinfo=UTC)
    player.save()
    n1.player = player
    events_book(events=[n1], newly_registered=[player])
    assert total(player=player) == Decimal("30")


def test_organic_registration_books_nothing_for_earlier_events(tenant):
    deal(tenant, **HYBRID)
    send(tenant, money(tenant, "first_deposit", "ftd1", "20", when="2026-03-02T10:00:00Z"))
    registration = {
        "event_type": "registration",
        "event_time": "2026-03-01T10:00:00Z",
        "brand_id": str(tenant.brand.id),
        "player_external_ref": "player_001",
        "idempotency_key": "reg1",
    }
    send(tenant, registration)
    assert LedgerEntry.objects.count() == 0


# --- Query counts -------------------------------------------------------------------------


def _batch(tenant, players, tag):
    bodies = []
    for n in range(players):
        ref = f"{tag}_{n}"
        bodies += [
            money(
                tenant, "first_deposit", f"{ref}_ftd", "20", ref=ref, when="2026-03-02T10:00:00Z"
            ),
            money(tenant, "deposit", f"{ref}_dep", "20", ref=ref, when="2026-03-03T10:00:00Z"),
            money(tenant, "ngr_update", f"{ref}_n1", "50", ref=ref, when="2026-03-04T10:00:00Z"),
            money(tenant, "ngr_update", f"{ref}_n2", "70", ref=ref, when="2026-03-05T10:00:00Z"),
            money(tenant, "chargeback", f"{ref}_cb", "5", ref=ref, when="2026-03-06T10:00:00Z"),
        ]
    return bodies


def _queries(tenant, bodies):
    with CaptureQueriesContext(connection) as captured:
        send(tenant, *bodies)
    return len(captured)


def test_booking_queries_do_not_grow_with_the_batch(tenant):
    affiliate, _ = deal(tenant, **HYBRID)
    tenant.api_key.last_used_at = timezone.now()
    tenant.api_key.save()
    for n in range(20):
        attributed_player(tenant, affiliate, ref=f"small_{n}")
        attributed_player(tenant, affiliate, ref=f"large_{n}")
    small = _queries(tenant, _batch(tenant, 2, "small"))
    large = _queries(tenant, _batch(tenant, 20, "large"))
    assert LedgerEntry.objects.filter(kind="cpa").count() == 22
    # The CPAs of a batch go in with one bulk insert (the players are locked; the once-only
    # constraint still decides should anything else race them).
    assert large == small


def test_a_cpa_booked_behind_the_batch_s_back_is_not_booked_twice(tenant, monkeypatch):
    """Should a CPA appear that the batch did not see (a writer that did not lock the
    player), the constraint refuses the duplicate and the batch's other CPAs still book."""
    from commissions.services import booking

    affiliate, _ = deal(tenant, **HYBRID)
    for ref in ("seen", "unseen"):
        attributed_player(tenant, affiliate, ref=ref)
    send(tenant, money(tenant, "first_deposit", "unseen_ftd", "20", ref="unseen"))
    assert LedgerEntry.objects.filter(kind="cpa").count() == 1

    real = booking._Batch._load_cpa_state

    def stale(self, player_ids):  # as if the earlier CPA were not there yet
        real(self, player_ids)
        self.cpa.clear()

    monkeypatch.setattr(booking._Batch, "_load_cpa_state", stale)
    accepted = send(  # `send` asserts every event is accepted
        tenant,
        money(tenant, "deposit", "unseen_dep", "20", ref="unseen"),
        money(tenant, "first_deposit", "seen_ftd", "20", ref="seen"),
    )
    assert len(accepted) == 2
    cpas = LedgerEntry.objects.filter(kind="cpa")
    assert sorted(cpas.values_list("player__external_ref", flat=True)) == ["seen", "unseen"]
    assert cpas.get(player__external_ref="unseen").source_event.idempotency_key == "unseen_ftd"


def test_unattributed_events_cost_no_booking_query(tenant):
    deal(tenant, **HYBRID)  # plans exist, but nobody is attributed
    tenant.api_key.last_used_at = timezone.now()
    tenant.api_key.save()
    plain = _queries(tenant, _batch(tenant, 20, "plain"))
    CommissionPlanFactory(operator=tenant.operator)
    again = _queries(tenant, _batch(tenant, 20, "again"))
    assert plain == again
    assert LedgerEntry.objects.count() == 0


# --- Manual adjustments -------------------------------------------------------------------


def test_manual_adjustment_is_a_new_entry_with_author_and_memo(tenant):
    affiliate = AffiliateFactory(operator=tenant.operator, payout_currency="EUR")
    manager = ManagerFactory(operator=tenant.operator)
    close(tenant.operator, date(timezone.now().year, timezone.now().month, 1))
    entry = ledger_adjust(
        affiliate=affiliate,
        amount=Decimal("-12.5"),
        currency="EUR",
        memo="  fee refund ",
        author=manager,
    )
    assert (entry.kind, entry.amount, entry.memo, entry.author) == (
        LedgerKind.MANUAL_ADJUSTMENT,
        Decimal("-12.5"),
        "fee refund",
        manager,
    )
    assert entry.period > entry.activity_date.replace(day=1)  # this month is closed
    assert isinstance(LedgerEntry.objects.get(pk=entry.pk).amount, Decimal)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        (dict(amount=Decimal("0")), "amount"),
        (dict(amount=Decimal("1.00001")), "amount"),
        (dict(currency="USD"), "currency"),
        (dict(memo=" "), "memo"),
        (dict(author=None), "author"),
    ],
)
def test_manual_adjustment_refuses_what_it_cannot_book(tenant, kwargs, field):
    affiliate = AffiliateFactory(operator=tenant.operator, payout_currency="EUR")
    args = dict(
        affiliate=affiliate,
        amount=Decimal("5"),
        currency="EUR",
        memo="why",
        author=ManagerFactory(operator=tenant.operator),
    )
    args.update(kwargs)
    with pytest.raises(ValidationError) as exc:
        ledger_adjust(**args)
    assert field in exc.value.message_dict
    assert LedgerEntry.objects.count() == 0


def test_manual_adjustment_by_a_manager_of_another_operator_is_refused(tenant, other_tenant):
    from django.core.exceptions import PermissionDenied

    affiliate = AffiliateFactory(operator=tenant.operator, payout_currency="EUR")
    stranger = ManagerFactory(operator=other_tenant.operator)
    with pytest.raises(PermissionDenied):
        ledger_adjust(
            affiliate=affiliate,
            amount=Decimal("10"),
            currency="EUR",
            memo="not mine to give",
            author=stranger,
        )
    assert not LedgerEntry.objects.exists()


def test_manual_adjustment_refuses_a_player_of_another_operator(tenant, other_tenant):
    affiliate = AffiliateFactory(operator=tenant.operator)
    foreign = PlayerFactory(brand=other_tenant.brand)
    with pytest.raises(ValidationError, match="another operator"):
        ledger_adjust(
            affiliate=affiliate,
            amount=Decimal("5"),
            currency="EUR",
            memo="x",
            author=ManagerFactory(operator=tenant.operator),
            player=foreign,
        )


# --- Plan assignments ---------------------------------------------------------------------


def test_assignments_must_not_overlap_for_the_same_affiliate_and_brand(tenant):
    plan = CommissionPlanFactory(operator=tenant.operator)
    affiliate = AffiliateFactory(operator=tenant.operator)
    plan_assign(
        affiliate=affiliate, plan=plan, valid_from=date(2026, 1, 1), valid_to=date(2026, 3, 31)
    )
    with pytest.raises(ValidationError, match="overlaps"):
        plan_assign(affiliate=affiliate, plan=plan, valid_from=date(2026, 3, 31))
    plan_assign(affiliate=affiliate, plan=plan, valid_from=date(2026, 4, 1))
    with pytest.raises(ValidationError, match="overlaps"):
        plan_assign(affiliate=affiliate, plan=plan, valid_from=date(2025, 1, 1))
    # A brand-specific assignment may sit inside an all-brands one.
    plan_assign(affiliate=affiliate, plan=plan, brand=tenant.brand, valid_from=date(2026, 2, 1))
    assert PlanAssignment.objects.filter(affiliate=affiliate).count() == 3


def test_assignment_checks_operator_currency_and_dates(tenant, other_tenant):
    affiliate = AffiliateFactory(operator=tenant.operator, payout_currency="EUR")
    foreign_plan = CommissionPlanFactory(operator=other_tenant.operator)
    usd_plan = CommissionPlanFactory(operator=tenant.operator, currency="USD")
    plan = CommissionPlanFactory(operator=tenant.operator)
    cases = [
        (dict(plan=foreign_plan), "plan"),
        (dict(plan=usd_plan), "plan"),
        (dict(plan=plan, brand=BrandFactory(operator=other_tenant.operator)), "brand"),
        (dict(plan=plan, valid_to=date(2025, 12, 31)), "valid_to"),
    ]
    for kwargs, field in cases:
        with pytest.raises(ValidationError) as exc:
            plan_assign(affiliate=affiliate, valid_from=date(2026, 1, 1), **kwargs)
        assert field in exc.value.message_dict
    assert not PlanAssignment.objects.exists()
