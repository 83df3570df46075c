"""Reads of the tracking side."""

import functools
import time
import uuid
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings
from django.db import connection

from events.models import Event, EventType
from revvvs.models import Brand

from .models import Affiliate, AffiliateStatus, TrackingLink


@dataclass(frozen=True)
class RedirectLink:
    """What the click redirect needs of a link, its affiliate and its brand."""

    id: int
    affiliate_id: int
    brand_id: uuid.UUID
    landing_url: str
    affiliate_status: str
    default_landing_url: str
    allowed_domains: str

    @property
    def pk(self) -> int:
        return self.id

    def allowed_hosts(self) -> list[str]:
        brand = Brand(default_landing_url=self.default_landing_url)
        brand.allowed_domains = self.allowed_domains
        return brand.allowed_domain_list()

    @property
    def records_clicks(self) -> bool:
        """Whether a click on this link counts: its affiliate is approved. Otherwise the
        visitor goes to the brand's home and nothing is recorded."""
        return self.affiliate_status == AffiliateStatus.APPROVED

    @functools.cached_property
    def target_url(self) -> str:
        """Where the visitor goes: the link's landing URL while it is on one of the brand's
        domains (it was checked when saved, but the brand may have moved its home or dropped
        a domain since), else the brand's home. The click counts either way: the affiliate
        brought the visitor."""
        parts = urlsplit(self.landing_url)
        if parts.scheme in ("http", "https") and (parts.hostname or "") in self.allowed_hosts():
            return self.landing_url
        return self.default_landing_url


@functools.cache
def _redirect_link_sql(vendor: str) -> str:
    quote = connection.ops.quote_name
    link, affiliate, brand = (quote(m._meta.db_table) for m in (TrackingLink, Affiliate, Brand))
    return (
        f"SELECT l.id, l.affiliate_id, l.brand_id, l.landing_url, a.status, "
        f"b.default_landing_url, b.allowed_domains FROM {link} l "
        f"JOIN {affiliate} a ON a.id = l.affiliate_id JOIN {brand} b ON b.id = l.brand_id "
        f"WHERE l.code = %s"
    )


def _redirect_link_fetch(code: str) -> RedirectLink | None:
    with connection.cursor() as cursor:
        cursor.execute(_redirect_link_sql(connection.vendor), [code])
        row = cursor.fetchone()
    if row is None:
        return None
    row = list(row)
    row[2] = Brand._meta.get_field("id").to_python(row[2])
    return RedirectLink(*row)


class RedirectLinkCache:
    """This process's recently used links, each kept `seconds` after it was read.

    The redirect reads a link on every click; its link, affiliate and brand change rarely,
    so a change (a suspension, a brand's domains) reaches the redirect within `seconds`.
    Clicks of an affiliate suspended in that time are still not stored: the click insert
    checks the status itself (attribution.clicks). Unknown codes are never cached, so a new
    link works at once. At `size` links the cache starts afresh."""

    def __init__(self, *, size: int = 50_000, clock=time.monotonic):
        self.size = size
        self.clock = clock
        self._links: dict[str, tuple[float, RedirectLink]] = {}

    def get(self, code: str, *, seconds: float) -> RedirectLink | None:
        now = self.clock()
        cached = self._links.get(code)
        if cached is not None and cached[0] > now:
            return cached[1]
        link = _redirect_link_fetch(code)
        if link is None:
            self._links.pop(code, None)
            return None
        if len(self._links) >= self.size:
            self._links.clear()
        self._links[code] = (now + seconds, link)
        return link

    def clear(self) -> None:
        self._links.clear()


redirect_link_cache = RedirectLinkCache()


def tracking_link_for_redirect(*, code: str) -> RedirectLink | None:
    """The link with its affiliate's status and its brand's URLs: one query, or none while
    the process's cache holds it (`TRACKING_LINK_CACHE_SECONDS`, 0 = always read). Plain
    SQL: this is the redirect's hot path, and the ORM's query building was half its cost."""
    seconds = settings.TRACKING_LINK_CACHE_SECONDS
    if seconds <= 0:
        return _redirect_link_fetch(code)
    return redirect_link_cache.get(code, seconds=seconds)


def affiliates_for_reassignment(*, operator_id: int | None):
    """Approved affiliates a player can be moved to (all operators' for a superuser)."""
    queryset = Affiliate.objects.filter(status=AffiliateStatus.APPROVED).select_related("operator")
    if operator_id is not None:
        queryset = queryset.filter(operator_id=operator_id)
    return queryset


def attribution_for_event(*, event: Event) -> dict | None:
    """For a registration: whether it registered its player and how the player was
    attributed (the current attribution, which a manager may have changed since)."""
    if event.event_type != EventType.REGISTRATION:
        return None
    player = event.player
    if player.registration_event_id != event.id:
        return {"applied": False, "reason": "player already registered by another event"}
    return {
        "applied": True,
        "method": player.attribution_method,
        "affiliate_id": player.affiliate_id,
        "click_id": str(player.click_id) if player.click_id else None,
        "promo_code": player.promo_code.code if player.promo_code_id else None,
        "registered_at": player.registered_at.isoformat().replace("+00:00", "Z"),
    }
