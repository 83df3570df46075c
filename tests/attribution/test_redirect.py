"""GET /t/{code}: the click redirect."""

from datetime import timedelta
from urllib.parse import parse_qsl, urlsplit

import pytest
from django.test import override_settings
from django.utils import timezone

from attribution.models import AffiliateStatus, Click
from attribution.services import tracking_link_create
from revvvs.hashing import ip_hmac
from tests.factories import AffiliateFactory, ClickFactory, TrackingLinkFactory

CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0 Safari/537.36"
)


def visit(client, link, query="", ip="198.51.100.10", ua=CHROME, **meta):
    return client.get(
        f"/t/{link.code}{'?' + query if query else ''}",
        REMOTE_ADDR=ip,
        HTTP_USER_AGENT=ua,
        **meta,
    )


def query_of(response):
    return parse_qsl(urlsplit(response["Location"]).query, keep_blank_values=True)


def test_redirect_records_the_click_and_appends_click_id_and_subs(client, link):
    response = visit(
        client,
        link,
        "sub1=google&sub2=uk&sub5=x",
        HTTP_REFERER="https://affiliate.example.net/review",
        HTTP_CF_IPCOUNTRY="gb",
    )
    assert response.status_code == 302
    location = urlsplit(response["Location"])
    landing = urlsplit(link.landing_url)
    assert (location.scheme, location.netloc, location.path) == (
        landing.scheme,
        landing.netloc,
        landing.path,
    )
    click = Click.objects.get()
    assert query_of(response) == [
        ("click_id", str(click.id)),
        ("sub1", "google"),
        ("sub2", "uk"),
        ("sub5", "x"),
    ]
    assert (click.link_id, click.affiliate_id, click.brand_id) == (
        link.pk,
        link.affiliate_id,
        link.brand_id,
    )
    assert (click.sub1, click.sub2, click.sub3, click.sub4, click.sub5) == (
        "google",
        "uk",
        "",
        "",
        "x",
    )
    assert click.ip_hash == ip_hmac("198.51.100.10")
    assert click.user_agent == CHROME
    assert click.referrer == "https://affiliate.example.net/review"
    assert click.country == "GB"
    assert click.is_unique is True
    assert click.is_bot is False
    assert abs(click.created_at - timezone.now()) < timedelta(minutes=1)
    assert response["Cache-Control"] == "no-store"
    assert response["Referrer-Policy"] == "strict-origin-when-cross-origin"


def test_landing_query_is_kept_and_other_params_pass_through(client, affiliate, tenant):
    tenant.brand.allowed_domains = "promo.example.org"
    tenant.brand.save()
    link = tracking_link_create(
        affiliate=affiliate,
        brand=tenant.brand,
        landing_url="https://promo.example.org/offer?lang=en&x=1#signup",
    )
    response = visit(client, link, "utm_source=news&sub1=a%20b&utm_source=again&q=%C3%A9%26z")
    location = urlsplit(response["Location"])
    assert location.netloc == "promo.example.org"
    assert location.fragment == "signup"
    click = Click.objects.get()
    assert location.query.startswith("lang=en&x=1&click_id=")
    assert query_of(response) == [
        ("lang", "en"),
        ("x", "1"),
        ("click_id", str(click.id)),
        ("sub1", "a b"),
        ("utm_source", "news"),
        ("utm_source", "again"),
        ("q", "é&z"),
    ]


def test_a_click_id_sent_by_the_visitor_is_replaced(client, link):
    response = visit(client, link, "click_id=forged&sub1=a")
    click = Click.objects.get()
    assert query_of(response) == [("click_id", str(click.id)), ("sub1", "a")]


def test_sub_ids_are_cut_to_255_characters(client, link):
    response = visit(client, link, f"sub1={'a' * 300}&sub3={'b' * 255}")
    assert response.status_code == 302
    click = Click.objects.get()
    assert click.sub1 == "a" * 255
    assert click.sub3 == "b" * 255
    assert dict(query_of(response))["sub1"] == "a" * 255


