"""End-to-end money flows: tracking link → Event API → attribution → ledger → statements.

Everything goes through the public surfaces (the Event API, the click redirect, the
services a manager's action calls) and every expected amount is computed by hand from the
rules in docs/commissions.md, so a wrong rule shows up as a wrong Decimal.
"""

import json
import threading
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest
import time_machine
from django.core.exceptions import PermissionDenied
from django.core.management import call_command
from django.db import connection
from django.db.models import Sum
from django.test import Client

from attribution.models import Player
from attribution.services import player_reassign, tracking_link_create
from commissions.models import (
    CommissionPlan,
    LedgerEntry,
    LedgerKind,
    PendingFx,
    Period,
    PlayerMonthNgr,
    Statement,
)
from commissions.services.booking import ledger_adjust, plan_assign
from commissions.services.periods import (
    period_close,
    statement_approve,
    statement_mark_paid,
)
from events.models import Event
from tests.factories import AffiliateFactory, ManagerFactory, PromoCodeFactory

SEPTEMBER, OCTOBER, NOVEMBER = date(2026, 9, 1), date(2026, 10, 1), date(2026, 11, 1)
AFTER_NOVEMBER = datetime(2026, 12, 1, 0, 0, 1, tzinfo=UTC)  # `now` for closing November
# The stories below happen in the autumn of 2026 with November the open month: manual
# adjustments and reassignments book into the period of "today", so today is pinned.
TODAY = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
D = Decimal


@pytest.fixture(autouse=True)
def _today():
    with time_machine.travel(TODAY, tick=True):
        yield


# --- helpers ------------------------------------------------------------------------------


def body(tenant, event_type, key, when, ref, amount=None, currency="EUR", **fields):
    payload = {
        "event_type": event_type,
        "event_time": when,
        "brand_id": str(tenant.brand.id),
        "player_external_ref": ref,
        "idempotency_key": key,
    }
    if amount is not None:
        payload.update(currency=currency, amount=str(amount))
    payload.update(fields)
    return payload


def post(tenant, payload, status=201):
    response = tenant.post(payload)
    assert response.status_code == status, response.content
    return response.json()


def send(tenant, *payloads):
    """One batch; returns the results (status of each checked by the caller)."""
    response = tenant.post({"events": list(payloads)})
    assert response.status_code == 200, response.content
    return response.json()["results"]


def detail(tenant, event_id):
    response = tenant.get_event(event_id)
    assert response.status_code == 200, response.content
    return response.json()


ZERO = Decimal(0)


def deal(tenant, name, *, minimum_payout=ZERO, currency="EUR", **plan_fields):
    """An approved affiliate on a new plan, assigned through the service."""
    plan = CommissionPlan.objects.create(
        operator=tenant.operator, name=name, currency=currency, **plan_fields
    )
    affiliate = AffiliateFactory(
        operator=tenant.operator, payout_currency=currency, minimum_payout=minimum_payout
    )
    plan_assign(affiliate=affiliate, plan=plan, valid_from=date(2026, 1, 1))
    return affiliate, plan


def total(**filters) -> Decimal:
    return LedgerEntry.objects.filter(**filters).aggregate(s=Sum("amount"))["s"] or D(0)


def kinds(**filters) -> list[tuple[str, Decimal]]:
    return list(LedgerEntry.objects.filter(**filters).order_by("id").values_list("kind", "amount"))


def player(tenant, ref) -> Player:
    return Player.objects.get(brand=tenant.brand, external_ref=ref)


def click_through(link, **query) -> uuid.UUID:
    """GET /t/{code} like a browser; the click_id is read from the Location header."""
    response = Client().get(f"/t/{link.code}", query, HTTP_USER_AGENT="Mozilla/5.0 (X11)")
    assert response.status_code == 302, response.content
    params = parse_qs(urlsplit(response["Location"]).query)
    return uuid.UUID(params["click_id"][0])


# --- 1. the life of a hybrid-plan player -------------------------------------------------


