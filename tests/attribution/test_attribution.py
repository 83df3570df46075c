"""Attribution of registrations through the real Event API (SPEC §4)."""

import uuid
from datetime import timedelta

import pytest

from attribution.models import AffiliateStatus, AttributionMethod, Player
from tests.attribution.conftest import EVENT_TIME, click_on, promo_for
from tests.conftest import event
from tests.factories import AffiliateFactory, BrandFactory, TrackingLinkFactory

IP = "203.0.113.7"


def register(tenant, brand=None, ref="player_001", key=None, **fields):
    response = tenant.post(
        event(
            brand or tenant.brand,
            player_external_ref=ref,
            idempotency_key=key or f"reg_{ref}",
            **fields,
        )
    )
    assert response.status_code == 201, response.content
    return response.json()


def player(tenant, ref="player_001", brand=None):
    return Player.objects.get(brand=brand or tenant.brand, external_ref=ref)


# --- click_id -------------------------------------------------------------------------------


def test_click_id_attributes_to_the_clicks_affiliate(tenant, link):
    click = click_on(link)
    body = register(tenant, click_id=str(click.id), country="GB")
    assert "warnings" not in body
    p = player(tenant)
    assert (p.affiliate_id, p.click_id, p.attribution_method) == (
        link.affiliate_id,
        click.id,
        AttributionMethod.CLICK_ID,
    )
    assert p.registered_at == EVENT_TIME
    assert p.country == "GB"
    assert str(p.registration_event_id) == body["event_id"]

    detail = tenant.get_event(body["event_id"]).json()
    assert detail["attribution"]["applied"] is True
    assert detail["attribution"]["method"] == "click_id"
    assert detail["attribution"]["affiliate_id"] == link.affiliate_id
    assert detail["attribution"]["click_id"] == str(click.id)
    assert detail["warnings"] == []


def test_click_id_on_another_brand_of_the_same_operator_attributes(tenant, affiliate):
    other_brand = BrandFactory(operator=tenant.operator)
    click = click_on(TrackingLinkFactory(affiliate=affiliate, brand=other_brand))
    register(tenant, click_id=str(click.id))
    assert player(tenant).attribution_method == AttributionMethod.CLICK_ID
    assert player(tenant).affiliate_id == affiliate.pk


def test_click_id_attributes_even_a_click_made_after_the_registration_time(tenant, link):
    # The operator saw the click_id on the landing page: that proves the visit, whatever
    # the clocks say; only last-click (by IP) is bounded by the window.
    click = click_on(link, at=EVENT_TIME + timedelta(minutes=3))
    register(tenant, click_id=str(click.id))
    assert player(tenant).click_id == click.id


def test_another_operators_click_id_never_attributes(tenant, other_tenant):
    foreign_affiliate = AffiliateFactory(operator=other_tenant.operator)
    foreign_click = click_on(
        TrackingLinkFactory(affiliate=foreign_affiliate, brand=other_tenant.brand)
    )
    body = register(tenant, click_id=str(foreign_click.id))
    assert body["warnings"] == ["click_id not found"]
    p = player(tenant)
    assert p.affiliate_id is None
    assert p.click_id is None
    assert p.attribution_method == AttributionMethod.NONE


@pytest.mark.parametrize("click_id", [str(uuid.uuid4()), "abc-123-def", "not a uuid at all"])
def test_unknown_click_id_is_a_warning_and_the_player_is_organic(tenant, click_id):
    body = register(tenant, click_id=click_id)
    assert body["status"] == "accepted"
    assert body["warnings"] == ["click_id not found"]
    assert player(tenant).attribution_method == AttributionMethod.NONE
    detail = tenant.get_event(body["event_id"]).json()
    assert detail["warnings"] == ["click_id not found"]
    assert detail["attribution"]["method"] == "none"


def test_unknown_click_id_falls_through_to_the_promo_code(tenant, affiliate):
    promo_for(affiliate, tenant.brand, "WELCOME50")
    body = register(tenant, click_id=str(uuid.uuid4()), promo_code="WELCOME50")
    assert body["warnings"] == ["click_id not found"]
    assert player(tenant).attribution_method == AttributionMethod.PROMO_CODE


def test_foreign_click_id_falls_through_to_last_click(tenant, other_tenant, link):
    foreign_click = click_on(
        TrackingLinkFactory(
            affiliate=AffiliateFactory(operator=other_tenant.operator), brand=other_tenant.brand
        ),
        ip=IP,
    )
    own_click = click_on(link, ip=IP, at=EVENT_TIME - timedelta(hours=1))
    body = register(tenant, click_id=str(foreign_click.id), ip_address=IP)
    assert body["warnings"] == ["click_id not found"]
    p = player(tenant)
    assert (p.attribution_method, p.click_id) == (AttributionMethod.LAST_CLICK, own_click.id)


