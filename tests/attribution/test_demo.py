"""The demo seed: idempotent, and it exercises every attribution rule."""

import json
from io import StringIO

from django.core.management import call_command

from attribution.models import Affiliate, AttributionMethod, Click, Player, PromoCode, TrackingLink
from events.models import Event


def snapshot():
    return {
        "affiliates": sorted(Affiliate.objects.values_list("email", "status", "user__password")),
        "links": sorted(TrackingLink.objects.values_list("code", "landing_url", "affiliate_id")),
        "promos": sorted(PromoCode.objects.values_list("code", "affiliate_id")),
        "clicks": sorted(
            Click.objects.values_list("id", "created_at", "is_unique", "is_bot", "ip_hash")
        ),
        "players": sorted(
            Player.objects.values_list(
                "external_ref", "registered_at", "affiliate_id", "click_id", "attribution_method"
            )
        ),
        "events": sorted(Event.objects.values_list("idempotency_key", "event_time", "warnings")),
    }


def seed():
    out = StringIO()
    call_command("seed_demo", "--json", stdout=out)
    return json.loads(out.getvalue())


def test_seed_twice_changes_nothing(db):
    first = seed()
    before = snapshot()
    second = seed()
    assert snapshot() == before
    assert first["affiliates"] == second["affiliates"]


def test_seed_covers_every_rule_and_lists_the_affiliates(db):
    result = seed()
    statuses = {a["status"] for a in result["affiliates"]}
    assert statuses == {"approved", "pending"}
    for affiliate in result["affiliates"]:
        assert set(affiliate) >= {  # other apps may add their own keys (e.g. plans)
            "affiliate_id",
            "email",
            "password",
            "status",
            "links",
            "promo_codes",
        }
        for link in affiliate["links"]:
            assert link["url"] == f"http://127.0.0.1:8000/t/{link['code']}"
        assert Affiliate.objects.get(pk=affiliate["affiliate_id"]).user.check_password(
            affiliate["password"]
        )
    brands = {link["brand_id"] for a in result["affiliates"] for link in a["links"]}
    assert brands == {b["brand_id"] for b in result["brands"]}
    assert 200 <= Click.objects.count() <= 1000
    assert Click.objects.filter(is_bot=True).exists()
    assert Click.objects.filter(is_unique=False).exists()
    methods = set(Player.objects.values_list("attribution_method", flat=True))
    assert {
        AttributionMethod.CLICK_ID,
        AttributionMethod.PROMO_CODE,
        AttributionMethod.LAST_CLICK,
        AttributionMethod.NONE,
    } <= methods
    assert Event.objects.count() >= 200
    assert not Event.objects.exclude(idempotency_key__startswith="demo_").exists()
    from django.utils import timezone

    assert not Event.objects.filter(event_time__gt=timezone.now()).exists()
    assert not Click.objects.filter(created_at__gt=timezone.now()).exists()
    assert not Player.objects.filter(registered_at__isnull=True).exists()