def test_hybrid_player_click_to_clawback(tenant):
    affiliate, plan = deal(
        tenant,
        "Hybrid",
        cpa_amount=D("100"),
        min_first_deposit=D("20"),
        min_total_deposits=D("50"),
        revshare_rate=D("0.30"),
        admin_fee_percent=D("10"),
    )
    link = tracking_link_create(affiliate=affiliate, brand=tenant.brand)
    click_id = click_through(link, sub1="spring")

    reg = post(
        tenant,
        body(tenant, "registration", "reg", "2026-09-01T10:00:00Z", "p1", click_id=str(click_id)),
    )
    assert "warnings" not in reg
    ftd = post(tenant, body(tenant, "first_deposit", "ftd", "2026-09-01T11:00:00Z", "p1", "30"))
    # 30 ≥ min_first_deposit 20, but 30 < the 50 baseline: not yet.
    assert not LedgerEntry.objects.filter(kind=LedgerKind.CPA).exists()
    dep = post(tenant, body(tenant, "deposit", "dep", "2026-09-03T09:00:00Z", "p1", "40"))
    # 30 + 40 = 70 ≥ 50: the deposit qualifies the player.
    assert kinds(affiliate=affiliate) == [("cpa", D("100"))]

    # Month-to-date NGR, out of order and repeated. Target = 0.30 × NGR × 0.90.
    n1 = body(tenant, "ngr_update", "ngr-10", "2026-09-10T00:00:00Z", "p1", "500")
    n2 = body(tenant, "ngr_update", "ngr-20", "2026-09-20T00:00:00Z", "p1", "1200")
    n_old = body(tenant, "ngr_update", "ngr-15", "2026-09-15T00:00:00Z", "p1", "900")
    n_last = body(tenant, "ngr_update", "ngr-28", "2026-09-28T00:00:00Z", "p1", "1000")
    post(tenant, n1)  # 500 → 135
    post(tenant, n2)  # 1200 → 324: +189
    post(tenant, n_old)  # older than the 20th: nothing
    assert post(tenant, n2, status=200)["status"] == "duplicate"
    # The same total again under another key, same time: books nothing.
    post(tenant, {**n2, "idempotency_key": "ngr-20-resent"})
    last = post(tenant, n_last)  # 1000 → 270: −54
    revshare = [a for k, a in kinds(affiliate=affiliate) if k == "revshare"]
    assert revshare == [D("135"), D("189"), D("-54")]
    assert total(affiliate=affiliate, kind="revshare") == D("270.0000")

    # A chargeback of the first deposit inside the 90-day window: first deposit net 0, total
    # net 40 < 50 → the CPA is clawed back, once.
    cb = post(
        tenant,
        body(
            tenant,
            "chargeback",
            "cb1",
            "2026-09-25T00:00:00Z",
            "p1",
            "30",
            deposit_idempotency_key="ftd",
        ),
    )
    post(tenant, body(tenant, "chargeback", "cb2", "2026-09-26T00:00:00Z", "p1", "10"))
    cpa = LedgerEntry.objects.get(kind=LedgerKind.CPA)
    reversal = LedgerEntry.objects.get(kind=LedgerKind.CPA_REVERSAL)
    assert (cpa.amount, cpa.affiliate, cpa.source_event_id) == (
        D("100"),
        affiliate,
        uuid.UUID(dep["event_id"]),
    )
    assert (reversal.amount, reversal.reverses, reversal.source_event_id) == (
        D("-100"),
        cpa,
        uuid.UUID(cb["event_id"]),
    )
    assert total(affiliate=affiliate) == D("270.0000")
    assert set(LedgerEntry.objects.values_list("period", flat=True)) == {SEPTEMBER}

    # What the API tells the operator.
    registration = detail(tenant, reg["event_id"])
    assert registration["attribution"]["applied"] is True
    assert registration["attribution"]["method"] == "click_id"
    assert registration["attribution"]["affiliate_id"] == affiliate.pk
    assert registration["attribution"]["click_id"] == str(click_id)
    assert detail(tenant, ftd["event_id"])["ledger_entries"] == []
    [dep_entry] = detail(tenant, dep["event_id"])["ledger_entries"]
    assert (dep_entry["kind"], D(dep_entry["amount"]), dep_entry["affiliate_id"]) == (
        "cpa",
        D("100"),
        affiliate.pk,
    )
    assert (dep_entry["period"], dep_entry["activity_date"]) == ("2026-09", "2026-09-03")
    [cb_entry] = detail(tenant, cb["event_id"])["ledger_entries"]
    assert (cb_entry["kind"], D(cb_entry["amount"])) == ("cpa_reversal", D("-100"))
    [last_entry] = detail(tenant, last["event_id"])["ledger_entries"]
    assert (last_entry["kind"], last_entry["amount"]) == ("revshare", "-54.0000")


# --- 2. events before the registration, resends, other orders ------------------------------


