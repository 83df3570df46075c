"""The redirect's link cache (attribution/selectors.py, TRACKING_LINK_CACHE_SECONDS).

The test settings read the link on every click (0 seconds); these tests turn the cache on
(5 seconds) and start every test with an empty cache."""

from urllib.parse import parse_qsl, urlsplit

import pytest
from django.test import override_settings

from attribution.models import Click
from attribution.selectors import RedirectLinkCache, redirect_link_cache, tracking_link_for_redirect
from attribution.services import affiliate_approve, affiliate_suspend
from tests.factories import TrackingLinkFactory

CHROME = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/124.0 Safari/537.36"


@pytest.fixture(autouse=True)
def link_cache_on():
    redirect_link_cache.clear()
    with override_settings(TRACKING_LINK_CACHE_SECONDS=5):
        yield
    redirect_link_cache.clear()


class FakeClock:
    def __init__(self, start=1000.0):
        self.now = start

    def __call__(self):
        return self.now


@pytest.fixture
def clock(monkeypatch):
    fake = FakeClock()
    monkeypatch.setattr(redirect_link_cache, "clock", fake)
    return fake


def visit(client, link, query="sub1=a"):
    return client.get(
        f"/t/{link.code}?{query}", REMOTE_ADDR="198.51.100.10", HTTP_USER_AGENT=CHROME
    )


def click_id_of(response) -> str:
    return dict(parse_qsl(urlsplit(response["Location"]).query))["click_id"]


def test_a_cached_link_is_read_once(link, django_assert_num_queries):
    with django_assert_num_queries(1):
        first = tracking_link_for_redirect(code=link.code)
    with django_assert_num_queries(0):
        second = tracking_link_for_redirect(code=link.code)

    assert second == first
    assert (second.id, second.affiliate_id, second.brand_id, second.landing_url) == (
        link.pk,
        link.affiliate_id,
        link.brand_id,
        link.landing_url,
    )
    assert second.records_clicks is True


@override_settings(TRACKING_LINK_CACHE_SECONDS=0)
def test_without_a_cache_time_every_read_queries(link, django_assert_num_queries):
    tracking_link_for_redirect(code=link.code)
    with django_assert_num_queries(1):
        tracking_link_for_redirect(code=link.code)


def test_a_suspension_reaches_the_redirect_when_the_cached_link_expires(
    link, clock, django_assert_num_queries
):
    assert tracking_link_for_redirect(code=link.code).records_clicks is True
    affiliate_suspend(affiliate=link.affiliate)

    clock.now += 4.9
    with django_assert_num_queries(0):
        assert tracking_link_for_redirect(code=link.code).records_clicks is True  # stale

    clock.now += 0.2  # 5.1 s after the read
    with django_assert_num_queries(1):
        assert tracking_link_for_redirect(code=link.code).records_clicks is False


def test_a_reapproval_also_waits_for_the_cached_link_to_expire(link, clock):
    affiliate_suspend(affiliate=link.affiliate)
    assert tracking_link_for_redirect(code=link.code).records_clicks is False
    affiliate_approve(affiliate=link.affiliate)

    clock.now += 4
    assert tracking_link_for_redirect(code=link.code).records_clicks is False
    clock.now += 2
    assert tracking_link_for_redirect(code=link.code).records_clicks is True


def test_a_click_through_the_stale_cache_of_a_suspended_affiliate_is_not_stored(
    client, link, tenant, clock
):
    first = visit(client, link)
    assert click_id_of(first) == str(Click.objects.get().id)
    affiliate_suspend(affiliate=link.affiliate)

    clock.now += 1
    stale = visit(client, link)
    # The cache still says approved: the visitor gets the deep link with a click_id...
    assert stale.status_code == 302
    assert stale["Location"].startswith(link.landing_url + "?")
    assert click_id_of(stale) != click_id_of(first)
    # ...but the insert checks the affiliate itself: the click is not stored.
    assert Click.objects.count() == 1

    clock.now += 5
    fresh = visit(client, link)
    assert fresh["Location"] == tenant.brand.default_landing_url
    assert Click.objects.count() == 1


def test_a_brand_domain_removed_reaches_the_redirect_when_the_cached_link_expires(
    client, tenant, affiliate, clock
):
    home = urlsplit(tenant.brand.default_landing_url).hostname
    tenant.brand.allowed_domains = f"{home}, deep.example.org"
    tenant.brand.save()
    link = TrackingLinkFactory(
        affiliate=affiliate, brand=tenant.brand, landing_url="https://deep.example.org/x"
    )
    assert visit(client, link)["Location"].startswith("https://deep.example.org/x?click_id=")
    tenant.brand.allowed_domains = home
    tenant.brand.save()

    clock.now += 6
    assert visit(client, link)["Location"].startswith(
        f"{tenant.brand.default_landing_url}?click_id="
    )
    assert Click.objects.count() == 2


def test_an_unknown_code_is_not_cached(affiliate, tenant, django_assert_num_queries):
    with django_assert_num_queries(1):
        assert tracking_link_for_redirect(code="brandnew1") is None

    link = TrackingLinkFactory(affiliate=affiliate, brand=tenant.brand, code="brandnew1")

    with django_assert_num_queries(1):
        found = tracking_link_for_redirect(code="brandnew1")
    assert found is not None
    assert found.id == link.pk
    assert found.records_clicks is True


def test_a_deleted_link_stays_found_until_it_expires_then_is_gone(link, clock):
    assert tracking_link_for_redirect(code=link.code).id == link.pk
    code = link.code
    link.delete()

    clock.now += 6
    assert tracking_link_for_redirect(code=code) is None
    assert tracking_link_for_redirect(code=code) is None


def test_a_full_cache_still_answers_every_link(affiliate, tenant, django_assert_num_queries):
    cache = RedirectLinkCache(size=2)
    links = [TrackingLinkFactory(affiliate=affiliate, brand=tenant.brand) for _ in range(3)]

    for _round in range(2):
        for link in links:
            found = cache.get(link.code, seconds=5)
            assert (found.id, found.landing_url, found.records_clicks) == (
                link.pk,
                link.landing_url,
                True,
            )
    # The last link read is cached.
    with django_assert_num_queries(0):
        assert cache.get(links[-1].code, seconds=5).id == links[-1].pk


def test_a_cache_with_its_own_clock_expires_by_that_clock(link):
    clock = FakeClock()
    cache = RedirectLinkCache(clock=clock)
    assert cache.get(link.code, seconds=5).records_clicks is True
    affiliate_suspend(affiliate=link.affiliate)

    clock.now += 4.99
    assert cache.get(link.code, seconds=5).records_clicks is True
    clock.now += 0.02
    assert cache.get(link.code, seconds=5).records_clicks is False


def test_a_redirect_of_a_cached_link_costs_one_query(client, link, django_assert_num_queries):
    tracking_link_for_redirect(code=link.code)

    with override_settings(CLICK_FLUSH_SECONDS=0), django_assert_num_queries(1):
        response = visit(client, link)

    assert response.status_code == 302
    click = Click.objects.get()
    assert click_id_of(response) == str(click.id)
    assert click.sub1 == "a"