# --- promo_code -----------------------------------------------------------------------------


@pytest.mark.parametrize("sent", ["WELCOME50", "welcome50", "WeLcOmE50"])
def test_promo_code_is_case_insensitive(tenant, affiliate, sent):
    promo = promo_for(affiliate, tenant.brand, "Welcome50")
    body = register(tenant, promo_code=sent)
    assert "warnings" not in body
    p = player(tenant)
    assert (p.attribution_method, p.promo_code_id, p.affiliate_id) == (
        AttributionMethod.PROMO_CODE,
        promo.pk,
        affiliate.pk,
    )
    assert tenant.get_event(body["event_id"]).json()["attribution"]["promo_code"] == "Welcome50"


def test_unknown_and_foreign_promo_codes_are_warnings(tenant, other_tenant):
    promo_for(AffiliateFactory(operator=other_tenant.operator), other_tenant.brand, "THEIRS")
    body = register(tenant, promo_code="THEIRS")
    assert body["warnings"] == ["promo_code not found"]
    body = register(tenant, ref="player_002", promo_code="NOPE")
    assert body["warnings"] == ["promo_code not found"]
    assert Player.objects.filter(affiliate__isnull=False).count() == 0


def test_promo_code_falls_through_to_last_click_when_unknown(tenant, link):
    click = click_on(link, ip=IP, at=EVENT_TIME - timedelta(days=1))
    body = register(tenant, promo_code="NOPE", ip_address=IP)
    assert body["warnings"] == ["promo_code not found"]
    assert player(tenant).click_id == click.id


# --- precedence ----------------------------------------------------------------------------


def test_click_id_wins_over_promo_code_and_last_click(tenant):
    by_click, by_promo, by_ip = (AffiliateFactory(operator=tenant.operator) for _ in range(3))
    click = click_on(TrackingLinkFactory(affiliate=by_click, brand=tenant.brand), ip="10.0.0.1")
    promo_for(by_promo, tenant.brand, "PROMO1")
    click_on(TrackingLinkFactory(affiliate=by_ip, brand=tenant.brand), ip=IP)
    body = register(tenant, click_id=str(click.id), promo_code="PROMO1", ip_address=IP)
    assert "warnings" not in body
    p = player(tenant)
    assert (p.affiliate_id, p.attribution_method) == (by_click.pk, AttributionMethod.CLICK_ID)
    assert p.promo_code_id is None


def test_promo_code_wins_over_last_click(tenant):
    by_promo, by_ip = (AffiliateFactory(operator=tenant.operator) for _ in range(2))
    promo_for(by_promo, tenant.brand, "PROMO1")
    click_on(TrackingLinkFactory(affiliate=by_ip, brand=tenant.brand), ip=IP)
    register(tenant, promo_code="promo1", ip_address=IP)
    p = player(tenant)
    assert (p.affiliate_id, p.attribution_method) == (by_promo.pk, AttributionMethod.PROMO_CODE)
    assert p.click_id is None


def test_nothing_matches_means_organic(tenant, link):
    click_on(link, ip="10.9.9.9")
    register(tenant, ip_address=IP)
    p = player(tenant)
    assert (p.affiliate_id, p.attribution_method) == (None, AttributionMethod.NONE)


# --- last click and its window -------------------------------------------------------------


def test_last_click_takes_the_latest_click_from_that_ip_on_that_brand(tenant):
    first, last = (AffiliateFactory(operator=tenant.operator) for _ in range(2))
    click_on(TrackingLinkFactory(affiliate=first, brand=tenant.brand), at=EVENT_TIME - timedelta(3))
    latest = click_on(
        TrackingLinkFactory(affiliate=last, brand=tenant.brand), at=EVENT_TIME - timedelta(1)
    )
    register(tenant, ip_address=IP)
    p = player(tenant)
    assert (p.affiliate_id, p.click_id, p.attribution_method) == (
        last.pk,
        latest.id,
        AttributionMethod.LAST_CLICK,
    )


def test_last_click_ignores_clicks_on_another_brand(tenant, affiliate, second_brand):
    click_on(TrackingLinkFactory(affiliate=affiliate, brand=second_brand), ip=IP)
    register(tenant, ip_address=IP)
    assert player(tenant).attribution_method == AttributionMethod.NONE


