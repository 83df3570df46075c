"""period_close: statements, tiers, carryover, CPA offset, sub-affiliates, minimum payout."""

import threading
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.utils import timezone

from commissions.models import LedgerEntry, LedgerKind, Period, PeriodStatus, Statement
from commissions.services.periods import PeriodError, PeriodNotEnded, period_close
from tests.commissions.period_factories import (
    APRIL,
    MARCH,
    MAY,
    PlanFactory,
    affiliate_on_plan,
    entry,
    statement_of,
)
from tests.factories import AffiliateFactory, ManagerFactory, OperatorFactory

pytestmark = pytest.mark.django_db

CPA = LedgerKind.CPA
REVSHARE = LedgerKind.REVSHARE


@pytest.fixture
def operator():
    return OperatorFactory()


def close(operator, month=MARCH, **kwargs):
    return period_close(operator=operator, month=month, **kwargs)


def test_statement_sums_each_kind_and_pays_the_net(operator):
    affiliate, plan = affiliate_on_plan(operator)
    for kind, amount in [
        (CPA, "100"),
        (CPA, "100"),
        (LedgerKind.CPA_REVERSAL, "-100"),
        (REVSHARE, "50.5"),
        (REVSHARE, "-10.25"),
        (LedgerKind.MANUAL_ADJUSTMENT, "20"),
        (LedgerKind.REATTRIBUTION, "5"),
    ]:
        entry(affiliate, kind, amount, plan=plan)
    entry(affiliate, CPA, "999", plan=plan, period=APRIL)  # another period: not in March
    manager = ManagerFactory(operator=operator)

    result = close(operator, user=manager)

    assert result.created is True
    statement = statement_of(affiliate)
    assert statement.currency == "EUR"
    assert statement.status == "draft"
    assert statement.cpa == Decimal("200")
    assert statement.cpa_reversal == Decimal("-100")
    assert statement.revshare == Decimal("40.25")
    assert statement.manual_adjustment == Decimal("20")
    assert statement.reattribution == Decimal("5")
    assert statement.net_payable == Decimal("165.25")
    assert statement.carryover_out == 0 and statement.rollover_out == 0
    period = Period.objects.get(operator=operator, month=MARCH)
    assert period.status == PeriodStatus.CLOSED
    assert period.closed_by == manager and period.closed_at is not None
    assert list(result.statements) == [statement]


def test_only_affiliates_with_activity_get_a_statement(operator):
    active, plan = affiliate_on_plan(operator)
    affiliate_on_plan(operator)  # no entries, no balance
    other_operator_affiliate, other_plan = affiliate_on_plan(OperatorFactory())
    entry(active, CPA, "10", plan=plan)
    entry(other_operator_affiliate, CPA, "10", plan=other_plan)

    close(operator)

    assert list(Statement.objects.values_list("affiliate", flat=True)) == [active.pk]


# --- tiers --------------------------------------------------------------------------------

TIERS = [("1000", "0.30"), ("5000", "0.35")]


def tier_adjustments(affiliate):
    return list(
        LedgerEntry.objects.filter(
            affiliate=affiliate, kind=LedgerKind.REVSHARE_TIER_ADJUSTMENT
        ).values_list("amount", flat=True)
    )


@pytest.mark.parametrize(
    "mode, revshare, adjustment",
    [
        # base 25 %: RevShare 500 is NGR 2,000 (tier 30 %); tiered: 2,000 × 30 % = 600
        ("tiered", "500", "100"),
        # ladder: 1,000 × 25 % + 1,000 × 30 % = 550
        ("ladder", "500", "50"),
        # NGR 6,000 tiered: 6,000 × 35 % = 2,100
        ("tiered", "1500", "600"),
        # ladder: 1,000 × 25 % + 4,000 × 30 % + 1,000 × 35 % = 1,800
        ("ladder", "1500", "300"),
    ],
)
def test_ngr_tiers(operator, mode, revshare, adjustment):
    affiliate, plan = affiliate_on_plan(operator, tier_mode=mode, tiers=TIERS)
    entry(affiliate, REVSHARE, Decimal(revshare) - 100, plan=plan)
    entry(affiliate, REVSHARE, "100", plan=plan)

    close(operator)

    assert tier_adjustments(affiliate) == [Decimal(adjustment)]
    statement = statement_of(affiliate)
    assert statement.revshare == Decimal(revshare)
    assert statement.revshare_tier_adjustment == Decimal(adjustment)
    assert statement.net_payable == Decimal(revshare) + Decimal(adjustment)


