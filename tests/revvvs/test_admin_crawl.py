"""A crawler over the whole admin, on the demo data (revvvs.demo.seed_demo, the same as
`manage.py seed_demo`) with a second operator beside it.

Logged in as the demo manager, the demo superuser and the second operator's manager, it
starts at /admin/ and follows every same-site /admin/ link the HTML holds (filter, sort and
pagination links, change, history and delete pages, CSV downloads, add pages), GET only,
skipping logout. It asserts that no response is a 5xx and no request raises; that a
manager's object pages (change, history, delete, CSV) are of the manager's operator; that no
link the admin rendered for a manager answers 403 or 404 (a link to something the user
cannot open), nor leads to a broken changelist (`?e=1`) or the login page; and that no page
of one operator's manager shows the other operator's names (brands, affiliates' emails and
companies, plans, codes, players).

The crawl is breadth-first within each kind of URL (view name + query parameter names) and
round-robin across kinds, so that the budget reaches every model before it reaches the
thousandth combination of one changelist's filters.
"""

import os
import sys
import time
import traceback
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit

import pytest
from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.core.signals import got_request_exception
from django.db import transaction
from django.test import Client
from django.urls import Resolver404, resolve
from django.utils import timezone
from django.utils.html import escape

from attribution.models import Affiliate, Player, PromoCode, TrackingLink
from commissions.models import CommissionPlan
from revvvs.models import Brand, Operator, User

# Per user; ADMIN_CRAWL_URLS / ADMIN_CRAWL_SECONDS override them.
MAX_URLS = int(os.environ.get("ADMIN_CRAWL_URLS", "1500"))
MAX_SECONDS = float(os.environ.get("ADMIN_CRAWL_SECONDS", "25"))
APP_ROOT = "/work/main/"


# --- the data -------------------------------------------------------------------------------


@dataclass
class World:
    demo_operator: Operator
    other_operator: Operator
    manager: User
    superuser: User
    other_manager: User


def _second_operator():
    """An operator beside the demo, with its own brand, affiliate, plan, codes and events
    (through the Event API), and a closed past month (statements, CSV)."""
    from rest_framework.test import APIClient

    from commissions.services.booking import month_start
    from commissions.services.periods import period_close
    from revvvs.demo import _grant_manager_permissions
    from tests.commissions.factories import (
        CommissionPlanFactory,
        PlanAssignmentFactory,
        money,
        send,
    )
    from tests.conftest import Tenant
    from tests.factories import (
        AffiliateFactory,
        ApiKeyFactory,
        BrandFactory,
        ManagerFactory,
        OperatorFactory,
        PromoCodeFactory,
        TrackingLinkFactory,
        UserFactory,
    )

    operator = OperatorFactory(name="Northwind Wagering Ltd")
    brand = BrandFactory(
        operator=operator,
        name="Northwind Bingo Hall",
        default_landing_url="https://northwind-bingo.example.org/join",
        allowed_domains="northwind-bingo.example.org",
    )
    raw_key = f"rv_test_{operator.pk:06d}_northwindkeyabcdefghijklmnopqr"
    api_key = ApiKeyFactory(operator=operator, raw_key=raw_key, name="northwind-key")
    tenant = Tenant(
        operator=operator, brand=brand, api_key=api_key, key=raw_key, client=APIClient()
    )

    today = timezone.now().date()
    this_month = month_start(today)
    previous = month_start(this_month - timedelta(days=1))
    start = month_start(previous - timedelta(days=1))

    affiliate = AffiliateFactory(
        operator=operator,
        user=UserFactory(username="northwind_partner", email="partner@northwind-aff.example.org"),
        company="Northwind Partner Media",
        payout_currency="EUR",
    )
    second = AffiliateFactory(
        operator=operator,
        user=UserFactory(username="northwind_second", email="second@northwind-aff.example.org"),
        company="Northwind Second Traffic",
        payout_currency="EUR",
        status="pending",
    )
    plan = CommissionPlanFactory(
        operator=operator,
        name="Northwind Hybrid Deal",
        cpa_amount="40.00",
        min_first_deposit="10.00",
        revshare_rate="0.30",
    )
    CommissionPlanFactory(operator=operator, name="Northwind Spare Plan", revshare_rate="0.10")
    PlanAssignmentFactory(plan=plan, affiliate=affiliate, valid_from=start)
    PromoCodeFactory(affiliate=affiliate, brand=brand, code="NORTHWIND40")
    TrackingLinkFactory(
        affiliate=affiliate, brand=brand, code="nwlink0001", name="Northwind banner"
    )
    TrackingLinkFactory(affiliate=second, brand=brand, code="nwlink0002")

    def at(month, day, hour):
        moment = min(
            datetime.combine(month, datetime.min.time(), tzinfo=UTC)
            + timedelta(days=day, hours=hour),
            timezone.now() - timedelta(hours=1),
        )
        return moment.isoformat().replace("+00:00", "Z")

    bodies = []
    for n in range(3):
        ref = f"nwplayer_{n}"
        bodies.append(
            {
                "event_type": "registration",
                "event_time": at(previous, 2 + n, 9),
                "brand_id": str(brand.id),
                "player_external_ref": ref,
                "idempotency_key": f"nw_reg_{n}",
                "promo_code": "NORTHWIND40",
                "country": "GB",
            }
        )
        bodies.append(
            money(
                tenant,
                "first_deposit",
                f"nw_fd_{n}",
                "50.00",
                when=at(previous, 2 + n, 10),
                ref=ref,
            )
        )
        bodies.append(
            money(
                tenant,
                "ngr_update",
                f"nw_ngr_{n}",
                f"{300 * (n + 1)}",
                when=at(previous, 20, 23),
                ref=ref,
            )
        )
        bodies.append(
            money(
                tenant, "ngr_update", f"nw_ngr_now_{n}", "75.00", when=at(this_month, 0, 5), ref=ref
            )
        )
    bodies.append(
        money(
            tenant,
            "ngr_update",
            "nw_ngr_nok",
            "900.00",
            when=at(this_month, 0, 6),
            ref="nwplayer_0",
            currency="NOK",
        )
    )
    bodies.sort(key=lambda b: b["event_time"])
    send(tenant, *bodies)
    period_close(operator=operator, month=previous)

    manager = ManagerFactory(operator=operator, username="northwind_manager")
    _grant_manager_permissions(manager)
    return operator, manager


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker):
    from revvvs.demo import DEMO_ADMIN, DEMO_MANAGER, DEMO_OPERATOR, seed_demo

    # Loaded once for the module inside a transaction that is rolled back at its end, so
    # that no other test sees the demo (each test's own transaction nests in it).
    with django_db_blocker.unblock(), transaction.atomic():
        seed_demo()
        other_operator, other_manager = _second_operator()
        yield World(
            demo_operator=Operator.objects.get(name=DEMO_OPERATOR),
            other_operator=other_operator,
            manager=User.objects.get(username=DEMO_MANAGER[0]),
            superuser=User.objects.get(username=DEMO_ADMIN[0]),
            other_manager=other_manager,
        )
        transaction.set_rollback(True)