def _stream(tenant, ref, prefix):
    return {
        "ftd": body(tenant, "first_deposit", f"{prefix}ftd", "2026-09-02T10:00:00Z", ref, "30"),
        "dep": body(tenant, "deposit", f"{prefix}dep", "2026-09-03T10:00:00Z", ref, "25"),
        "ngr_new": body(tenant, "ngr_update", f"{prefix}n5", "2026-09-05T00:00:00Z", ref, "400"),
        "ngr_old": body(tenant, "ngr_update", f"{prefix}n4", "2026-09-04T00:00:00Z", ref, "300"),
        "ngr_oct": body(tenant, "ngr_update", f"{prefix}n10", "2026-10-03T00:00:00Z", ref, "-80"),
        "reg": body(
            tenant, "registration", f"{prefix}reg", "2026-09-01T09:00:00Z", ref, promo_code="summer"
        ),
    }


def test_events_before_registration_count_as_if_in_order(tenant):
    affiliate, _ = deal(
        tenant,
        "CPA + RS",
        cpa_amount=D("50"),
        min_first_deposit=D("20"),
        min_total_deposits=D("50"),
        revshare_rate=D("0.25"),
    )
    PromoCodeFactory(affiliate=affiliate, brand=tenant.brand, code="SUMMER")

    first = _stream(tenant, "early", "a-")
    order = ["ftd", "ngr_new", "dep", "ngr_old", "ngr_oct", "reg"]
    for name in order[:-1]:
        post(tenant, first[name])
    assert not LedgerEntry.objects.exists()  # nobody to pay yet
    reg = post(tenant, first["reg"])
    assert "warnings" not in reg

    early = player(tenant, "early")
    # CPA 50 (30 + 25 = 55 ≥ 50, booked by the deposit); RevShare Sept 0.25 × 400 = 100,
    # October 0.25 × −80 = −20.
    expected = {"cpa": D("50"), "revshare": D("80")}

    def totals(p):
        return {
            kind: total(player=p, kind=kind) for kind in ("cpa", "revshare", "cpa_reversal")
        } | {"all": total(player=p)}

    early_totals = totals(early)
    assert early_totals == {
        "cpa": expected["cpa"],
        "revshare": expected["revshare"],
        "cpa_reversal": D(0),
        "all": D("130"),
    }
    cpa = LedgerEntry.objects.get(player=early, kind=LedgerKind.CPA)
    assert cpa.source_event.idempotency_key == "a-dep"
    assert cpa.activity_date == date(2026, 9, 3)
    assert dict(
        PlayerMonthNgr.objects.filter(player=early).values_list("month", "revshare_booked")
    ) == {SEPTEMBER: D("100"), OCTOBER: D("-20")}

    # The whole stream again, same keys: all duplicates, nothing changes.
    results = send(tenant, *first.values())
    assert {r["status"] for r in results} == {"duplicate"}
    assert totals(early) == early_totals

    # A fresh player, the same stream in another order and batch split, new keys.
    second = _stream(tenant, "late", "b-")
    send(tenant, second["ngr_oct"], second["dep"])
    send(tenant, second["reg"], second["ngr_old"])
    send(tenant, second["ngr_new"], second["ftd"])
    assert totals(player(tenant, "late")) == early_totals


# --- 3. month close, late events, minimum payout, negative carryover ---------------------


def _join(tenant, affiliate, ref, code, when="2026-10-01T09:00:00Z"):
    PromoCodeFactory(affiliate=affiliate, brand=tenant.brand, code=code)
    post(tenant, body(tenant, "registration", f"reg-{ref}", when, ref, promo_code=code))


def _lines(statement) -> Decimal:
    return sum(
        (getattr(statement, kind) for kind in LedgerKind.values),
        D(0),
    )