@pytest.mark.parametrize("mode", ["tiered", "ladder"])
def test_ngr_below_the_first_tier_or_negative_books_no_adjustment(operator, mode):
    below, plan = affiliate_on_plan(operator, tier_mode=mode, tiers=TIERS)
    negative, negative_plan = affiliate_on_plan(operator, tier_mode=mode, tiers=TIERS)
    entry(below, REVSHARE, "249.99", plan=plan)  # NGR 999.96
    entry(negative, REVSHARE, "-500", plan=negative_plan)

    close(operator)

    assert tier_adjustments(below) == [] and tier_adjustments(negative) == []


@pytest.mark.parametrize(
    "mode, cpas, adjustment",
    [
        ("tiered", 2, None),  # 2 CPAs: below the 3-CPA tier
        ("tiered", 3, "50"),  # 3 CPAs: NGR 1,000 at 30 % = 300, booked 250
        # ladder, tier 35 % from 2 CPAs: of 4 CPAs, 2 at 25 % and 2 at 35 %: 30 % average
        ("ladder", 4, "50"),
    ],
)
def test_cpa_count_tiers(operator, mode, cpas, adjustment):
    tiers = [("3", "0.30")] if mode == "tiered" else [("2", "0.35")]
    affiliate, plan = affiliate_on_plan(
        operator, tier_basis="cpa_count", tier_mode=mode, tiers=tiers, cpa_amount=Decimal("10")
    )
    for _ in range(cpas):
        entry(affiliate, CPA, "10", plan=plan)
    entry(affiliate, CPA, "10", plan=plan, period=APRIL)  # counts for April, not March
    entry(affiliate, REVSHARE, "250", plan=plan)

    close(operator)

    assert tier_adjustments(affiliate) == ([Decimal(adjustment)] if adjustment else [])


def test_the_cpa_count_basis_is_net_of_clawbacks_and_follows_reassigned_cpas(operator):
    """3 CPAs reach the tier, but one was clawed back in the month and one moved to another
    affiliate by a reassignment: 1 qualified CPA, below the tier. The affiliate it moved to
    counts it: with its own 2 CPAs, 3, and its tier applies."""
    tiers = [("3", "0.30")]
    affiliate, plan = affiliate_on_plan(
        operator, tier_basis="cpa_count", tier_mode="tiered", tiers=tiers, cpa_amount=Decimal("10")
    )
    other, other_plan = affiliate_on_plan(
        operator, tier_basis="cpa_count", tier_mode="tiered", tiers=tiers, cpa_amount=Decimal("10")
    )
    for _ in range(3):
        entry(affiliate, CPA, "10", plan=plan)
    entry(affiliate, LedgerKind.CPA_REVERSAL, "-10", plan=plan)
    kind_extra = {"reattributed_kind": CPA}
    entry(affiliate, LedgerKind.REATTRIBUTION, "-10", plan=plan, **kind_extra)
    entry(other, LedgerKind.REATTRIBUTION, "10", plan=other_plan, **kind_extra)
    for _ in range(2):
        entry(other, CPA, "10", plan=other_plan)
    for a, p in ((affiliate, plan), (other, other_plan)):
        entry(a, REVSHARE, "250", plan=p)

    close(operator)

    assert tier_adjustments(affiliate) == []
    assert tier_adjustments(other) == [Decimal("50")]


def test_tier_adjustment_is_quantized_decimal(operator):
    affiliate, plan = affiliate_on_plan(
        operator, revshare_rate=Decimal("0.3"), tier_mode="ladder", tiers=[("1000", "0.35")]
    )
    entry(affiliate, REVSHARE, "333.3333", plan=plan)  # NGR 1,111.111

    close(operator)

    (adjustment,) = tier_adjustments(affiliate)
    # 1,000 × 30 % + 111.111 × 35 % = 338.88888…, minus 333.3333 booked
    assert adjustment == Decimal("5.5556")
    statement = statement_of(affiliate)
    for name in ["revshare", "revshare_tier_adjustment", "net_payable", "carryover_out"]:
        value = getattr(statement, name)
        assert isinstance(value, Decimal) and value.as_tuple().exponent == -4


def test_tiers_reach_on_the_affiliates_month_and_pay_per_plan_on_the_period_entries(operator):
    affiliate, plan = affiliate_on_plan(operator, tiers=[("1000", "0.30")])
    other_plan = PlanFactory(operator=operator, tiers=[("2000", "0.40")])
    untiered = PlanFactory(operator=operator)
    entry(affiliate, REVSHARE, "250", plan=plan)  # NGR 1,000 on plan
    entry(affiliate, REVSHARE, "200", plan=other_plan)  # NGR 800 on other_plan
    entry(affiliate, REVSHARE, "50", plan=untiered)  # NGR 200 on a plan without tiers
    entry(affiliate, REVSHARE, "5000", plan=plan, period=APRIL)

    close(operator)

    # The affiliate's March NGR is 2,000: each plan's own tiers at that basis, on its own
    # RevShare: 1,000 × 30 % − 250 = 50 and 800 × 40 % − 200 = 120; April is not counted.
    assert sorted(tier_adjustments(affiliate)) == [Decimal("50"), Decimal("120")]


