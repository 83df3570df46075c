"""The click redirect, GET /t/{code} (SPEC §4; the contract is in docs/attribution.md)."""

from urllib.parse import urlencode, urlsplit, urlunsplit

import pycountry
from django.conf import settings
from django.http import HttpResponseNotAllowed, HttpResponseNotFound, HttpResponseRedirect
from django.template.loader import render_to_string

from revvvs.hashing import ip_hmac

from .models import AffiliateStatus
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


def landing_url_with_click(landing_url: str, *, click_id, subs: dict, query) -> str:
    """`landing_url` with its own query kept as it is, then click_id, the sub ids and the
    visitor's other query parameters appended."""
    added = [("click_id", str(click_id))]
    added += [(name, subs[name]) for name in SUB_NAMES if subs.get(name)]
    added += [(k, v) for k, values in query.lists() if k not in RESERVED for v in values]
    parts = urlsplit(landing_url)
    own = parts.query
    extra = urlencode(added)
    return urlunsplit(parts._replace(query=f"{own}&{extra}" if own else extra))


def _still_allowed(link) -> bool:
    # Cheap re-check of the stored landing URL at every click (it was validated when saved):
    # a host removed from the brand's list since then must not stay reachable.
    parts = urlsplit(link.landing_url)
    return parts.scheme in ("http", "https") and (parts.hostname or "") in link.allowed_hosts()


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
    # A link whose affiliate is not approved, or whose deep link is no longer on the brand's
    # domains (the list may have changed), goes to the brand's home and records nothing.
    if link.affiliate_status != AffiliateStatus.APPROVED or not _still_allowed(link):
        return _redirect(link.default_landing_url)
    if request.method == "HEAD":
        # Link checkers and previewers probe with HEAD; they are not visits.
        return _redirect(link.landing_url)
    meta = request.META
    subs = {name: request.GET.get(name, "")[:SUB_MAX_LENGTH] for name in SUB_NAMES}
    ip = client_ip(meta)
    click_id = click_record(
        link=link,
        ip_hash=ip_hmac(ip) if ip else "",
        user_agent=meta.get("HTTP_USER_AGENT", "")[:MAX_HEADER_TEXT],
        referrer=meta.get("HTTP_REFERER", "")[:MAX_HEADER_TEXT],
        country=client_country(meta),
        subs=tuple(subs[name] for name in SUB_NAMES),
    )
    return _redirect(
        landing_url_with_click(link.landing_url, click_id=click_id, subs=subs, query=request.GET)
    )