def test_month_close_late_event_rollover_and_carryover(tenant):
    manager = ManagerFactory(operator=tenant.operator)
    hybrid, _ = deal(
        tenant,
        "Hybrid",
        cpa_amount=D("100"),
        revshare_rate=D("0.30"),
        admin_fee_percent=D("10"),
    )
    small, _ = deal(tenant, "CPA 300", cpa_amount=D("300"), minimum_payout=D("500"))
    carry_on, _ = deal(tenant, "RS carry", revshare_rate=D("0.25"), negative_carryover=True)
    carry_off, _ = deal(tenant, "RS reset", revshare_rate=D("0.25"), negative_carryover=False)
    _join(tenant, hybrid, "h1", "HYB")
    _join(tenant, small, "m1", "SMALL")
    _join(tenant, carry_on, "c1", "CARRY")
    _join(tenant, carry_off, "f1", "RESET")

    # October.
    post(tenant, body(tenant, "first_deposit", "h1-ftd", "2026-10-02T10:00:00Z", "h1", "100"))
    post(tenant, body(tenant, "ngr_update", "h1-n1", "2026-10-20T00:00:00Z", "h1", "1000"))
    post(tenant, body(tenant, "first_deposit", "m1-ftd", "2026-10-02T10:00:00Z", "m1", "50"))
    post(tenant, body(tenant, "ngr_update", "c1-n1", "2026-10-15T00:00:00Z", "c1", "-400"))
    post(tenant, body(tenant, "ngr_update", "f1-n1", "2026-10-15T00:00:00Z", "f1", "-400"))

    result = period_close(operator=tenant.operator, month=OCTOBER, user=manager)
    assert result.created
    october = {s.affiliate_id: s for s in result.statements}
    assert set(october) == {hybrid.pk, small.pk, carry_on.pk, carry_off.pk}
    h = october[hybrid.pk]  # CPA 100 + 0.30 × 1000 × 0.90 = 270
    assert (h.cpa, h.revshare, h.net_payable, h.rollover_out) == (D(100), D(270), D(370), D(0))
    m = october[small.pk]  # 300 < minimum payout 500: rolls over
    assert (m.cpa, m.net_payable, m.rollover_out) == (D(300), D(0), D(300))
    c = october[carry_on.pk]  # 0.25 × −400 = −100, carried
    assert (c.revshare, c.carryover_out, c.net_payable, c.rollover_out) == (
        D(-100),
        D(-100),
        D(0),
        D(0),
    )
    f = october[carry_off.pk]  # −100, reset
    assert (f.revshare, f.carryover_out, f.net_payable, f.rollover_out) == (
        D(-100),
        D(0),
        D(0),
        D(0),
    )
    for statement in october.values():
        assert _lines(statement) == total(affiliate_id=statement.affiliate_id, period=OCTOBER)
    statement_approve(statement=h, user=manager)
    paid = statement_mark_paid(
        statement=h,
        method="bank transfer",
        reference="OCT-1",
        paid_on=date(2026, 11, 3),
        user=manager,
    )
    assert (paid.status, paid.net_payable) == ("paid", D(370))

    # A late October update books into November, keeping its date: 0.30 × 1200 × 0.9 = 324,
    # 270 already booked → +54.
    october_entries = LedgerEntry.objects.filter(period=OCTOBER).count()
    late = post(tenant, body(tenant, "ngr_update", "h1-n2", "2026-10-31T12:00:00Z", "h1", "1200"))
    [entry] = detail(tenant, late["event_id"])["ledger_entries"]
    assert (entry["kind"], entry["amount"], entry["period"], entry["activity_date"]) == (
        "revshare",
        "54.0000",
        "2026-11",
        "2026-10-31",
    )
    again = period_close(operator=tenant.operator, month=OCTOBER, user=manager)
    assert again.created is False
    assert LedgerEntry.objects.filter(period=OCTOBER).count() == october_entries
    h.refresh_from_db()
    assert (h.revshare, h.net_payable, h.status) == (D(270), D(370), "paid")

    # November.
    _join(tenant, small, "m2", "SMALL2", when="2026-11-01T09:00:00Z")
    post(tenant, body(tenant, "first_deposit", "m2-ftd", "2026-11-02T10:00:00Z", "m2", "60"))
    post(tenant, body(tenant, "ngr_update", "c1-n2", "2026-11-10T00:00:00Z", "c1", "1000"))
    post(tenant, body(tenant, "ngr_update", "f1-n2", "2026-11-10T00:00:00Z", "f1", "1000"))
    ledger_adjust(
        affiliate=hybrid, amount=D("-20"), currency="EUR", memo="bonus abuse", author=manager
    )

    november = {
        s.affiliate_id: s
        for s in period_close(
            operator=tenant.operator, month=NOVEMBER, user=manager, now=AFTER_NOVEMBER
        ).statements
    }
    h = november[hybrid.pk]  # the late October +54, the −20 adjustment
    assert (h.revshare, h.manual_adjustment, h.net_payable) == (D(54), D(-20), D(34))
    m = november[small.pk]  # 300 + 300 rolled in = 600 ≥ 500
    assert (m.cpa, m.rollover_in, m.net_payable, m.rollover_out) == (
        D(300),
        D(300),
        D(600),
        D(0),
    )
    c = november[carry_on.pk]  # 250 − 100 carried
    assert (c.revshare, c.carryover_in, c.net_payable, c.carryover_out) == (
        D(250),
        D(-100),
        D(150),
        D(0),
    )
    f = november[carry_off.pk]  # 250, nothing carried
    assert (f.revshare, f.carryover_in, f.net_payable) == (D(250), D(0), D(250))
    for statement in november.values():
        assert _lines(statement) == total(affiliate_id=statement.affiliate_id, period=NOVEMBER)


