"""Attribution inside the ingestion pipeline: privacy, set-based queries, concurrency."""

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from attribution.models import AttributionMethod, Click, Player
from attribution.services import _last_clicks_portable, _last_clicks_postgresql, events_apply
from events.models import Event
from events.services import events_ingest
from tests.attribution.conftest import EVENT_TIME, click_on, promo_for
from tests.conftest import event
from tests.factories import AffiliateFactory, TrackingLinkFactory

RAW_IPS = ("198.51.100.77", "2001:db8:abcd::77", "192.0.2.55")


@override_settings(TRUSTED_PROXY_IP_HEADER="HTTP_X_FORWARDED_FOR")
def test_the_raw_ip_is_stored_nowhere(client, tenant, link):
    browser = "Mozilla/5.0 (X11; Linux x86_64) Firefox/126.0"
    client.get(
        f"/t/{link.code}?sub1=x",
        REMOTE_ADDR=RAW_IPS[2],
        HTTP_X_FORWARDED_FOR=RAW_IPS[0],
        HTTP_USER_AGENT=browser,
    )
    client.get(f"/t/{link.code}", REMOTE_ADDR=RAW_IPS[1], HTTP_USER_AGENT=browser)
    click = Click.objects.order_by("created_at").first()
    now = timezone.now().isoformat()
    body = tenant.post(event(tenant.brand, ip_address=RAW_IPS[0], user_agent="UA", event_time=now))
    assert body.status_code == 201
    body = tenant.post(
        event(
            tenant.brand,
            player_external_ref="p2",
            idempotency_key="k2",
            ip_address=RAW_IPS[1],
            event_time=now,
        )
    )
    assert body.status_code == 201
    # The IPs did their job: both players were attributed by last click.
    assert Player.objects.get(external_ref="player_001").click_id == click.id
    assert Player.objects.get(external_ref="p2").attribution_method == AttributionMethod.LAST_CLICK

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = 'public' AND data_type IN "
            "('text', 'character varying', 'character', 'json', 'jsonb', 'inet', 'cidr')"
        )
        columns = cursor.fetchall()
        assert len(columns) > 20
        leaks = []
        for table, column in columns:
            for ip in RAW_IPS:
                cursor.execute(
                    f'SELECT count(*) FROM "{table}" WHERE "{column}"::text LIKE %s', [f"%{ip}%"]
                )
                if cursor.fetchone()[0]:
                    leaks.append((table, column, ip))
    assert leaks == []


def _batch(tenant, prefix, n, clicks, promo, ip):
    raw = []
    for i in range(n):
        fields = {}
        if i % 4 == 0:
            fields["click_id"] = str(clicks[i % len(clicks)].id)
        elif i % 4 == 1:
            fields["promo_code"] = promo
        elif i % 4 == 2:
            fields["ip_address"] = ip
        raw.append(
            event(
                tenant.brand,
                player_external_ref=f"{prefix}_{i}",
                idempotency_key=f"{prefix}_{i}",
                **fields,
            )
        )
    return raw


def test_attribution_queries_do_not_grow_with_the_batch(tenant, link):
    clicks = [click_on(link, ip=f"10.0.0.{i}") for i in range(5)]
    click_on(link, ip="10.1.1.1", at=EVENT_TIME - timedelta(hours=1))
    promo_for(link.affiliate, tenant.brand, "BATCH")
    counts = {}
    for n in (8, 100):
        raw = _batch(tenant, f"b{n}", n, clicks, "batch", "10.1.1.1")
        with CaptureQueriesContext(connection) as ctx:
            outcomes = events_ingest(api_key=tenant.api_key, raw_events=raw)
        assert {o.status for o in outcomes} == {"accepted"}
        counts[n] = len(ctx.captured_queries)
    assert counts[8] == counts[100]
    methods = Player.objects.filter(external_ref__startswith="b100_").values_list(
        "attribution_method", flat=True
    )
    assert sorted(set(methods)) == ["click_id", "last_click", "none", "promo_code"]
    assert list(methods).count("none") == 25