# --- negative carryover and CPA offset ----------------------------------------------------


@pytest.mark.parametrize("carryover", [True, False])
def test_negative_revshare_carries_over_only_when_the_plan_says_so(operator, carryover):
    affiliate, plan = affiliate_on_plan(operator, negative_carryover=carryover)
    entry(affiliate, REVSHARE, "-200", plan=plan)
    entry(affiliate, CPA, "100", plan=plan)
    entry(affiliate, REVSHARE, "300", plan=plan, period=APRIL)

    close(operator, MARCH)
    close(operator, APRIL)

    march, april = statement_of(affiliate, MARCH), statement_of(affiliate, APRIL)
    # Offset is off: the CPA is paid in full, the negative RevShare never reduces it.
    assert march.net_payable == Decimal("100")
    if carryover:
        assert march.carryover_out == Decimal("-200")
        assert april.carryover_in == Decimal("-200")
        assert april.net_payable == Decimal("100")
    else:
        assert march.carryover_out == 0
        assert april.carryover_in == 0
        assert april.net_payable == Decimal("300")
    assert april.carryover_out == 0


def test_a_carried_balance_alone_makes_a_statement(operator):
    affiliate, plan = affiliate_on_plan(operator)
    entry(affiliate, REVSHARE, "-80", plan=plan)
    close(operator, MARCH)

    close(operator, APRIL)  # no April entries

    april = statement_of(affiliate, APRIL)
    assert april.carryover_in == Decimal("-80")
    assert april.carryover_out == Decimal("-80")
    assert april.net_payable == 0


def test_switching_carryover_off_resets_the_carried_balance(operator):
    affiliate, plan = affiliate_on_plan(operator)
    entry(affiliate, REVSHARE, "-80", plan=plan)
    close(operator, MARCH)
    plan.negative_carryover = False
    plan.save()
    entry(affiliate, REVSHARE, "50", plan=plan, period=APRIL)

    close(operator, APRIL)

    april = statement_of(affiliate, APRIL)
    assert april.carryover_in == 0
    assert april.net_payable == Decimal("50")


@pytest.mark.parametrize(
    "revshare, carryover, net, carryover_out",
    [
        ("-60", True, "40", "0"),  # the CPA absorbs the whole negative RevShare
        ("-150", True, "0", "-50"),  # the rest carries over
        ("-150", False, "0", "0"),  # or resets
    ],
)
def test_negative_revshare_offsets_cpa_when_the_plan_says_so(
    operator, revshare, carryover, net, carryover_out
):
    affiliate, plan = affiliate_on_plan(
        operator, revshare_offsets_cpa=True, negative_carryover=carryover
    )
    entry(affiliate, REVSHARE, revshare, plan=plan)
    entry(affiliate, CPA, "100", plan=plan)

    close(operator)

    statement = statement_of(affiliate)
    assert statement.cpa == Decimal("100") and statement.revshare == Decimal(revshare)
    assert statement.net_payable == Decimal(net)
    assert statement.carryover_out == Decimal(carryover_out)


def test_a_negative_balance_from_clawbacks_rolls_over_as_a_debt(operator):
    affiliate, plan = affiliate_on_plan(operator)
    entry(affiliate, LedgerKind.CPA_REVERSAL, "-100", plan=plan)
    entry(affiliate, CPA, "250", plan=plan, period=APRIL)

    close(operator, MARCH)
    close(operator, APRIL)

    march, april = statement_of(affiliate, MARCH), statement_of(affiliate, APRIL)
    assert march.net_payable == 0 and march.rollover_out == Decimal("-100")
    assert april.rollover_in == Decimal("-100") and april.net_payable == Decimal("150")


# --- sub-affiliates -----------------------------------------------------------------------