# --- 4. reassignment mid-life ------------------------------------------------------------


def test_reassignment_moves_commission_and_statements_match_the_ledger(tenant):
    manager = ManagerFactory(operator=tenant.operator)
    a, plan_a = deal(tenant, "A plan", cpa_amount=D("100"), revshare_rate=D("0.30"))
    b, plan_b = deal(
        tenant,
        "B plan",
        cpa_amount=D("80"),
        revshare_rate=D("0.20"),
        admin_fee_percent=D("20"),
    )
    _join(tenant, a, "p", "ALPHA")
    post(tenant, body(tenant, "first_deposit", "ftd", "2026-10-02T10:00:00Z", "p", "100"))
    post(tenant, body(tenant, "ngr_update", "n-oct", "2026-10-15T00:00:00Z", "p", "1000"))
    post(tenant, body(tenant, "ngr_update", "n-nov", "2026-11-05T00:00:00Z", "p", "500"))
    the_player = player(tenant, "p")
    assert total(affiliate=a, player=the_player) == D("550")  # 100 + 300 + 150

    player_reassign(player=the_player, to_affiliate=b, reason="fraudulent click", author=manager)

    # A's commission from the player nets to zero; B gets its own plan's amounts:
    # CPA 80, RevShare October 0.20 × 1000 × 0.80 = 160, November 0.20 × 500 × 0.80 = 80.
    assert total(affiliate=a, player=the_player) == D(0)
    moved = LedgerEntry.objects.filter(kind=LedgerKind.REATTRIBUTION, affiliate=b)
    assert sorted(moved.values_list("reattributed_kind", "amount")) == [
        ("cpa", D("80")),
        ("revshare", D("80")),
        ("revshare", D("160")),
    ]
    assert set(
        LedgerEntry.objects.filter(kind=LedgerKind.REATTRIBUTION).values_list("period", flat=True)
    ) == {NOVEMBER}

    # Later events book for B only: November 700 → 112 (+32); a late October total of 1500
    # → 240 (+80); a chargeback of the first deposit claws back B's CPA credit of 80.
    a_before = list(LedgerEntry.objects.filter(affiliate=a).values_list("id", flat=True))
    post(tenant, body(tenant, "ngr_update", "n-nov2", "2026-11-20T00:00:00Z", "p", "700"))
    post(tenant, body(tenant, "ngr_update", "n-oct2", "2026-10-31T00:00:00Z", "p", "1500"))
    post(
        tenant,
        body(
            tenant,
            "chargeback",
            "cb",
            "2026-11-21T00:00:00Z",
            "p",
            "100",
            deposit_idempotency_key="ftd",
        ),
    )
    assert list(LedgerEntry.objects.filter(affiliate=a).values_list("id", flat=True)) == a_before
    assert total(affiliate=a, player=the_player) == D(0)
    reversal = LedgerEntry.objects.get(kind=LedgerKind.CPA_REVERSAL)
    assert (reversal.affiliate, reversal.amount) == (b, D("-80"))
    # B: CPA 80 − 80, RevShare 240 (October) + 112 (November).
    assert total(affiliate=b, player=the_player) == D("352")

    october = {
        s.affiliate_id: s
        for s in period_close(operator=tenant.operator, month=OCTOBER, user=manager).statements
    }
    november = {
        s.affiliate_id: s
        for s in period_close(
            operator=tenant.operator, month=NOVEMBER, user=manager, now=AFTER_NOVEMBER
        ).statements
    }
    assert (october[a.pk].net_payable, october[b.pk].net_payable) == (D(400), D(80))
    # A: reattribution −550 = RevShare −450 and CPA −100. The RevShare line, 150 − 450 =
    # −300, carries over as negative RevShare (its plan carries it); the CPA line, −100, is a
    # debt rolled over.
    na, nb = november[a.pk], november[b.pk]
    assert (na.revshare, na.reattribution, na.net_payable) == (D(150), D(-550), D(0))
    assert (na.carryover_out, na.rollover_out) == (D(-300), D(-100))
    # B: reattribution 320 + RevShare 32 − clawback 80 = 272.
    assert (nb.reattribution, nb.revshare, nb.cpa_reversal, nb.net_payable) == (
        D(320),
        D(32),
        D(-80),
        D(272),
    )
    for month, statements in ((OCTOBER, october), (NOVEMBER, november)):
        assert sum((_lines(s) for s in statements.values()), D(0)) == total(period=month)
    assert plan_a.pk != plan_b.pk