def operator_names(operator) -> set[str]:
    """What would give the operator's data away on another operator's page."""
    names = {operator.name}
    names |= set(Brand.objects.filter(operator=operator).values_list("name", flat=True))
    for email, company in Affiliate.objects.filter(operator=operator).values_list(
        "email", "company"
    ):
        names |= {email, company}
    names |= set(CommissionPlan.objects.filter(operator=operator).values_list("name", flat=True))
    names |= set(PromoCode.objects.filter(operator=operator).values_list("code", flat=True))
    names |= set(
        TrackingLink.objects.filter(affiliate__operator=operator).values_list("code", flat=True)
    )
    names |= set(
        Player.objects.filter(brand__operator=operator).values_list("external_ref", flat=True)
    )
    return {n for n in names if n and len(n) >= 5}


# --- the crawler ----------------------------------------------------------------------------


class _Links(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.hrefs = []

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name == "href" and value:
                self.hrefs.append(value)


def _links(html: str) -> list[str]:
    parser = _Links()
    parser.feed(html)
    return parser.hrefs


def _normal(base: str, href: str) -> str | None:
    """The same-site /admin/ URL of `href`, or None."""
    href = href.strip()
    if href.startswith(("javascript:", "mailto:", "#", "data:")):
        return None
    parts = urlsplit(urljoin("http://testserver" + base, href))
    if parts.netloc not in ("testserver", "") or parts.scheme not in ("http", "https"):
        return None
    if not parts.path.startswith("/admin/") or parts.path.startswith("/admin/logout"):
        return None
    return parts.path + (f"?{parts.query}" if parts.query else "")


def _key(url: str) -> str:
    path, _, query = url.partition("?")
    return path + "?" + urlencode(sorted(parse_qsl(query, keep_blank_values=True)))


def _kind(url: str) -> str:
    path, _, query = url.partition("?")
    try:
        name = resolve(path).url_name or path
    except Resolver404:
        name = path
    params = sorted({k for k, _ in parse_qsl(query, keep_blank_values=True)})
    return name + "?" + ",".join(params)


def _last_app_frame(tb) -> str:
    where = "?"
    for frame in traceback.extract_tb(tb):
        if (
            frame.filename.startswith(APP_ROOT)
            and "/.venv/" not in frame.filename
            and ("/tests/" not in frame.filename)
        ):
            where = f"{frame.filename[len(APP_ROOT) :]}:{frame.lineno} ({frame.name})"
    return where


def _object_of(path: str):
    """(model, model admin, pk) of an admin URL that names one object, or None."""
    try:
        match = resolve(path)
    except Resolver404:
        return None
    if not match.kwargs:
        return None
    pk = match.kwargs.get("object_id") or next(iter(match.kwargs.values()))
    for model, model_admin in admin.site._registry.items():
        prefix = f"{model._meta.app_label}_{model._meta.model_name}_"
        if (match.url_name or "").startswith(prefix):
            return model, model_admin, unquote(str(pk))
    return None


def _operator_path(model, model_admin):
    from revvvs.tenancy import OPERATOR_PATHS

    return OPERATOR_PATHS.get(model._meta.label_lower) or getattr(
        model_admin, "operator_path", None
    )


@dataclass
class Crawl:
    user: User
    visited: list = field(default_factory=list)
    failures: dict = field(default_factory=dict)  # distinct failure -> [urls]
    statuses: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)  # kind -> [count, total seconds, max]

    def fail(self, what: str, url: str):
        self.failures.setdefault(what, []).append(url)

    def report(self) -> str:
        lines = [f"{self.user.username}: {len(self.visited)} URLs, statuses {self.statuses}"]
        for what, urls in sorted(self.failures.items()):
            lines.append(f"- {what}  [{len(urls)}x] e.g. {urls[:3]}")
        return "\n".join(lines)

    def slowest(self, n=8) -> str:
        rows = sorted(self.timings.items(), key=lambda kv: -kv[1][1])[:n]
        return "\n".join(
            f"  {kind}: {c}x, {total:.1f}s, max {top:.2f}s" for kind, (c, total, top) in rows
        )