def test_unique_is_the_first_click_from_an_ip_on_a_link_in_24_hours(client, link, affiliate):
    other_link = TrackingLinkFactory(affiliate=affiliate, brand=link.brand)
    visit(client, link, ip="198.51.100.1")
    visit(client, link, ip="198.51.100.1")
    visit(client, link, ip="198.51.100.2")
    visit(client, other_link, ip="198.51.100.1")
    flags = list(Click.objects.order_by("created_at").values_list("link_id", "is_unique"))
    assert flags == [
        (link.pk, True),
        (link.pk, False),
        (link.pk, True),
        (other_link.pk, True),
    ]


def test_unique_again_after_24_hours(client, link):
    ClickFactory(
        link=link,
        ip_hash=ip_hmac("198.51.100.1"),
        created_at=timezone.now() - timedelta(hours=24, minutes=1),
    )
    ClickFactory(
        link=link,
        ip_hash=ip_hmac("198.51.100.2"),
        created_at=timezone.now() - timedelta(hours=23),
    )
    visit(client, link, ip="198.51.100.1")
    visit(client, link, ip="198.51.100.2")
    newest = Click.objects.order_by("-created_at")[:2]
    assert {c.ip_hash: c.is_unique for c in newest} == {
        ip_hmac("198.51.100.1"): True,
        ip_hmac("198.51.100.2"): False,
    }


@pytest.mark.parametrize(
    ("user_agent", "is_bot"),
    [
        (CHROME, False),
        ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile/15E148", False),
        ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", True),
        ("Mozilla/5.0 (compatible; bingbot/2.0)", True),
        ("facebookexternalhit/1.1", True),
        ("curl/8.5.0", True),
        ("python-requests/2.32", True),
        ("Mozilla/5.0 (X11; Linux x86_64) HeadlessChrome/124.0", True),
        ("Mozilla/5.0 (compatible; Yahoo! Slurp)", True),
        ("", True),
    ],
)
def test_bot_flag_from_the_user_agent(client, link, user_agent, is_bot):
    assert visit(client, link, ua=user_agent).status_code == 302
    assert Click.objects.get().is_bot is is_bot


def test_unknown_code_is_a_plain_html_404(client, link):
    for path in ("/t/doesnotexist", "/t/" + "x" * 40, "/t/bad%20code"):
        response = client.get(path)
        assert response.status_code == 404
        assert response["Content-Type"].startswith("text/html")
        assert b"Link not found" in response.content
    assert Click.objects.count() == 0


@pytest.mark.parametrize(
    "status", [AffiliateStatus.PENDING, AffiliateStatus.SUSPENDED, AffiliateStatus.REJECTED]
)
def test_not_approved_affiliate_redirects_to_the_brand_default_and_records_nothing(
    client, tenant, status
):
    tenant.brand.allowed_domains = "deep.example.org"
    tenant.brand.save()
    affiliate = AffiliateFactory(operator=tenant.operator)
    link = tracking_link_create(
        affiliate=affiliate, brand=tenant.brand, landing_url="https://deep.example.org/x"
    )
    affiliate.status = status
    affiliate.save()
    response = visit(client, link, "sub1=a")
    assert response.status_code == 302
    assert response["Location"] == tenant.brand.default_landing_url
    assert Click.objects.count() == 0


def test_a_deep_link_whose_domain_was_removed_goes_to_the_default_and_counts(
    client, tenant, affiliate
):
    tenant.brand.allowed_domains = "deep.example.org"
    tenant.brand.save()
    link = tracking_link_create(
        affiliate=affiliate, brand=tenant.brand, landing_url="https://deep.example.org/x"
    )
    tenant.brand.allowed_domains = ""
    tenant.brand.save()
    response = visit(client, link)
    click = Click.objects.get()  # the affiliate brought the visitor: the click counts
    assert response["Location"] == f"{tenant.brand.default_landing_url}?click_id={click.id}"