# --- 5. FX ---------------------------------------------------------------------------------


def test_fx_conversion_pending_and_reprocess_exactly_once(tenant, tmp_path):
    affiliate, _ = deal(
        tenant,
        "EUR deal",
        cpa_amount=D("50"),
        min_first_deposit=D("20"),
        revshare_rate=D("0.25"),
    )
    rates = tmp_path / "eurofxref-hist.csv"
    rates.write_text("Date,USD,GBP,SEK,\n2026-10-05,1.2500,0.8000,N/A,\n")
    call_command("import_fx_rates", str(rates))

    _join(tenant, affiliate, "u1", "FX", when="2026-10-05T08:00:00Z")
    ftd = post(
        tenant,
        body(tenant, "first_deposit", "u1-ftd", "2026-10-05T10:00:00Z", "u1", "30", "USD"),
    )
    ngr = post(
        tenant,
        body(tenant, "ngr_update", "u1-ngr", "2026-10-06T10:00:00Z", "u1", "400", "GBP"),
    )
    # 30 USD × (1 / 1.25) = 24 EUR ≥ 20 → CPA 50; 400 GBP × (1 / 0.8) = 500 EUR → 125.
    [cpa] = detail(tenant, ftd["event_id"])["ledger_entries"]
    assert (cpa["kind"], cpa["amount"], cpa["currency"]) == ("cpa", "50.0000", "EUR")
    [rs] = detail(tenant, ngr["event_id"])["ledger_entries"]
    assert (rs["amount"], rs["original_amount"], rs["original_currency"], rs["fx_rate"]) == (
        "125.0000",
        "400.0000",
        "GBP",
        "1.2500000000",
    )

    # SEK has no rate: the events are accepted and wait.
    PromoCodeFactory(affiliate=affiliate, brand=tenant.brand, code="FX2")
    post(
        tenant,
        body(
            tenant, "registration", "s1-reg", "2026-10-05T08:00:00Z", "s1", **{"promo_code": "FX2"}
        ),
    )
    s_ftd = post(
        tenant,
        body(tenant, "first_deposit", "s1-ftd", "2026-10-07T10:00:00Z", "s1", "300", "SEK"),
    )
    s_ngr = post(
        tenant,
        body(tenant, "ngr_update", "s1-ngr", "2026-10-07T11:00:00Z", "s1", "1000", "SEK"),
    )
    for event_id in (s_ftd["event_id"], s_ngr["event_id"]):
        shown = detail(tenant, event_id)
        assert shown["commission"]["status"] == "pending_fx"
        assert (shown["commission"]["from_currency"], shown["commission"]["to_currency"]) == (
            "SEK",
            "EUR",
        )
        assert shown["ledger_entries"] == []
    s1 = player(tenant, "s1")
    assert not LedgerEntry.objects.filter(player=s1).exists()

    call_command("reprocess_pending")  # still no rate: nothing happens
    assert not LedgerEntry.objects.filter(player=s1).exists()
    assert PendingFx.objects.filter(resolved_at__isnull=True).count() == 2

    sek = tmp_path / "sek.csv"
    sek.write_text("Date,SEK\n2026-10-07,10.0000\n")
    call_command("import_fx_rates", str(sek))
    call_command("reprocess_pending")
    call_command("reprocess_pending")

    # 300 SEK = 30 EUR ≥ 20 → CPA 50; 1000 SEK = 100 EUR → RevShare 25. Once each.
    assert kinds(player=s1) == [("cpa", D("50")), ("revshare", D("25"))]
    assert not PendingFx.objects.filter(resolved_at__isnull=True).exists()
    shown = detail(tenant, s_ngr["event_id"])
    assert shown["commission"]["status"] == "fx_applied"
    [entry] = shown["ledger_entries"]
    assert (entry["amount"], entry["fx_rate"]) == ("25.0000", "0.1000000000")
    assert total(affiliate=affiliate) == D("250")  # 50 + 125 + 50 + 25


# --- 6. tenancy ----------------------------------------------------------------------------