def test_referrer_earns_its_rate_of_positive_net_commission(operator):
    referrer, referrer_plan = affiliate_on_plan(operator, sub_affiliate_rate=Decimal("0.10"))
    earner, earner_plan = affiliate_on_plan(operator, referrer=referrer)
    loser, loser_plan = affiliate_on_plan(operator, referrer=referrer)
    entry(earner, REVSHARE, "400", plan=earner_plan)
    entry(earner, LedgerKind.MANUAL_ADJUSTMENT, "-50", plan=earner_plan)
    entry(loser, REVSHARE, "-300", plan=loser_plan)

    close(operator)

    (sub,) = LedgerEntry.objects.filter(kind=LedgerKind.SUB_AFFILIATE)
    assert (sub.affiliate, sub.amount, sub.period, sub.plan) == (
        referrer,
        Decimal("35"),
        MARCH,
        referrer_plan,
    )
    statement = statement_of(referrer)
    assert statement.sub_affiliate == Decimal("35") and statement.net_payable == Decimal("35")
    assert statement_of(earner).net_payable == Decimal("350")


def test_sub_affiliate_earnings_are_not_passed_up_a_level(operator):
    top, _ = affiliate_on_plan(operator, sub_affiliate_rate=Decimal("0.10"))
    middle, middle_plan = affiliate_on_plan(
        operator, referrer=top, sub_affiliate_rate=Decimal("0.20")
    )
    bottom, bottom_plan = affiliate_on_plan(operator, referrer=middle)
    entry(middle, CPA, "100", plan=middle_plan)
    entry(bottom, CPA, "500", plan=bottom_plan)

    close(operator)

    assert statement_of(middle).sub_affiliate == Decimal("100")  # 20 % of 500
    assert statement_of(top).sub_affiliate == Decimal("10")  # 10 % of 100, not of 200


def test_no_sub_affiliate_entry_without_a_referrer_rate(operator):
    referrer, _ = affiliate_on_plan(operator)  # rate 0
    referred, plan = affiliate_on_plan(operator, referrer=referrer)
    entry(referred, CPA, "100", plan=plan)

    close(operator)

    assert not LedgerEntry.objects.filter(kind=LedgerKind.SUB_AFFILIATE).exists()
    assert not Statement.objects.filter(affiliate=referrer).exists()


# --- minimum payout -----------------------------------------------------------------------


def test_below_minimum_payout_rolls_over_into_the_next_period(operator):
    affiliate, plan = affiliate_on_plan(operator, minimum_payout=Decimal("100"))
    entry(affiliate, CPA, "60", plan=plan)
    entry(affiliate, CPA, "50", plan=plan, period=MAY)

    close(operator, MARCH)
    close(operator, APRIL)
    close(operator, MAY)

    march, april, may = (statement_of(affiliate, month) for month in (MARCH, APRIL, MAY))
    assert (march.net_payable, march.rollover_out) == (0, Decimal("60"))
    # April has no activity: the rolled-over balance alone brings a statement.
    assert (april.rollover_in, april.net_payable, april.rollover_out) == (
        Decimal("60"),
        0,
        Decimal("60"),
    )
    assert (may.rollover_in, may.net_payable, may.rollover_out) == (Decimal("60"), 110, 0)


# --- when and how often -------------------------------------------------------------------


def test_a_month_closes_only_after_it_ended(operator):
    affiliate, plan = affiliate_on_plan(operator)
    this_month = timezone.now().date().replace(day=1)
    entry(affiliate, CPA, "10", plan=plan, period=this_month)

    with pytest.raises(PeriodNotEnded, match="has not ended yet"):
        close(operator, this_month)
    with pytest.raises(PeriodNotEnded):
        close(operator, MARCH, now=datetime(2026, 3, 31, 23, 59, 59, tzinfo=UTC))

    assert not Period.objects.exists() and not Statement.objects.exists()


def test_closing_twice_changes_nothing(operator):
    affiliate, plan = affiliate_on_plan(operator, tiers=[("100", "0.30")])
    referrer, _ = affiliate_on_plan(operator, sub_affiliate_rate=Decimal("0.1"))
    affiliate.referrer = referrer
    affiliate.save()
    entry(affiliate, REVSHARE, "100", plan=plan)
    first = close(operator)
    statements = list(Statement.objects.order_by("pk").values())
    entries = LedgerEntry.objects.count()

    again = close(operator)

    assert again.created is False
    assert list(Statement.objects.order_by("pk").values()) == statements
    assert LedgerEntry.objects.count() == entries
    assert set(again.statements) == set(first.statements)
    assert first.tier_adjustments == 1 and first.sub_affiliate_entries == 1


