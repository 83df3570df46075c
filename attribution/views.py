"""The click redirect, GET /t/{code} (SPEC §4; the contract is in docs/attribution.md)."""

from urllib.parse import quote_plus, unquote_plus

import pycountry
from django.conf import settings
from django.core.handlers.wsgi import get_bytes_from_wsgi
from django.http import HttpResponseNotAllowed, HttpResponseNotFound, HttpResponseRedirect
from django.template.loader import render_to_string

from revvvs.hashing import ip_hmac

from .selectors import tracking_link_for_redirect
from .services import LINK_CODE_RE, SUB_MAX_LENGTH, click_record, ip_normalise

SUB_NAMES = ("sub1", "sub2", "sub3", "sub4", "sub5")
RESERVED = frozenset(("click_id", *SUB_NAMES))
COUNTRIES = frozenset(c.alpha_2 for c in pycountry.countries)
MAX_HEADER_TEXT = 1000  # user agent and referrer are kept up to this length
# The landing page learns the affiliate site's origin, never its full page address.
REFERRER_POLICY = "strict-origin-when-cross-origin"


def client_ip(meta) -> str | None:
    """The visitor's IP: the first address of the trusted proxy header when configured and
    valid, else the socket address."""
    header = settings.TRUSTED_PROXY_IP_HEADER
    if header:
        forwarded = meta.get(header, "")
        if forwarded:
            ip = ip_normalise(forwarded.split(",")[0])
            if ip:
                return ip
    return ip_normalise(meta.get("REMOTE_ADDR", ""))


def client_country(meta) -> str:
    header = settings.COUNTRY_HEADER
    value = meta.get(header, "").strip().upper() if header else ""
    return value if value in COUNTRIES else ""


def query_split(query_string: str) -> tuple[dict[str, str], list[str]]:
    """The sub ids of the visitor's query (decoded, cut to 255 characters; the last value of
    a repeated one wins, as with Django's `QueryDict.get`) and the visitor's other
    parameters exactly as sent. A `click_id` sent by the visitor is dropped: the redirect
    sets its own."""
    subs: dict[str, str] = {}
    others: list[str] = []
    for piece in query_string.split("&"):
        if not piece:
            continue
        name, _, value = piece.partition("=")
        if "%" in name or "+" in name:
            name = unquote_plus(name)
        if name in RESERVED:
            if name != "click_id":
                subs[name] = unquote_plus(value)[:SUB_MAX_LENGTH]
        else:
            others.append(piece)
    return subs, others


def landing_url_with_click(landing_url: str, *, click_id, subs: dict, others: list[str]) -> str:
    """`landing_url` with its own query kept as it is, then click_id, the sub ids and the
    visitor's other query parameters (`query_split`) appended, before any fragment."""
    added = "&".join(
        [
            f"click_id={click_id}",
            *(f"{name}={quote_plus(subs[name])}" for name in SUB_NAMES if subs.get(name)),
            *others,
        ]
    )
    url, hash_, fragment = landing_url.partition("#")
    base, _, own = url.partition("?")
    query = f"{own}&{added}" if own else added
    return f"{base}?{query}{hash_}{fragment}"


def _redirect(url: str) -> HttpResponseRedirect:
    response = HttpResponseRedirect(url)
    response["Cache-Control"] = "no-store"
    response["Referrer-Policy"] = REFERRER_POLICY
    response["X-Robots-Tag"] = "noindex, nofollow"
    return response


def _not_found(request) -> HttpResponseNotFound:
    response = HttpResponseNotFound(render_to_string("attribution/link_not_found.html"))
    response["Cache-Control"] = "no-store"
    return response


def tracking_redirect(request, code: str):
    if request.method not in ("GET", "HEAD"):
        return HttpResponseNotAllowed(["GET", "HEAD"])
    link = tracking_link_for_redirect(code=code) if LINK_CODE_RE.match(code) else None
    if link is None:
        return _not_found(request)
    # A link whose affiliate is not approved goes to the brand's home and records nothing.
    if not link.records_clicks:
        return _redirect(link.default_landing_url)
    if request.method == "HEAD":
        # Link checkers and previewers probe with HEAD; they are not visits.
        return _redirect(link.target_url)
    meta = request.META
    # Not request.GET: building a QueryDict cost a tenth of the redirect's own CPU.
    query = get_bytes_from_wsgi(meta, "QUERY_STRING", "").decode("utf-8", "replace")
    subs, others = query_split(query)
    ip = client_ip(meta)
    click_id = click_record(
        link=link,
        ip_hash=ip_hmac(ip) if ip else "",
        user_agent=meta.get("HTTP_USER_AGENT", "")[:MAX_HEADER_TEXT],
        referrer=meta.get("HTTP_REFERER", "")[:MAX_HEADER_TEXT],
        country=client_country(meta),
        subs=tuple(subs.get(name, "") for name in SUB_NAMES),
        buffered=True,
    )
    return _redirect(
        landing_url_with_click(link.target_url, click_id=click_id, subs=subs, others=others)
    )
