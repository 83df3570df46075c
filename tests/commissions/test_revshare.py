"""RevShare from month-to-date NGR totals (SPEC §5: RevShare), with property tests."""

import itertools
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from commissions.models import LedgerKind, PlayerMonthNgr
from tests.commissions.factories import attributed_player, deal, entries, money, send, total

PLAN = dict(revshare_rate=Decimal("0.25"), admin_fee_percent=Decimal("20"))


def ngr(tenant, key, amount, when="2026-03-15T10:00:00Z", ref="player_001", **extra):
    return money(tenant, "ngr_update", key, amount, when=when, ref=ref, **extra)


def test_each_update_books_the_difference(tenant):
    affiliate, plan = deal(tenant, **PLAN)
    player = attributed_player(tenant, affiliate)
    send(tenant, ngr(tenant, "n1", "100", when="2026-03-10T00:00:00Z"))
    send(tenant, ngr(tenant, "n2", "300", when="2026-03-20T00:00:00Z"))
    amounts = [e.amount for e in entries(player=player, kind=LedgerKind.REVSHARE)]
    # 100 * 0.8 * 0.25 = 20, then 300 * 0.8 * 0.25 = 60: the second books +40.
    assert amounts == [Decimal("20"), Decimal("40")]
    state = PlayerMonthNgr.objects.get(player=player)
    assert (state.ngr_total, state.revshare_booked) == (Decimal("300"), Decimal("60"))


def test_negative_ngr_books_negative_revshare_without_admin_fee(tenant):
    affiliate, _ = deal(tenant, **PLAN)
    player = attributed_player(tenant, affiliate)
    send(tenant, ngr(tenant, "n1", "100", when="2026-03-10T00:00:00Z"))
    send(tenant, ngr(tenant, "n2", "-200", when="2026-03-20T00:00:00Z"))
    # The admin fee comes off positive NGR only: -200 * 0.25 = -50 (not -40).
    assert total(player=player) == Decimal("-50")
    amounts = [e.amount for e in entries(player=player)]
    assert amounts == [Decimal("20"), Decimal("-70")]


def test_an_older_update_arriving_late_changes_nothing(tenant):
    affiliate, _ = deal(tenant, **PLAN)
    player = attributed_player(tenant, affiliate)
    send(tenant, ngr(tenant, "n2", "300", when="2026-03-20T00:00:00Z"))
    send(tenant, ngr(tenant, "n1", "100", when="2026-03-10T00:00:00Z"))
    assert total(player=player) == Decimal("60")
    assert len(entries(player=player)) == 1


def test_same_event_time_the_larger_idempotency_key_wins_in_any_order(tenant):
    affiliate, _ = deal(tenant, **PLAN)
    first = attributed_player(tenant, affiliate, ref="a")
    second = attributed_player(tenant, affiliate, ref="b")
    send(tenant, ngr(tenant, "a_2", "200", ref="a"))
    send(tenant, ngr(tenant, "a_1", "100", ref="a"))
    send(tenant, ngr(tenant, "b_1", "100", ref="b"))
    send(tenant, ngr(tenant, "b_2", "200", ref="b"))
    assert total(player=first) == total(player=second) == Decimal("40")


def test_months_are_separate(tenant):
    affiliate, _ = deal(tenant, **PLAN)
    player = attributed_player(tenant, affiliate)
    send(
        tenant,
        ngr(tenant, "mar", "100", when="2026-03-31T23:59:59Z"),
        ngr(tenant, "apr", "10", when="2026-04-01T00:00:00Z"),
    )
    by_period = {e.period.isoformat(): e.amount for e in entries(player=player)}
    assert by_period == {"2026-03-01": Decimal("20"), "2026-04-01": Decimal("2")}


def test_plan_without_revshare_books_nothing(tenant):
    affiliate, _ = deal(tenant, cpa_amount=Decimal("50"))
    player = attributed_player(tenant, affiliate)
    send(tenant, ngr(tenant, "n1", "100"))
    assert entries(player=player) == []


def test_revshare_is_quantized_half_up_to_four_places(tenant):
    affiliate, _ = deal(tenant, revshare_rate=Decimal("0.333333"))
    player = attributed_player(tenant, affiliate)
    send(tenant, ngr(tenant, "n1", "0.0003"))  # 0.0000999999 -> 0.0001
    send(tenant, ngr(tenant, "n2", "10.0001", when="2026-03-16T10:00:00Z"))
    (first, second) = entries(player=player)
    assert first.amount == Decimal("0.0001")
    assert first.amount + second.amount == Decimal("3.3334")  # 3.33336333 -> 3.3334