def crawl(user, *, operator=None, forbidden=(), own=(), max_urls=MAX_URLS) -> Crawl:
    """Crawl the admin as `user`. `operator`: the manager's, whose objects alone they may
    open; `forbidden`: strings no page may hold; `own`: strings whose sightings are
    recorded (`result.seen`), to prove that the name check looks where names are shown."""
    client = Client()
    client.force_login(user)
    result = Crawl(user=user)
    caught = []

    def on_exception(sender, request=None, **kwargs):
        caught.append(sys.exc_info())

    got_request_exception.connect(on_exception)
    queues: dict[str, deque] = {}
    visits: dict[str, int] = {}
    order: dict[str, int] = {}
    seen: set[str] = set()
    sources: dict[str, list] = {}  # url key -> the kinds of the first pages that linked it
    forbidden = sorted({v for name in forbidden for v in (name, str(escape(name)))})
    result.seen = set()

    def enqueue(url, source):
        key = _key(url)
        if source is not None:
            linked = sources.setdefault(key, [])
            if len(linked) < 4 and _kind(source) not in linked:
                linked.append(_kind(source))
        if key in seen:
            return
        seen.add(key)
        kind = _kind(url)
        if kind not in queues:
            queues[kind] = deque()
            visits[kind] = 0
            order[kind] = len(order)
        queues[kind].append((url, source))

    enqueue("/admin/", None)
    started = time.monotonic()
    try:
        while len(result.visited) < max_urls and time.monotonic() - started < MAX_SECONDS:
            pending = [k for k, q in queues.items() if q]
            if not pending:
                break
            kind = min(pending, key=lambda k: (visits[k], order[k]))
            visits[kind] += 1
            url, source = queues[kind].popleft()
            result.visited.append(url)
            caught.clear()
            began = time.monotonic()
            try:
                with transaction.atomic():
                    response = client.get(url)
                    if response.streaming:
                        body = b"".join(response.streaming_content)
                    else:
                        body = response.content
            except Exception as exc:  # noqa: BLE001 - every exception is a finding
                where = _last_app_frame(exc.__traceback__)
                result.fail(f"exception {type(exc).__name__}: {str(exc)[:160]} at {where}", url)
                result.statuses["raised"] = result.statuses.get("raised", 0) + 1
                continue
            spent = time.monotonic() - began
            timing = result.timings.setdefault(_kind(url), [0, 0.0, 0.0])
            timing[0] += 1
            timing[1] += spent
            timing[2] = max(timing[2], spent)
            status = response.status_code
            result.statuses[status] = result.statuses.get(status, 0) + 1
            if status >= 500:
                where = _last_app_frame(caught[-1][2]) if caught else "no exception"
                detail = f" {caught[-1][0].__name__}: {str(caught[-1][1])[:160]}" if caught else ""
                result.fail(f"status {status} on {_kind(url)}{detail} at {where}", url)
                continue
            if caught:
                exc_type, exc, tb = caught[-1]
                result.fail(
                    f"handled exception {exc_type.__name__}: {str(exc)[:160]} at "
                    f"{_last_app_frame(tb)} (status {status})",
                    url,
                )
            if status in (403, 404) and operator is not None and source is not None:
                result.fail(
                    f"status {status} on a rendered link: {_kind(url)}",
                    f"{url} <- {sources.get(_key(url))}",
                )
            if status == 404 and operator is None and source is not None:
                result.fail(
                    f"status 404 on a rendered link: {_kind(url)}",
                    f"{url} <- {sources.get(_key(url))}",
                )
            if status in (301, 302, 303, 307, 308):
                location = response["Location"]
                target = _normal(url.partition("?")[0], location)
                if "/admin/login/" in location:
                    result.fail(f"redirect to the login page from {_kind(url)}", url)
                elif "e=1" in urlsplit(location).query.split("&"):
                    result.fail(
                        f"broken changelist link (redirect to ?e=1) on {_kind(url).split('?')[0]}",
                        f"{url} <- {source}",
                    )
                elif target is not None:
                    enqueue(target, url)
                continue
            text = body.decode("utf-8", "replace")
            if operator is not None and status == 200:
                named = _object_of(url.partition("?")[0])
                if named is not None:
                    model, model_admin, pk = named
                    path = _operator_path(model, model_admin)
                    if path is not None:
                        try:
                            ok = model._default_manager.filter(
                                pk=pk, **{path: operator.pk}
                            ).exists()
                        except Exception:  # noqa: BLE001 - a pk that is not one
                            ok = False
                        if not ok:
                            result.fail(
                                f"another operator's {model._meta.label} shown on {_kind(url)}", url
                            )
            for name in forbidden:
                if name in text:
                    result.fail(f"other operator's name {name!r} on {_kind(url)}", url)
            for name in own:
                if name not in result.seen and (name in text or str(escape(name)) in text):
                    result.seen.add(name)
            content_type = response.get("Content-Type", "")
            if "html" in content_type:
                for href in _links(text):
                    target = _normal(url.partition("?")[0], href)
                    if target is not None:
                        enqueue(target, url)
    finally:
        got_request_exception.disconnect(on_exception)
    result.unvisited = sum(len(q) for q in queues.values())
    result.kinds = len(queues)
    result.seconds = time.monotonic() - started
    print(
        "\n" + result.report(),
        f"\nkinds={result.kinds} unvisited={result.unvisited} seconds={result.seconds:.0f}",
        "\nslowest kinds:\n" + result.slowest(),
        "\nviews visited: " + " ".join(sorted({_kind(u).split("?")[0] for u in result.visited})),
    )
    return result