def test_operators_never_see_or_touch_each_other(tenant, other_tenant):
    affiliate, _ = deal(tenant, "A deal", cpa_amount=D("40"))
    link = tracking_link_create(affiliate=affiliate, brand=tenant.brand)
    click_id = click_through(link)
    a_reg = post(
        tenant,
        body(tenant, "registration", "reg", "2026-10-01T10:00:00Z", "pa", click_id=str(click_id)),
    )
    post(tenant, body(tenant, "first_deposit", "ftd", "2026-10-02T10:00:00Z", "pa", "10"))
    assert total(affiliate=affiliate) == D("40")

    # B cannot read A's event.
    assert other_tenant.get_event(a_reg["event_id"]).status_code == 404
    # B's registration with A's click: accepted, warned, organic; the same key is B's own.
    b_reg = post(
        other_tenant,
        body(
            other_tenant,
            "registration",
            "reg",
            "2026-10-01T10:00:00Z",
            "pb",
            click_id=str(click_id),
        ),
    )
    assert b_reg["warnings"] == ["click_id not found"]
    shown = detail(other_tenant, b_reg["event_id"])
    assert (shown["attribution"]["method"], shown["attribution"]["affiliate_id"]) == ("none", None)
    post(
        other_tenant,
        body(other_tenant, "first_deposit", "ftd", "2026-10-02T10:00:00Z", "pb", "10"),
    )
    assert Player.objects.get(brand=other_tenant.brand, external_ref="pb").affiliate_id is None
    assert total(affiliate=affiliate) == D("40")
    assert LedgerEntry.objects.filter(operator=other_tenant.operator).count() == 0

    # B's manager can neither close A's month nor approve A's statement.
    manager_b = ManagerFactory(operator=other_tenant.operator)
    with pytest.raises(PermissionDenied):
        period_close(operator=tenant.operator, month=OCTOBER, user=manager_b)
    assert not Period.objects.filter(operator=tenant.operator).exists()
    manager_a = ManagerFactory(operator=tenant.operator)
    [statement] = period_close(operator=tenant.operator, month=OCTOBER, user=manager_a).statements
    with pytest.raises(PermissionDenied):
        statement_approve(statement=statement, user=manager_b)
    statement.refresh_from_db()
    assert statement.status == "draft"


# --- 7. concurrency ------------------------------------------------------------------------

THREADS = 8


@pytest.mark.django_db(transaction=True)
def test_same_batch_from_eight_threads_books_once(tenant):
    affiliate, _ = deal(
        tenant,
        "Hybrid",
        cpa_amount=D("100"),
        min_first_deposit=D("20"),
        min_total_deposits=D("50"),
        revshare_rate=D("0.30"),
    )
    _join(tenant, affiliate, "p", "RACE")
    batch = {
        "events": [
            body(tenant, "first_deposit", "ftd", "2026-10-02T10:00:00Z", "p", "30"),
            body(tenant, "deposit", "dep1", "2026-10-03T10:00:00Z", "p", "15"),
            body(tenant, "deposit", "dep2", "2026-10-04T10:00:00Z", "p", "10"),
            body(tenant, "ngr_update", "n10", "2026-10-10T00:00:00Z", "p", "500"),
            body(tenant, "ngr_update", "n20", "2026-10-20T00:00:00Z", "p", "800"),
            body(tenant, "ngr_update", "n15", "2026-10-15T00:00:00Z", "p", "600"),
        ]
    }
    barrier = threading.Barrier(THREADS)
    responses, failures = [None] * THREADS, []

    def worker(index):
        try:
            client = Client()
            barrier.wait(timeout=30)
            responses[index] = client.post(
                "/api/v1/events",
                data=json.dumps(batch),
                content_type="application/json",
                HTTP_X_API_KEY=tenant.key,
            )
        except Exception as exc:  # reported below
            failures.append((index, repr(exc)))
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not failures, failures

    statuses = []
    for response in responses:
        assert response.status_code == 200, response.content
        statuses += [r["status"] for r in response.json()["results"]]
    assert statuses.count("accepted") == 6
    assert statuses.count("duplicate") == 6 * (THREADS - 1)
    the_player = player(tenant, "p")
    assert Event.objects.filter(player=the_player).count() == 7  # registration + 6
    # 30 + 15 + 10 = 55 ≥ 50: one CPA; RevShare 0.30 × the latest total 800 = 240.
    assert kinds(player=the_player, kind="cpa") == [("cpa", D("100"))]
    assert total(player=the_player, kind="revshare") == D("240")
    assert total(player=the_player) == D("340")
    assert not Statement.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_first_deposit_racing_its_registration_still_books_the_cpa(tenant, monkeypatch):
    """The registration and the FTD arrive at the same moment in two requests. The FTD's
    request read the player before the registration committed, and the registration's
    request cannot see the FTD it has not committed yet: one of them must still book."""
    import commissions.services as commission_services

    affiliate, _ = deal(tenant, "CPA", cpa_amount=D("75"))
    PromoCodeFactory(affiliate=affiliate, brand=tenant.brand, code="RACE")
    # The player exists (an earlier withdrawal), unregistered.
    post(tenant, body(tenant, "withdrawal", "wd", "2026-10-01T08:00:00Z", "p", "5"))

    real_book = commission_services.events_book
    registered, ftd_booking = threading.Event(), threading.Event()

    def book(*, events, newly_registered):
        if newly_registered:  # the registration: hold its transaction open until the
            registered.set()  # FTD's request has read the player and stored its event
            ftd_booking.wait(timeout=30)
        else:
            registered.wait(timeout=30)
            ftd_booking.set()
        return real_book(events=events, newly_registered=newly_registered)

    monkeypatch.setattr(commission_services, "events_book", book)
    bodies = [
        body(tenant, "registration", "reg", "2026-10-01T09:00:00Z", "p", promo_code="RACE"),
        body(tenant, "first_deposit", "ftd", "2026-10-01T10:00:00Z", "p", "20"),
    ]
    responses, failures = [None, None], []

    def worker(index):
        try:
            responses[index] = Client().post(
                "/api/v1/events",
                data=json.dumps(bodies[index]),
                content_type="application/json",
                HTTP_X_API_KEY=tenant.key,
            )
        except Exception as exc:  # reported below
            failures.append((index, repr(exc)))
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not failures, failures
    assert [r.status_code for r in responses] == [201, 201]
    assert player(tenant, "p").affiliate == affiliate
    assert kinds(player=player(tenant, "p")) == [("cpa", D("75"))]