# --- Properties ---------------------------------------------------------------------------

_counter = itertools.count()

updates = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=5),  # day offset: ties happen on purpose
        st.decimals(min_value=-10_000, max_value=10_000, places=2, allow_nan=False),
    ),
    min_size=1,
    max_size=6,
)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(updates=updates, data=st.data())
def test_any_order_and_repetition_books_rate_times_the_latest_total(tenant, updates, data):
    n = next(_counter)
    ref = f"prop_{n}"
    affiliate, plan = deal(tenant, **PLAN)
    player = attributed_player(tenant, affiliate, ref=ref)
    bodies = [
        ngr(tenant, f"{ref}_{i}", str(amount), when=f"2026-03-{10 + day:02d}T12:00:00Z", ref=ref)
        for i, (day, amount) in enumerate(updates)
    ]
    # Any order, any repetition (a repeated key is a duplicate), in batches of any size.
    stream = data.draw(st.permutations(bodies + data.draw(st.lists(st.sampled_from(bodies)))))
    cut = data.draw(st.integers(min_value=1, max_value=len(stream)))
    for chunk in (stream[:cut], stream[cut:]):
        if chunk:
            response = tenant.post({"events": chunk})
            assert response.status_code == 200

    latest = max(bodies, key=lambda b: (b["event_time"], b["idempotency_key"]))
    latest_total = Decimal(latest["amount"])
    net = latest_total * Decimal("0.8") if latest_total > 0 else latest_total
    expected = (net * Decimal("0.25")).quantize(Decimal("0.0001"))
    assert total(player=player, kind=LedgerKind.REVSHARE) == expected
    assert all(isinstance(e.amount, Decimal) for e in entries(player=player))


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_replaying_a_whole_event_stream_changes_no_total(tenant, data):
    n = next(_counter)
    affiliate, _ = deal(tenant, cpa_amount=Decimal("40"), min_first_deposit=Decimal("10"), **PLAN)
    stream = []
    for p in range(2):
        ref = f"replay_{n}_{p}"
        attributed_player(tenant, affiliate, ref=ref)
        stream += [
            money(
                tenant, "first_deposit", f"{ref}_ftd", "25", when="2026-03-02T10:00:00Z", ref=ref
            ),
            ngr(tenant, f"{ref}_n1", "120", when="2026-03-05T10:00:00Z", ref=ref),
            ngr(tenant, f"{ref}_n2", "-30", when="2026-03-07T10:00:00Z", ref=ref),
            money(tenant, "chargeback", f"{ref}_cb", "20", when="2026-03-08T10:00:00Z", ref=ref),
            ngr(tenant, f"{ref}_n3", "80", when="2026-04-02T10:00:00Z", ref=ref),
        ]
    stream = data.draw(st.permutations(stream))
    for body in stream:
        assert tenant.post(body).status_code == 201
    before = {
        kind: total(affiliate=affiliate, kind=kind)
        for kind in (LedgerKind.CPA, LedgerKind.CPA_REVERSAL, LedgerKind.REVSHARE)
    }
    count = len(entries(affiliate=affiliate))
    replay = data.draw(st.permutations(stream))
    response = tenant.post({"events": replay})
    assert response.json()["summary"]["duplicates"] == len(replay)
    after = {kind: total(affiliate=affiliate, kind=kind) for kind in before}
    assert after == before
    assert len(entries(affiliate=affiliate)) == count
    # And whatever the order, the month totals are the rate times the latest totals.
    assert before[LedgerKind.REVSHARE] == 2 * (Decimal("-7.5") + Decimal("16"))
    assert before[LedgerKind.CPA] == 80


@pytest.mark.parametrize("fee", ["0", "100"])
def test_admin_fee_edges(tenant, fee):
    affiliate, _ = deal(tenant, revshare_rate=Decimal("0.5"), admin_fee_percent=Decimal(fee))
    player = attributed_player(tenant, affiliate)
    send(tenant, ngr(tenant, "n1", "100"))
    assert total(player=player) == (Decimal("50") if fee == "0" else Decimal("0"))
