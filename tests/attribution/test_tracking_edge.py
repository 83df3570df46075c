"""The tracking edge (attribution/edge.py): `revvvs.wsgi.application` called as a WSGI
server calls it, /t/{code} served without the web app's middleware stack."""

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit

import pytest
from django.core.signals import request_finished, request_started
from django.db import InterfaceError, OperationalError, close_old_connections, connection
from django.test import RequestFactory, override_settings

from attribution import views
from attribution.edge import TrackingEdge
from attribution.models import Click
from attribution.services import tracking_link_create
from revvvs.hashing import ip_hmac
from revvvs.wsgi import application, django_application
from tests.factories import AffiliateFactory, TrackingLinkFactory

CHROME = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/124.0 Safari/537.36"
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


@dataclass
class WsgiResponse:
    status: str
    headers: list[tuple[str, str]]
    body: bytes

    @property
    def status_code(self) -> int:
        return int(self.status.split()[0])

    def header(self, name: str) -> str | None:
        values = [v for k, v in self.headers if k.lower() == name.lower()]
        assert len(values) <= 1, f"{name} sent {len(values)} times"
        return values[0] if values else None

    def query(self) -> list[tuple[str, str]]:
        return parse_qsl(urlsplit(self.header("Location")).query, keep_blank_values=True)


def wsgi_call(
    path, *, method="get", app=application, keep_connection_signals=False, **headers
) -> WsgiResponse:
    """Call `app` as a WSGI server would: start_response, iterate the body, close().

    Like Django's test client, the request signals do not close the database connection
    (inside a test's transaction that would lose it), unless `keep_connection_signals`."""
    headers.setdefault("REMOTE_ADDR", "198.51.100.10")
    headers.setdefault("HTTP_USER_AGENT", CHROME)
    environ = getattr(RequestFactory(), method)(path, **headers).environ
    started = {}

    def start_response(status, response_headers, exc_info=None):
        started["status"], started["headers"] = status, list(response_headers)

    if not keep_connection_signals:
        request_started.disconnect(close_old_connections)
        request_finished.disconnect(close_old_connections)
    try:
        result = app(environ, start_response)
        try:
            body = b"".join(result)
        finally:
            if hasattr(result, "close"):
                result.close()
    finally:
        if not keep_connection_signals:
            request_started.connect(close_old_connections)
            request_finished.connect(close_old_connections)
    return WsgiResponse(started["status"], started["headers"], body)


def test_a_tracking_link_redirects_and_records_the_click(link):
    response = wsgi_call(
        f"/t/{link.code}?sub1=a&utm_source=x",
        HTTP_REFERER="https://affiliate.example.net/review",
        HTTP_CF_IPCOUNTRY="de",
    )

    assert response.status == "302 Found"
    assert response.header("Location").startswith(link.landing_url + "?")
    click = Click.objects.get()
    assert response.query() == [("click_id", str(click.id)), ("sub1", "a"), ("utm_source", "x")]
    assert (click.link_id, click.affiliate_id, click.brand_id) == (
        link.pk,
        link.affiliate_id,
        link.brand_id,
    )
    assert (click.sub1, click.ip_hash, click.user_agent, click.country) == (
        "a",
        ip_hmac("198.51.100.10"),
        CHROME,
        "DE",
    )
    assert click.referrer == "https://affiliate.example.net/review"
    assert response.header("Cache-Control") == "no-store"
    assert response.header("Referrer-Policy") == "strict-origin-when-cross-origin"
    assert response.header("X-Robots-Tag") == "noindex, nofollow"
    # The security middleware runs on the edge too.
    assert response.header("X-Content-Type-Options") == "nosniff"
    assert response.body == b""


def test_each_click_gets_its_own_click_id(link):
    first = dict(wsgi_call(f"/t/{link.code}").query())["click_id"]
    second = dict(wsgi_call(f"/t/{link.code}").query())["click_id"]

    assert UUID_RE.match(first) and UUID_RE.match(second)
    assert first != second
    assert sorted(str(i) for i in Click.objects.values_list("id", flat=True)) == sorted(
        [first, second]
    )