@pytest.mark.parametrize(
    ("window_days", "click_age", "attributed"),
    [
        (30, timedelta(days=30) - timedelta(seconds=1), True),  # just inside
        (30, timedelta(days=30), True),  # on the edge
        (30, timedelta(days=30) + timedelta(seconds=1), False),  # just outside
        (7, timedelta(days=7) - timedelta(seconds=1), True),
        (7, timedelta(days=7) + timedelta(seconds=1), False),
        (30, timedelta(0), True),  # at the same instant
        (30, -timedelta(seconds=1), False),  # a click after the registration
    ],
)
def test_last_click_window_edges(tenant, link, window_days, click_age, attributed):
    tenant.brand.attribution_window_days = window_days
    tenant.brand.save()
    click = click_on(link, ip=IP, at=EVENT_TIME - click_age)
    register(tenant, ip_address=IP)
    p = player(tenant)
    if attributed:
        assert (p.click_id, p.attribution_method) == (click.id, AttributionMethod.LAST_CLICK)
    else:
        assert (p.click_id, p.attribution_method) == (None, AttributionMethod.NONE)


def test_last_click_matches_ipv6_in_any_spelling(tenant, link):
    click = click_on(link, ip="2001:db8::1")
    register(tenant, ip_address="2001:0db8:0000:0000:0000:0000:0000:0001")
    assert player(tenant).click_id == click.id


def test_last_click_skips_bot_clicks(tenant, link):
    human = click_on(link, ip=IP, at=EVENT_TIME - timedelta(hours=2))
    click_on(link, ip=IP, at=EVENT_TIME - timedelta(hours=1), is_bot=True)
    register(tenant, ip_address=IP)
    assert player(tenant).click_id == human.id


def test_a_bot_flagged_click_id_still_attributes(tenant, link):
    click = click_on(link, is_bot=True)
    register(tenant, click_id=str(click.id))
    assert player(tenant).click_id == click.id


# --- affiliates that are not approved ------------------------------------------------------


@pytest.mark.parametrize("status", [AffiliateStatus.SUSPENDED, AffiliateStatus.REJECTED])
def test_click_id_of_a_suspended_affiliate_does_not_attribute(tenant, link, status):
    click = click_on(link, ip=IP)
    link.affiliate.status = status
    link.affiliate.save()
    other = AffiliateFactory(operator=tenant.operator)
    promo_for(other, tenant.brand, "NEXT")
    body = register(tenant, click_id=str(click.id), promo_code="NEXT")
    assert body["warnings"] == ["click_id belongs to an affiliate who is not approved; not used"]
    assert player(tenant).affiliate_id == other.pk


def test_promo_code_of_a_suspended_affiliate_does_not_attribute(tenant, affiliate):
    promo_for(affiliate, tenant.brand, "OLD")
    affiliate.status = AffiliateStatus.SUSPENDED
    affiliate.save()
    body = register(tenant, promo_code="OLD")
    assert body["warnings"] == ["promo_code belongs to an affiliate who is not approved; not used"]
    assert player(tenant).attribution_method == AttributionMethod.NONE


def test_last_click_skips_clicks_of_suspended_affiliates(tenant, link):
    active = click_on(
        TrackingLinkFactory(
            affiliate=AffiliateFactory(operator=tenant.operator), brand=tenant.brand
        ),
        at=EVENT_TIME - timedelta(hours=5),
    )
    click_on(link, at=EVENT_TIME - timedelta(hours=1))
    link.affiliate.status = AffiliateStatus.SUSPENDED
    link.affiliate.save()
    register(tenant, ip_address=IP)
    assert player(tenant).click_id == active.id


def test_suspending_later_keeps_players_already_attributed(tenant, link):
    from attribution.services import affiliate_suspend

    click = click_on(link)
    register(tenant, click_id=str(click.id))
    affiliate_suspend(affiliate=link.affiliate)
    assert player(tenant).affiliate_id == link.affiliate_id


# --- once only -----------------------------------------------------------------------------


def test_second_registration_is_accepted_with_a_warning_and_changes_nothing(tenant, link):
    first_click = click_on(link)
    other_click = click_on(
        TrackingLinkFactory(
            affiliate=AffiliateFactory(operator=tenant.operator), brand=tenant.brand
        )
    )
    first = register(tenant, click_id=str(first_click.id), country="GB")
    second = register(
        tenant,
        key="reg_again",
        click_id=str(other_click.id),
        country="DE",
        event_time="2026-03-16T10:00:00Z",
    )
    assert second["warnings"] == ["player already registered; this registration changes nothing"]
    p = player(tenant)
    assert (p.click_id, p.country, str(p.registration_event_id)) == (
        first_click.id,
        "GB",
        first["event_id"],
    )
    assert p.registered_at == EVENT_TIME
    detail = tenant.get_event(second["event_id"]).json()
    assert detail["attribution"] == {
        "applied": False,
        "reason": "player already registered by another event",
    }


def test_two_registrations_of_one_player_in_one_batch_attribute_once(tenant, link):
    click = click_on(link)
    body = tenant.post(
        {
            "events": [
                event(
                    tenant.brand,
                    idempotency_key="later",
                    event_time="2026-03-15T11:00:00Z",
                    promo_code="X",
                ),
                event(tenant.brand, idempotency_key="earlier", click_id=str(click.id)),
            ]
        }
    ).json()
    assert body["summary"]["accepted"] == 2
    later, earlier = body["results"]
    assert "warnings" not in earlier
    assert later["warnings"] == ["player already registered; this registration changes nothing"]
    assert str(player(tenant).registration_event_id) == earlier["event_id"]
    assert player(tenant).click_id == click.id