# --- the tests ------------------------------------------------------------------------------


def _assert_index(user):
    client = Client()
    client.force_login(user)
    response = client.get("/admin/")
    assert response.status_code == 200
    assert b"Revvvs back office" in response.content


@pytest.mark.django_db
def test_admin_index_renders_for_both_demo_users(world):
    _assert_index(world.manager)
    _assert_index(world.superuser)
    _assert_index(world.other_manager)


def _shown_names(operator) -> set[str]:
    """Names every crawl of the operator's manager must come across (the positive control
    of the name check)."""
    names = set(Brand.objects.filter(operator=operator).values_list("name", flat=True))
    names |= set(CommissionPlan.objects.filter(operator=operator).values_list("name", flat=True))
    names |= set(Affiliate.objects.filter(operator=operator).values_list("email", flat=True))
    return names


def _crawl_manager(manager, operator, other):
    own = _shown_names(operator)
    result = crawl(manager, operator=operator, forbidden=operator_names(other), own=own)
    assert len(result.visited) > 100
    assert result.seen == own, f"the crawl never saw {own - result.seen}"
    assert not result.failures, result.report()


@pytest.mark.django_db
def test_crawl_as_demo_manager(world):
    _crawl_manager(world.manager, world.demo_operator, world.other_operator)


@pytest.mark.django_db
def test_crawl_as_demo_superuser(world):
    result = crawl(world.superuser)
    assert len(result.visited) > 100
    assert not result.failures, result.report()


@pytest.mark.django_db
def test_crawl_as_second_operators_manager(world):
    _crawl_manager(world.other_manager, world.other_operator, world.demo_operator)