@pytest.mark.parametrize("path", ["/t/doesnotexist", "/t/" + "x" * 40, "/t/bad%20code"])
def test_an_unknown_code_is_the_link_not_found_page(db, path):
    response = wsgi_call(path)

    assert response.status == "404 Not Found"
    assert response.header("Content-Type").startswith("text/html")
    assert b"Link not found" in response.body
    assert response.header("Cache-Control") == "no-store"
    assert Click.objects.count() == 0


@pytest.mark.parametrize("path", ["/t/", "/t/a/b", "/t/a/"])
def test_paths_that_are_not_a_tracking_link_are_djangos_404(db, path):
    response = wsgi_call(path)

    assert response.status_code == 404
    assert b"There is nothing at this address" in response.body
    # Answered by the full stack (the edge has no clickjacking middleware).
    assert response.header("X-Frame-Options") == "DENY"


def test_other_paths_go_to_django(db):
    response = wsgi_call("/healthz")

    assert response.status == "200 OK"
    assert response.body == b'{"status": "ok", "database": "ok"}'
    assert response.header("X-Frame-Options") == "DENY"


def test_the_edge_answers_tracking_links_without_the_web_middleware(link):
    response = wsgi_call(f"/t/{link.code}")

    assert response.status_code == 302
    assert response.header("X-Frame-Options") is None
    assert response.header("Set-Cookie") is None


def test_head_redirects_without_recording(link):
    response = wsgi_call(f"/t/{link.code}?sub1=a", method="head")

    assert response.status == "302 Found"
    assert response.header("Location") == link.landing_url
    assert Click.objects.count() == 0


@pytest.mark.parametrize("method", ["post", "put", "delete"])
def test_other_methods_are_refused(link, method):
    response = wsgi_call(f"/t/{link.code}", method=method)

    assert response.status == "405 Method Not Allowed"
    assert response.header("Allow") == "GET, HEAD"
    assert Click.objects.count() == 0


def test_a_not_approved_affiliate_goes_to_the_brand_home(link, tenant):
    link.affiliate.status = "suspended"
    link.affiliate.save()

    response = wsgi_call(f"/t/{link.code}?sub1=a")

    assert response.status == "302 Found"
    assert response.header("Location") == tenant.brand.default_landing_url
    assert Click.objects.count() == 0


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("error", [OperationalError, InterfaceError])
def test_a_database_outage_is_a_503_with_retry_after(tenant, monkeypatch, error):
    link = TrackingLinkFactory(
        affiliate=AffiliateFactory(operator=tenant.operator), brand=tenant.brand
    )

    def unreachable(*, code):
        raise error("the database system is starting up")

    monkeypatch.setattr(views, "tracking_link_for_redirect", unreachable)

    response = wsgi_call(f"/t/{link.code}")

    assert response.status == "503 Service Unavailable"
    assert response.header("Retry-After") == "5"
    assert response.header("Content-Type").startswith("text/html")
    assert b"temporarily unavailable" in response.body
    assert response.header("X-Content-Type-Options") == "nosniff"


@pytest.mark.django_db(transaction=True)
def test_a_database_refusing_the_click_insert_is_a_503(tenant):
    link = TrackingLinkFactory(
        affiliate=AffiliateFactory(operator=tenant.operator), brand=tenant.brand
    )

    def refuse_inserts(execute, sql, params, many, context):
        if "INSERT INTO" in sql:
            raise OperationalError("server closed the connection unexpectedly")
        return execute(sql, params, many, context)

    with connection.execute_wrapper(refuse_inserts):
        response = wsgi_call(f"/t/{link.code}")

    assert response.status == "503 Service Unavailable"
    assert response.header("Retry-After") == "5"
    assert Click.objects.count() == 0
    # Back: the next visit is redirected and recorded.
    assert wsgi_call(f"/t/{link.code}").status == "302 Found"
    assert Click.objects.count() == 1