def test_events_apply_query_budget(tenant, link):
    """click_ids, promo codes, last-click candidates, one update: four queries for a whole
    batch of registrations, plus one for its player_status events."""
    clicks = [click_on(link, ip=f"10.0.0.{i}") for i in range(5)]
    promo_for(link.affiliate, tenant.brand, "BATCH")
    raw = _batch(tenant, "q", 40, clicks, "batch", "10.0.0.1")
    raw.append(
        event(
            tenant.brand,
            event_type="player_status",
            status="closed",
            player_external_ref="q_3",
            idempotency_key="status_q3",
            event_time="2026-03-16T00:00:00Z",
        )
    )
    from attribution.services import players_get_or_create

    players = players_get_or_create(keys={(tenant.brand.id, r["player_external_ref"]) for r in raw})
    events = []
    for r in raw:
        e = Event(
            operator=tenant.operator,
            brand=tenant.brand,
            player=players[(tenant.brand.id, r["player_external_ref"])],
            event_type=r["event_type"],
            event_time=r["event_time"],
            received_at=EVENT_TIME,
            idempotency_key=r["idempotency_key"],
            payload={k: v for k, v in r.items() if k != "ip_address"}
            | ({"ip_hash": clicks[1].ip_hash} if "ip_address" in r else {}),
            payload_hash="x",
        )
        e.event_time = (
            EVENT_TIME if r["event_type"] == "registration" else EVENT_TIME + timedelta(1)
        )
        events.append(e)
    Event.objects.bulk_create(events)
    with CaptureQueriesContext(connection) as ctx:
        result = events_apply(events=events)
    assert len(ctx.captured_queries) == 5
    assert len(result.newly_registered) == 40
    assert Player.objects.get(brand=tenant.brand, external_ref="q_3").status == "closed"


def test_the_portable_last_click_query_agrees_with_the_postgresql_one(tenant, link):
    """SQLite (the demo database) runs the ORM variant; both must pick the same clicks."""
    other = TrackingLinkFactory(
        affiliate=AffiliateFactory(operator=tenant.operator), brand=tenant.brand
    )
    for hours, lk, ip in [(1, link, "10.0.0.1"), (5, other, "10.0.0.1"), (2, other, "10.0.0.2")]:
        click_on(lk, ip=ip, at=EVENT_TIME - timedelta(hours=hours))
    click_on(link, ip="10.0.0.3", at=EVENT_TIME - timedelta(days=31))
    click_on(link, ip="10.0.0.4", at=EVENT_TIME + timedelta(hours=1))
    from attribution.services import _Decision
    from revvvs.hashing import ip_hmac

    decisions = []
    for ip in ("10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5"):
        e = Event(
            brand_id=tenant.brand.id,
            operator_id=tenant.operator.pk,
            event_time=EVENT_TIME,
            payload={"ip_hash": ip_hmac(ip)},
        )
        decisions.append(_Decision(event=e))
    found = _last_clicks_postgresql(decisions)
    assert set(found) == {0, 1}
    assert _last_clicks_portable(decisions) == found


@pytest.mark.django_db(transaction=True)
def test_concurrent_registrations_of_one_player_attribute_once(tenant):
    """Two registrations of the same player, with different keys and clicks, sent at the same
    moment by two threads: one registers and attributes, the other is accepted with a
    warning and changes nothing."""
    affiliates = [AffiliateFactory(operator=tenant.operator) for _ in range(2)]
    links = [TrackingLinkFactory(affiliate=a, brand=tenant.brand) for a in affiliates]
    rounds = 6
    clicks = [[click_on(link) for link in links] for _ in range(rounds)]
    results = {}

    def send(round_no, side, barrier):
        try:
            barrier.wait()
            results[(round_no, side)] = events_ingest(
                api_key=tenant.api_key,
                raw_events=[
                    event(
                        tenant.brand,
                        player_external_ref=f"racer_{round_no}",
                        idempotency_key=f"reg_{round_no}_{side}",
                        click_id=str(clicks[round_no][side].id),
                    )
                ],
            )[0]
        finally:
            connection.close()

    for round_no in range(rounds):
        barrier = threading.Barrier(2)
        threads = [threading.Thread(target=send, args=(round_no, side, barrier)) for side in (0, 1)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    for round_no in range(rounds):
        outcomes = [results[(round_no, side)] for side in (0, 1)]
        assert [o.status for o in outcomes] == ["accepted", "accepted"]
        winners = [side for side, o in enumerate(outcomes) if not o.warnings]
        assert len(winners) == 1, outcomes
        loser = outcomes[1 - winners[0]]
        assert loser.warnings == ["player already registered; this registration changes nothing"]
        player = Player.objects.get(external_ref=f"racer_{round_no}")
        assert player.registration_event_id == outcomes[winners[0]].event_id
        assert player.click_id == clicks[round_no][winners[0]].id
        assert player.affiliate_id == affiliates[winners[0]].pk
