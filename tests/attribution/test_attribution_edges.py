"""Attribution rules (SPEC §4) at their edges: promo codes with spaces, IPv4 through a
dual-stack socket, links on a brand's home after the brand moves it."""

from datetime import timedelta

import pytest
from django.utils import timezone

from attribution.models import AttributionMethod, Click, Player
from attribution.services import tracking_link_create
from tests.attribution.conftest import promo_for
from tests.attribution.test_redirect import visit
from tests.conftest import event


def register(tenant, **fields):
    response = tenant.post(event(tenant.brand, **fields))
    assert response.status_code == 201, response.content
    return response.json()


@pytest.mark.parametrize("sent", [" WELCOME50", "WELCOME50 ", "\tWELCOME50\n"])
def test_promo_code_with_surrounding_whitespace_still_attributes(tenant, affiliate, sent):
    # Codes can never contain whitespace (promo_code_create strips and refuses it), so a
    # code typed with a stray space by the player can only mean that code.
    promo = promo_for(affiliate, tenant.brand, "Welcome50")
    body = register(tenant, promo_code=sent)
    player = Player.objects.get(brand=tenant.brand, external_ref="player_001")
    assert body.get("warnings") is None
    assert (player.attribution_method, player.promo_code_id) == (
        AttributionMethod.PROMO_CODE,
        promo.pk,
    )


def test_last_click_matches_an_ipv4_client_seen_through_a_dual_stack_socket(client, tenant, link):
    # gunicorn bound to [::] reports IPv4 visitors as ::ffff:a.b.c.d; the operator's site
    # reports the same visitor as a.b.c.d. Same IP: last click must match.
    response = visit(client, link, ip="::ffff:203.0.113.7")
    assert response.status_code == 302
    assert Click.objects.count() == 1
    register(
        tenant,
        ip_address="203.0.113.7",
        event_time=(timezone.now() + timedelta(seconds=1)).isoformat(),
    )
    player = Player.objects.get(brand=tenant.brand, external_ref="player_001")
    assert player.attribution_method == AttributionMethod.LAST_CLICK


def test_a_link_on_the_brand_default_keeps_recording_after_the_brand_moves_its_default(
    client, tenant, affiliate
):
    tenant.brand.allowed_domains = ""  # the default URL's host is always allowed
    tenant.brand.save()
    link = tracking_link_create(affiliate=affiliate, brand=tenant.brand)  # "the brand's default"
    tenant.brand.default_landing_url = "https://new-home.example.net/welcome"
    tenant.brand.save()

    response = visit(client, link, "sub1=a")

    # An approved affiliate's link: a click is recorded and the visitor gets a click_id.
    assert Click.objects.count() == 1
    assert "click_id=" in response["Location"]