def test_a_link_on_the_brands_old_home_follows_the_brand_when_it_moves(client, tenant, affiliate):
    link = tracking_link_create(affiliate=affiliate, brand=tenant.brand, landing_url=None)
    tenant.brand.default_landing_url = "https://new-home.example.net/"
    tenant.brand.allowed_domains = ""  # the old home is no longer the brand's
    tenant.brand.save()

    response = visit(client, link)

    click = Click.objects.get()
    assert response["Location"] == f"https://new-home.example.net/?click_id={click.id}"


def test_client_ip_from_the_socket_when_no_proxy_header_is_trusted(client, link):
    visit(client, link, ip="198.51.100.5", HTTP_X_FORWARDED_FOR="192.0.2.99")
    assert Click.objects.get().ip_hash == ip_hmac("198.51.100.5")


@override_settings(TRUSTED_PROXY_IP_HEADER="HTTP_X_FORWARDED_FOR")
@pytest.mark.parametrize(
    ("forwarded", "expected"),
    [
        ("192.0.2.99, 10.0.0.1, 10.0.0.2", "192.0.2.99"),
        ("192.0.2.99:51234", "192.0.2.99"),
        ("[2001:db8::7]:443, 10.0.0.1", "2001:db8::7"),
        ("garbage, 10.0.0.1", "198.51.100.5"),
        ("", "198.51.100.5"),
    ],
)
def test_client_ip_from_the_trusted_proxy_header(client, link, forwarded, expected):
    visit(client, link, ip="198.51.100.5", HTTP_X_FORWARDED_FOR=forwarded)
    assert Click.objects.get().ip_hash == ip_hmac(expected)


@pytest.mark.parametrize(("header", "country"), [("DE", "DE"), ("XX", ""), ("T1", ""), ("GBR", "")])
def test_country_from_the_configured_header_when_valid(client, link, header, country):
    visit(client, link, HTTP_CF_IPCOUNTRY=header)
    assert Click.objects.get().country == country


@override_settings(COUNTRY_HEADER="HTTP_X_COUNTRY")
def test_country_header_is_configurable(client, link):
    visit(client, link, HTTP_CF_IPCOUNTRY="FR", HTTP_X_COUNTRY="es")
    assert Click.objects.get().country == "ES"


def test_head_redirects_without_recording_and_post_is_refused(client, link):
    response = client.head(f"/t/{link.code}")
    assert response.status_code == 302
    assert Click.objects.count() == 0
    assert client.post(f"/t/{link.code}").status_code == 405


def test_redirect_costs_two_queries(client, link, django_assert_num_queries):
    with django_assert_num_queries(2):
        assert visit(client, link).status_code == 302
    assert Click.objects.count() == 1


def test_click_ids_reach_the_event_api(client, tenant, link):
    """End to end: the click_id the landing page receives attributes the registration."""
    response = visit(client, link, "sub1=campaign")
    click_id = dict(query_of(response))["click_id"]
    from tests.conftest import event

    body = tenant.post(event(tenant.brand, click_id=click_id)).json()
    assert "warnings" not in body
    assert tenant.get_event(body["event_id"]).json()["attribution"]["affiliate_id"] == (
        link.affiliate_id
    )


@pytest.mark.django_db(transaction=True)
def test_redirect_outside_a_transaction_commits_the_click(client, tenant):
    """In production the redirect runs in autocommit, where the insert carries its own
    asynchronous-commit setting; the click is stored all the same."""
    from django.db import connection

    link = TrackingLinkFactory(
        affiliate=AffiliateFactory(operator=tenant.operator), brand=tenant.brand
    )
    response = visit(client, link, "sub1=a")
    assert response.status_code == 302
    click = Click.objects.get()
    assert click.sub1 == "a"
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        assert cursor.fetchone()[0] == "on"  # the setting did not leak to the connection


def test_a_nul_character_from_the_visitor_is_dropped_not_refused(client, link):
    response = visit(client, link, "sub1=a%00b&sub2=%00", HTTP_REFERER="https://x.test/\x00")
    assert response.status_code == 302
    click = Click.objects.get()
    assert (click.sub1, click.sub2, click.referrer) == ("ab", "", "https://x.test/")