# --- events before and after the registration ---------------------------------------------


def deposit(tenant, key, time, ref="player_001", amount="50.00"):
    return tenant.post(
        event(
            tenant.brand,
            event_type="first_deposit" if key.startswith("ftd") else "deposit",
            event_time=time,
            player_external_ref=ref,
            idempotency_key=key,
            currency="EUR",
            amount=amount,
        )
    )


def test_events_before_the_registration_leave_the_player_unregistered_until_it_comes(
    tenant, link, monkeypatch
):
    import commissions.services

    booked = []
    original = commissions.services.events_book

    def spy(*, events, newly_registered):
        booked.append(([e.idempotency_key for e in events], list(newly_registered)))
        return original(events=events, newly_registered=newly_registered)

    monkeypatch.setattr(commissions.services, "events_book", spy)

    assert deposit(tenant, "ftd_1", "2026-03-15T10:30:00Z").status_code == 201
    p = player(tenant)
    assert (p.registered_at, p.affiliate_id, p.attribution_method) == (None, None, "")
    assert booked[-1] == (["ftd_1"], [])

    click = click_on(link)
    register(tenant, click_id=str(click.id))
    p = player(tenant)
    assert p.registered_at == EVENT_TIME
    assert p.affiliate_id == link.affiliate_id
    keys, newly = booked[-1]
    assert keys == ["reg_player_001"]
    assert [n.pk for n in newly] == [p.pk]
    assert newly[0].affiliate_id == link.affiliate_id
    assert newly[0].attribution_method == AttributionMethod.CLICK_ID


def test_events_after_the_registration_do_not_register_again(tenant, link, monkeypatch):
    import commissions.services

    calls = []
    monkeypatch.setattr(
        commissions.services,
        "events_book",
        lambda *, events, newly_registered: calls.append(list(newly_registered)),
    )
    register(tenant, click_id=str(click_on(link).id))
    assert deposit(tenant, "dep_1", "2026-03-15T12:00:00Z").status_code == 201
    assert [len(c) for c in calls] == [1, 0]
    assert player(tenant).affiliate_id == link.affiliate_id


def test_registration_and_deposits_in_one_batch_in_any_order(tenant, link, monkeypatch):
    import commissions.services

    calls = []
    monkeypatch.setattr(
        commissions.services,
        "events_book",
        lambda *, events, newly_registered: calls.append(
            ([e.idempotency_key for e in events], [p.external_ref for p in newly_registered])
        ),
    )
    click = click_on(link)
    body = tenant.post(
        {
            "events": [
                {
                    **event(
                        tenant.brand,
                        event_type="deposit",
                        idempotency_key="dep",
                        event_time="2026-03-15T10:10:00Z",
                        currency="EUR",
                        amount="10",
                    )
                },
                event(tenant.brand, click_id=str(click.id)),
            ]
        }
    ).json()
    assert body["summary"]["accepted"] == 2
    # The pipeline hands the events over in event_time order, with the registered player.
    assert calls == [(["reg_player_001", "dep"], ["player_001"])]


# --- player_status ------------------------------------------------------------------------


def status_event(tenant, key, status, time):
    return tenant.post(
        event(
            tenant.brand,
            event_type="player_status",
            idempotency_key=key,
            status=status,
            event_time=time,
        )
    )


def test_player_status_changes_the_status_and_the_latest_dated_wins(tenant):
    register(tenant)
    assert status_event(tenant, "s1", "self_excluded", "2026-03-20T00:00:00Z").status_code == 201
    assert player(tenant).status == "self_excluded"
    # An older status sent late does not undo the newer one.
    assert status_event(tenant, "s0", "active", "2026-03-18T00:00:00Z").status_code == 201
    assert player(tenant).status == "self_excluded"
    assert status_event(tenant, "s2", "closed", "2026-03-21T00:00:00Z").status_code == 201
    assert player(tenant).status == "closed"


def test_player_status_in_a_batch_takes_the_latest_dated(tenant):
    body = tenant.post(
        {
            "events": [
                event(
                    tenant.brand,
                    event_type="player_status",
                    idempotency_key="b",
                    status="fraud",
                    event_time="2026-03-21T00:00:00Z",
                ),
                event(
                    tenant.brand,
                    event_type="player_status",
                    idempotency_key="a",
                    status="closed",
                    event_time="2026-03-20T00:00:00Z",
                ),
            ]
        }
    ).json()
    assert body["summary"]["accepted"] == 2
    assert player(tenant).status == "fraud"