def test_an_unexpected_error_is_a_500_page_not_an_exception(link, monkeypatch, caplog):
    def broken(*, code):
        raise RuntimeError("boom")

    monkeypatch.setattr(views, "tracking_link_for_redirect", broken)

    response = wsgi_call(f"/t/{link.code}")

    assert response.status == "500 Internal Server Error"
    assert response.body == b"<h1>Server error</h1>"
    assert response.header("X-Content-Type-Options") == "nosniff"
    assert "boom" in caplog.text  # logged, as Django logs a request's error


def test_the_edge_and_the_urlconf_answer_the_same(client, tenant, affiliate):
    tenant.brand.allowed_domains = "promo.example.org"
    tenant.brand.save()
    link = tracking_link_create(
        affiliate=affiliate,
        brand=tenant.brand,
        landing_url="https://promo.example.org/offer?lang=en&x=1#signup",
    )
    query = (
        "utm_source=news&sub1=a%20b&click_id=forged&sub2=&utm_source=again"
        "&q=%C3%A9%26z&sub3=c+d&flag&sub5=%E2%82%AC"
    )

    through_django = client.get(
        f"/t/{link.code}?{query}", REMOTE_ADDR="198.51.100.10", HTTP_USER_AGENT=CHROME
    )
    through_edge = wsgi_call(f"/t/{link.code}?{query}")

    assert (through_django.status_code, through_edge.status_code) == (302, 302)
    ids = set(Click.objects.values_list("id", flat=True))
    assert len(ids) == 2
    django_location, edge_location = through_django["Location"], through_edge.header("Location")
    django_id = dict(parse_qsl(urlsplit(django_location).query))["click_id"]
    edge_id = dict(parse_qsl(urlsplit(edge_location).query))["click_id"]
    assert {django_id, edge_id} == {str(i) for i in ids}
    assert django_location.replace(django_id, "ID") == edge_location.replace(edge_id, "ID")
    assert edge_location.endswith("#signup")
    for name in ("Cache-Control", "Referrer-Policy", "X-Robots-Tag", "X-Content-Type-Options"):
        assert through_edge.header(name) == through_django[name]


def test_the_edge_keeps_the_https_redirect_and_hsts(link):
    with override_settings(SECURE_SSL_REDIRECT=True, SECURE_HSTS_SECONDS=3600):
        edge = TrackingEdge(django_application)  # the middleware reads its settings once

    plain = wsgi_call(f"/t/{link.code}?sub1=a", app=edge)
    assert plain.status_code == 301
    assert plain.header("Location") == f"https://testserver/t/{link.code}?sub1=a"
    assert Click.objects.count() == 0

    secure = wsgi_call(f"/t/{link.code}?sub1=a", app=edge, secure=True)
    assert secure.status_code == 302
    assert secure.header("Strict-Transport-Security") == "max-age=3600"
    assert Click.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_as_under_a_real_server_the_connection_is_released_after_each_redirect(tenant):
    """With the request signals connected (CONN_MAX_AGE = 0 in the test settings), closing
    the response releases the database connection, as after any Django request."""
    link = TrackingLinkFactory(
        affiliate=AffiliateFactory(operator=tenant.operator), brand=tenant.brand
    )
    for _ in range(2):
        response = wsgi_call(f"/t/{link.code}", keep_connection_signals=True)
        assert response.status == "302 Found"
        assert connection.connection is None
    assert Click.objects.count() == 2


def test_a_host_not_in_allowed_hosts_is_refused_as_on_the_rest_of_the_site(link):
    response = wsgi_call(f"/t/{link.code}", HTTP_HOST="evil.example")
    assert response.status_code == 400
    assert Click.objects.count() == 0