def test_reassigning_an_organic_player_books_its_months_of_ngr(tenant):
    """docs/commissions.md, Reattribution: the new affiliate gets, for each month with NGR,
    the RevShare of the latest total, and a CPA if the deposits qualify under its plan."""
    manager = ManagerFactory(operator=tenant.operator)
    b, _ = deal(
        tenant, "B plan", cpa_amount=D("80"), revshare_rate=D("0.20"), admin_fee_percent=D("20")
    )
    post(tenant, body(tenant, "registration", "reg", "2026-10-01T09:00:00Z", "o"))  # organic
    post(tenant, body(tenant, "first_deposit", "ftd", "2026-10-02T10:00:00Z", "o", "100"))
    post(tenant, body(tenant, "ngr_update", "n1", "2026-10-10T00:00:00Z", "o", "400"))
    post(tenant, body(tenant, "ngr_update", "n2", "2026-10-20T00:00:00Z", "o", "1000"))
    post(tenant, body(tenant, "ngr_update", "n3", "2026-11-05T00:00:00Z", "o", "-50"))
    organic = player(tenant, "o")
    assert not LedgerEntry.objects.exists()

    player_reassign(player=organic, to_affiliate=b, reason="missed promo code", author=manager)

    # CPA 80 (replayed deposits); October 0.20 × 1000 × 0.80 = 160; November 0.20 × −50 = −10.
    assert total(affiliate=b, kind="cpa") == D("80")
    assert sorted(
        LedgerEntry.objects.filter(kind=LedgerKind.REATTRIBUTION).values_list(
            "reattributed_kind", "amount"
        )
    ) == [("revshare", D("-10")), ("revshare", D("160"))]
    # A later October update books only the difference: 1200 → 192, +32.
    post(tenant, body(tenant, "ngr_update", "n4", "2026-10-25T00:00:00Z", "o", "1200"))
    assert total(affiliate=b) == D("262")  # 80 + 192 − 10

    # Made organic, an October update arrives (nobody to pay), then back to B: B's October
    # is the latest total, 0.20 × 1500 × 0.80 = 240, not the 1200 it last booked.
    player_reassign(player=organic, to_affiliate=None, reason="wrong move", author=manager)
    assert total(affiliate=b) == D(0)
    post(tenant, body(tenant, "ngr_update", "n5", "2026-10-28T00:00:00Z", "o", "1500"))
    assert total(affiliate=b) == D(0)
    player_reassign(player=organic, to_affiliate=b, reason="it was B's", author=manager)
    assert total(affiliate=b) == D("310")  # CPA 80 + 240 − 10