def test_entries_booked_after_close_go_to_the_open_period(operator):
    affiliate, plan = affiliate_on_plan(operator)
    entry(affiliate, CPA, "100", plan=plan)
    close(operator, MARCH)
    # The booking engine books a late March event into the open period, keeping its date.
    entry(affiliate, REVSHARE, "40", plan=plan, period=APRIL, activity_date=date(2026, 3, 20))

    close(operator, MARCH)
    assert statement_of(affiliate, MARCH).net_payable == Decimal("100")
    close(operator, APRIL)
    assert statement_of(affiliate, APRIL).revshare == Decimal("40")


def test_months_close_in_order(operator):
    affiliate, plan = affiliate_on_plan(operator)
    entry(affiliate, CPA, "100", plan=plan)
    entry(affiliate, CPA, "100", plan=plan, period=APRIL)

    with pytest.raises(PeriodError, match="close 2026-03 first"):
        close(operator, APRIL)
    close(operator, MARCH)
    with pytest.raises(PeriodError, match="close 2026-04 first"):
        close(operator, MAY)
    close(operator, APRIL)
    with pytest.raises(PeriodError, match="2026-03 is already closed"):
        close(operator, date(2026, 2, 1))
    assert list(
        Period.objects.filter(status=PeriodStatus.CLOSED).values_list("month", flat=True)
    ) == [APRIL, MARCH]


def test_a_manager_cannot_close_another_operators_month(operator):
    affiliate, plan = affiliate_on_plan(operator)
    entry(affiliate, CPA, "100", plan=plan)
    stranger = ManagerFactory()

    with pytest.raises(PermissionDenied):
        close(operator, user=stranger)

    assert not Period.objects.exists() and not Statement.objects.exists()


def test_entries_in_several_currencies_refuse_the_close(operator):
    affiliate = AffiliateFactory(operator=operator)
    entry(affiliate, CPA, "100", currency="EUR")
    entry(affiliate, CPA, "100", currency="USD")

    with pytest.raises(PeriodError, match="several"):
        close(operator)

    assert not Statement.objects.exists()
    assert not Period.objects.filter(status=PeriodStatus.CLOSED).exists()


@pytest.mark.django_db(transaction=True)
def test_concurrent_closes_build_the_statements_once():
    operator = OperatorFactory()
    affiliates = [affiliate_on_plan(operator, tiers=[("100", "0.30")]) for _ in range(3)]
    for affiliate, plan in affiliates:
        entry(affiliate, REVSHARE, "100", plan=plan)
    results, errors = [], []
    barrier = threading.Barrier(2)

    def run():
        try:
            barrier.wait()
            results.append(period_close(operator=operator, month=MARCH))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert sorted(result.created for result in results) == [False, True]
    assert Statement.objects.count() == 3
    assert LedgerEntry.objects.filter(kind=LedgerKind.REVSHARE_TIER_ADJUSTMENT).count() == 3


def test_offset_never_takes_from_a_negative_cpa_balance(operator):
    affiliate, plan = affiliate_on_plan(operator, revshare_offsets_cpa=True)
    entry(affiliate, REVSHARE, "-50", plan=plan)
    entry(affiliate, LedgerKind.CPA_REVERSAL, "-100", plan=plan)

    close(operator)

    statement = statement_of(affiliate)
    assert statement.carryover_out == Decimal("-50")
    assert statement.rollover_out == Decimal("-100")
    assert statement.net_payable == 0


@pytest.mark.django_db(transaction=True)
def test_a_booking_that_waits_for_a_close_books_after_the_closed_month():
    """The booking floor is read after the period lock, in a statement of its own: a
    booking that had to wait for a close sees the month the close just closed."""
    from django.db import transaction

    from commissions.services.periods import PERIOD_LOCK_NAMESPACE, period_booking_floor

    operator = OperatorFactory()
    locked, release = threading.Event(), threading.Event()

    def close_in_progress():
        try:
            with transaction.atomic():
                with connection.cursor() as cursor:
                    cursor.execute(
                        "SELECT pg_advisory_xact_lock(%s, %s)", [PERIOD_LOCK_NAMESPACE, operator.pk]
                    )
                Period.objects.create(operator=operator, month=MARCH, status=PeriodStatus.CLOSED)
                locked.set()
                release.wait(timeout=10)
        finally:
            connection.close()

    closer = threading.Thread(target=close_in_progress)
    closer.start()
    assert locked.wait(timeout=10)
    floors = []

    def book():
        try:
            with transaction.atomic():
                floors.append(period_booking_floor(operator_id=operator.pk))
        finally:
            connection.close()

    booker = threading.Thread(target=book)
    booker.start()
    booker.join(timeout=0.3)
    assert booker.is_alive(), "the booking must wait for the close's lock"
    release.set()
    closer.join(timeout=10)
    booker.join(timeout=10)
    assert floors == [date(2026, 4, 1)]
