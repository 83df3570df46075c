"""Writes of the tracking side: affiliates, links, promo codes, clicks, players, attribution.

The rules and the decisions behind them are in docs/attribution.md."""

import functools
import re
import secrets
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator, validate_email
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.db.models.functions import Lower
from django.utils import timezone

from events.models import Event, EventType
from revvvs import sql
from revvvs.hashing import ip_canonical
from revvvs.models import Brand, Operator, User
from revvvs.tenancy import operator_access_check

from .clicks import ClickRow, click_store, clicks_insert
from .models import (
    Affiliate,
    AffiliateStatus,
    AttributionMethod,
    Click,
    Player,
    PromoCode,
    Reassignment,
    TrackingLink,
)

# --- Affiliates -------------------------------------------------------------------------

# status -> the statuses it may be reached from
STATUS_TRANSITIONS = {
    AffiliateStatus.APPROVED: {
        AffiliateStatus.PENDING,
        AffiliateStatus.REJECTED,
        AffiliateStatus.SUSPENDED,
    },
    AffiliateStatus.REJECTED: {AffiliateStatus.PENDING},
    AffiliateStatus.SUSPENDED: {AffiliateStatus.APPROVED},
}

AFFILIATE_PROFILE_FIELDS = (
    "company",
    "website",
    "traffic_sources",
    "country",
    "payout_currency",
    "minimum_payout",
    "payment_details",
    "manager_notes",
)


def _referrer_check(
    *, operator_id: int, referrer: Affiliate | None, affiliate_id=None, payout_currency: str
) -> None:
    if referrer is None:
        return
    if referrer.operator_id != operator_id:
        raise ValidationError(
            {"referrer": "the referrer must be an affiliate of the same operator's programme"}
        )
    referrer_cycle_check(affiliate_id=affiliate_id, referrer=referrer)
    affiliate_currency_check(
        affiliate_id=affiliate_id, payout_currency=payout_currency, referrer=referrer
    )


def referrer_cycle_check(*, affiliate_id: int | None, referrer: Affiliate | None) -> None:
    """An affiliate is never their own referrer, directly or through a chain (x refers y,
    y is made x's referrer: each would earn a share of the other).

    Raises:
        ValidationError: on `referrer`, naming the chain.
    """
    if referrer is None or affiliate_id is None:
        return
    if referrer.pk == affiliate_id:
        raise ValidationError({"referrer": "an affiliate cannot be their own referrer"})
    chain, seen, current = [referrer], {referrer.pk}, referrer.referrer_id
    while current is not None and current not in seen:
        if current == affiliate_id:
            names = " → ".join(str(a) for a in reversed(chain))
            raise ValidationError(
                {
                    "referrer": f"{referrer} is one of this affiliate's own referrals (this "
                    f"affiliate → {names}); pick a referrer outside them"
                }
            )
        seen.add(current)
        chain.append(Affiliate.objects.get(pk=current))
        current = chain[-1].referrer_id


def affiliate_currency_check(
    *, affiliate_id: int | None, payout_currency: str, referrer: Affiliate | None
) -> None:
    """A referrer's sub-affiliate share books into its own statement, in one currency: an
    affiliate, its referrer and its referrals are paid in the same currency. An existing
    affiliate's currency changes only once nothing open is in the old one (the commission
    side's `payout_currency_change_check`).

    Raises:
        ValidationError: on `referrer` or `payout_currency`, saying which affiliates differ
            or what is still open in the old currency.
    """
    if referrer is not None and referrer.payout_currency != payout_currency:
        raise ValidationError(
            {
                "referrer": f"{referrer.email} is paid in {referrer.payout_currency} and this "
                f"affiliate in {payout_currency}; a referrer earns its share in its own "
                "currency, so both must be paid in the same one"
            }
        )
    if affiliate_id is None:
        return
    stored = Affiliate.objects.filter(pk=affiliate_id).values_list("payout_currency", flat=True)
    if stored and stored[0] != payout_currency:
        from commissions.services.periods import payout_currency_change_check

        payout_currency_change_check(affiliate_id=affiliate_id, currency=payout_currency)
    others = sorted(
        Affiliate.objects.filter(referrer_id=affiliate_id)
        .exclude(payout_currency=payout_currency)
        .values_list("email", flat=True)[:4]
    )
    if others:
        raise ValidationError(
            {
                "payout_currency": f"this affiliate refers {', '.join(others)}, paid in another "
                f"currency; a referrer is paid in its referrals' currency"
            }
        )


def affiliate_create(
    *,
    operator: Operator,
    email: str,
    password: str | None = None,
    status: str = AffiliateStatus.PENDING,
    referrer: Affiliate | None = None,
    **profile,
) -> Affiliate:
    """Create an affiliate and their portal login (username = the email, lower-cased).

    `password` None leaves the login without a usable password (the affiliate sets one
    through password reset). `profile` takes the fields of AFFILIATE_PROFILE_FIELDS.

    Raises:
        ValidationError: bad email, email already used (login or programme), referrer of
            another operator, unknown profile field.
    """
    unknown = set(profile) - set(AFFILIATE_PROFILE_FIELDS)
    if unknown:
        raise ValidationError(f"unknown affiliate fields: {', '.join(sorted(unknown))}")
    email = (email or "").strip().lower()
    try:
        validate_email(email)
    except ValidationError:
        raise ValidationError({"email": "enter a valid email address"}) from None
    if status not in AffiliateStatus.values:
        raise ValidationError({"status": f"must be one of: {', '.join(AffiliateStatus.values)}"})
    _referrer_check(
        operator_id=operator.pk,
        referrer=referrer,
        payout_currency=profile.get(
            "payout_currency", Affiliate._meta.get_field("payout_currency").default
        ),
    )
    profile.setdefault("minimum_payout", Decimal(0))

    with transaction.atomic():
        user = User(username=email, email=email)
        if password:
            user.set_password(password)
        else:
            user.set_unusable_password()
        try:
            with transaction.atomic():
                user.save()
        except IntegrityError:
            raise ValidationError(
                {"email": f"a login with the email {email} already exists"}
            ) from None
        affiliate = Affiliate(
            operator=operator,
            user=user,
            email=email,
            status=status,
            status_changed_at=timezone.now(),
            referrer=referrer,
            **profile,
        )
        try:
            with transaction.atomic():
                affiliate.save()
        except IntegrityError:
            raise ValidationError(
                {"email": f"an affiliate with the email {email} is already in this programme"}
            ) from None
    return affiliate


def affiliate_update(*, affiliate: Affiliate, referrer=..., **profile) -> Affiliate:
    """Change an affiliate's profile and referrer (status changes have their own services)."""
    unknown = set(profile) - set(AFFILIATE_PROFILE_FIELDS)
    if unknown:
        raise ValidationError(f"unknown affiliate fields: {', '.join(sorted(unknown))}")
    with transaction.atomic():
        if "payout_currency" in profile:
            # Locked as plan assignments lock it: the currency check sees every assignment
            # committed before, and none can be added until this change commits.
            locked = Affiliate.objects.select_for_update(no_key=True).get(pk=affiliate.pk)
            affiliate.payout_currency = locked.payout_currency
        return _affiliate_update(affiliate, referrer, profile)


def _affiliate_update(affiliate: Affiliate, referrer, profile: dict) -> Affiliate:
    fields = list(profile)
    payout_currency = profile.get("payout_currency", affiliate.payout_currency)
    if referrer is not ...:
        _referrer_check(
            operator_id=affiliate.operator_id,
            referrer=referrer,
            affiliate_id=affiliate.pk,
            payout_currency=payout_currency,
        )
        affiliate.referrer = referrer
        fields.append("referrer")
    elif payout_currency != affiliate.payout_currency:
        affiliate_currency_check(
            affiliate_id=affiliate.pk, payout_currency=payout_currency, referrer=affiliate.referrer
        )
    for name, value in profile.items():
        setattr(affiliate, name, value)
    if fields:
        affiliate.save(update_fields=fields)
    return affiliate


def _affiliate_status_set(affiliate: Affiliate, status: str) -> Affiliate:
    # No shortcut on the status in memory: the row may have moved since it was read.
    allowed = STATUS_TRANSITIONS[status]
    with transaction.atomic():
        now = timezone.now()
        # Conditional on the status we saw, so two managers acting at once cannot both win.
        updated = Affiliate.objects.filter(pk=affiliate.pk, status__in=allowed).update(
            status=status, status_changed_at=now
        )
        if not updated:
            current = Affiliate.objects.values_list("status", flat=True).get(pk=affiliate.pk)
            if current == status:
                affiliate.status = status
                return affiliate
            allowed_text = " or ".join(sorted(allowed))
            article = "an" if allowed_text[0] in "aeiou" else "a"
            affiliate.status = current
            raise ValidationError(
                f"{affiliate.email} is {current}; only {article} {allowed_text} affiliate can "
                f"be {status}"
            )
    affiliate.status = status
    affiliate.status_changed_at = now
    return affiliate


def affiliate_approve(*, affiliate: Affiliate) -> Affiliate:
    """Pending, rejected or suspended -> approved. Links start recording clicks."""
    return _affiliate_status_set(affiliate, AffiliateStatus.APPROVED)


def affiliate_reject(*, affiliate: Affiliate) -> Affiliate:
    """Pending -> rejected."""
    return _affiliate_status_set(affiliate, AffiliateStatus.REJECTED)


def affiliate_suspend(*, affiliate: Affiliate) -> Affiliate:
    """Approved -> suspended: links redirect without recording, new registrations are no
    longer attributed to the affiliate; players already attributed stay."""
    return _affiliate_status_set(affiliate, AffiliateStatus.SUSPENDED)


# --- Tracking links and promo codes -----------------------------------------------------

LINK_CODE_BYTES = 6  # 8 URL-safe characters, 48 random bits
LINK_CODE_RE = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
_URL_VALIDATOR = URLValidator(schemes=["http", "https"])
_FORBIDDEN_URL_CHARS = re.compile(r"[\s\\\x00-\x1f\x7f]")


def landing_url_clean(*, brand: Brand, url: str | None) -> str:
    """The landing URL a link of `brand` may redirect to: the brand's default when `url` is
    empty, else `url` itself when it is http(s) on exactly one of the brand's allowed hosts.

    Raises:
        ValidationError: anything else (other host, look-alike host, user info, other scheme,
            scheme-relative URL, backslashes or control characters).
    """
    if url is None or not url.strip():
        return brand.default_landing_url
    url = url.strip()
    allowed = brand.allowed_domain_list()
    if _FORBIDDEN_URL_CHARS.search(url):
        raise ValidationError("the landing URL must not contain spaces, backslashes or controls")
    try:
        parts = urlsplit(url)
        hostname = parts.hostname  # raises ValueError on a bad host part ("[x]", "／")
    except ValueError:
        raise ValidationError("the landing URL is not a valid URL") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        raise ValidationError("the landing URL must be an absolute http:// or https:// URL")
    if "@" in parts.netloc:
        raise ValidationError("the landing URL must not contain a user name or password")
    try:
        parts.port  # noqa: B018 - raises ValueError on a bad port
        _URL_VALIDATOR(url)
    except (ValueError, ValidationError):
        raise ValidationError("the landing URL is not a valid URL") from None
    host = (hostname or "").lower()
    if host not in allowed:
        raise ValidationError(
            f"the landing URL's host {host!r} is not one of the brand's allowed domains "
            f"({', '.join(allowed)})"
        )
    return url


def landing_url_is_allowed(*, brand: Brand, url: str) -> bool:
    try:
        landing_url_clean(brand=brand, url=url)
    except ValidationError:
        return False
    return True


def _same_operator(affiliate: Affiliate, brand: Brand) -> None:
    if brand.operator_id != affiliate.operator_id:
        raise ValidationError({"brand": "the brand must belong to the affiliate's operator"})


def tracking_link_create(
    *,
    affiliate: Affiliate,
    brand: Brand,
    landing_url: str | None = None,
    name: str = "",
    code: str | None = None,
) -> TrackingLink:
    """A link with a short unguessable code (or `code`, for fixed demo data).

    Raises:
        ValidationError: brand of another operator, landing URL outside the brand's domains.
    """
    _same_operator(affiliate, brand)
    try:
        landing = landing_url_clean(brand=brand, url=landing_url)
    except ValidationError as exc:
        raise ValidationError({"landing_url": exc.messages}) from None
    if code is not None and not LINK_CODE_RE.match(code):
        raise ValidationError({"code": "1–32 letters, digits, '-' or '_'"})
    for _attempt in range(5):
        link = TrackingLink(
            affiliate=affiliate,
            brand=brand,
            name=name,
            landing_url=landing,
            code=code or secrets.token_urlsafe(LINK_CODE_BYTES),
        )
        try:
            with transaction.atomic():
                link.save()
            return link
        except IntegrityError:
            if code is not None:
                raise ValidationError({"code": f"the code {code} is taken"}) from None
    raise RuntimeError("could not find a free link code in 5 attempts")


def tracking_link_update(
    *, link: TrackingLink, landing_url: str | None = None, name: str | None = None
) -> TrackingLink:
    try:
        link.landing_url = landing_url_clean(brand=link.brand, url=landing_url)
    except ValidationError as exc:
        raise ValidationError({"landing_url": exc.messages}) from None
    if name is not None:
        link.name = name
    link.save(update_fields=["landing_url", "name"])
    return link


PROMO_CODE_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def promo_code_create(*, affiliate: Affiliate, brand: Brand, code: str) -> PromoCode:
    """Raises ValidationError when the code is malformed, already used in the operator's
    programme (case-insensitive: the database constraint decides) or the brand is foreign."""
    code = (code or "").strip()
    if not PROMO_CODE_RE.match(code):
        raise ValidationError({"code": "a promo code is 1–64 letters, digits, '-' or '_'"})
    _same_operator(affiliate, brand)
    promo = PromoCode(
        operator_id=affiliate.operator_id, affiliate=affiliate, brand=brand, code=code
    )
    try:
        with transaction.atomic():
            promo.save()
    except IntegrityError:
        raise ValidationError(
            {"code": f"the promo code {code} is already used in this programme"}
        ) from None
    return promo


# --- Clicks ------------------------------------------------------------------------------

# Known crawlers, link previewers, HTTP libraries and headless browsers. Matched
# case-insensitively anywhere in the user agent; an empty user agent is a bot too.
BOT_PATTERNS = (
    "bot",
    "crawl",
    "spider",
    "slurp",
    "curl/",
    "wget",
    "python-requests",
    "python-urllib",
    "aiohttp",
    "httpx",
    "go-http-client",
    "java/",
    "libwww",
    "apache-httpclient",
    "headless",
    "phantomjs",
    "puppeteer",
    "playwright",
    "selenium",
    "lighthouse",
    "pingdom",
    "uptime",
    "monitor",
    "preview",
    "facebookexternalhit",
    "embedly",
    "quora link preview",
    "whatsapp",
    "scrapy",
    "feedfetcher",
    "mediapartners-google",
    "validator",
)

SUB_MAX_LENGTH = 255


@functools.lru_cache(maxsize=4096)
def user_agent_is_bot(user_agent: str) -> bool:
    # Substring tests on the lowercased text: a tenth of the cost of one alternation regex
    # with IGNORECASE (46 µs per browser user agent here), on every click. Visitors share
    # a few thousand user agents, hence the cache.
    lowered = user_agent.lower()
    return not lowered.strip() or any(pattern in lowered for pattern in BOT_PATTERNS)


def ip_normalise(value: str) -> str | None:
    """The canonical text of an IP (as the Event API hashes it), or None. Accepts the
    `1.2.3.4:port` and `[v6]:port` forms some proxies send."""
    value = (value or "").strip()
    if not value:
        return None
    if value.startswith("[") and "]" in value:
        value = value[1 : value.index("]")]
    elif value.count(":") == 1:
        value = value.split(":", 1)[0]
    try:
        return ip_canonical(value)
    except ValueError:
        return None


def _storable(text: str | None) -> str:
    # A visitor can send `sub1=%00`; PostgreSQL text cannot hold NUL, and the click must
    # not be refused for it.
    return (text or "").replace("\x00", "")


def click_record(
    *,
    link: TrackingLink,
    ip_hash: str,
    user_agent: str = "",
    referrer: str = "",
    country: str = "",
    subs: tuple[str, ...] = ("", "", "", "", ""),
    now: datetime | None = None,
    click_id: uuid.UUID | None = None,
    buffered: bool = False,
) -> uuid.UUID:
    """Record a click of `link` (whose affiliate is approved) and return its click_id.

    `ip_hash` is the HMAC of the visitor's IP (revvvs.hashing.ip_hmac), never the IP.
    `buffered` (the redirect) hands the click to the process's click buffer, which stores
    it within `CLICK_FLUSH_SECONDS` (attribution.clicks); otherwise it is stored before
    this returns. `now` and `click_id` are for fixed demo data."""
    subs = tuple(_storable(s)[:SUB_MAX_LENGTH] for s in subs) + ("",) * (5 - len(subs))
    row = ClickRow(
        id=click_id or uuid.uuid4(),
        link_id=link.pk,
        created_at=now or timezone.now(),
        subs=subs,
        ip_hash=ip_hash or "",
        user_agent=_storable(user_agent),
        referrer=_storable(referrer),
        country=country or "",
        is_bot=user_agent_is_bot(user_agent or ""),
    )
    if buffered:
        click_store(row)
    else:
        clicks_insert(rows=[row])
    return row.id


# --- Players and attribution ------------------------------------------------------------

ALREADY_REGISTERED = "player already registered; this registration changes nothing"
CLICK_NOT_FOUND = "click_id not found"
CLICK_NOT_APPROVED = "click_id belongs to an affiliate who is not approved; not used"
PROMO_NOT_FOUND = "promo_code not found"
PROMO_NOT_APPROVED = "promo_code belongs to an affiliate who is not approved; not used"


def players_get_or_create(
    *, keys: set[tuple[uuid.UUID, str]]
) -> dict[tuple[uuid.UUID, str], Player]:
    """The players named by (brand_id, external_ref), creating the unknown ones.

    On PostgreSQL the players it creates are marked `created_in_this_transaction = True`.

    On PostgreSQL one statement in the steady state (a second one reads the players another
    request created concurrently); elsewhere two queries, three when some are new. The unique
    constraint on (brand, external_ref) settles concurrent creations."""
    if connection.vendor == "postgresql":
        return _players_get_or_create_postgresql(keys)

    def fetch(wanted) -> dict[tuple[uuid.UUID, str], Player]:
        refs_by_brand: dict[uuid.UUID, list[str]] = {}
        for brand_id, ref in wanted:
            refs_by_brand.setdefault(brand_id, []).append(ref)
        condition = Q()
        for brand_id, refs in refs_by_brand.items():
            condition |= Q(brand_id=brand_id, external_ref__in=refs)
        # No ORDER BY: the default ordering would sort rows nobody reads in order.
        players = Player.objects.filter(condition).order_by()
        return {(p.brand_id, p.external_ref): p for p in players}

    found = fetch(keys)
    missing = sorted(keys - found.keys())
    if missing:
        Player.objects.bulk_create(
            [Player(brand_id=brand_id, external_ref=ref) for brand_id, ref in missing],
            ignore_conflicts=True,
        )
        found.update(fetch(missing))
    return found


@functools.cache
def _players_sql() -> tuple[str, str]:
    """The get-or-create statement of `_players_get_or_create_postgresql` and the select of
    its fallback, built once from the model."""
    qn = sql.qn
    meta = Player._meta
    table = qn(meta.db_table)
    fields = [f for f in meta.concrete_fields if not f.primary_key]
    columns = ", ".join(qn(f.column) for f in fields)
    selected = ", ".join(qn(f.column) for f in meta.concrete_fields)
    selected_p = sql.select_list(Player, "p")
    brand, ref = qn(meta.get_field("brand").column), qn(meta.get_field("external_ref").column)
    match = f"p.{brand} = w.{brand} AND p.{ref} = w.{ref}"
    wanted = f"SELECT * FROM {sql.recordset(fields, 'w')}"
    # The missing players are inserted in the order of the rows (sorted by the caller), so
    # concurrent requests creating the same players queue up instead of deadlocking. Rows
    # the INSERT adds are not visible to the same statement's SELECT: RETURNING brings them.
    get_or_create = (
        f"WITH w AS ({wanted}), created AS ("
        f"INSERT INTO {table} ({columns}) SELECT {columns} FROM w "
        f"WHERE NOT EXISTS (SELECT 1 FROM {table} p WHERE {match}) ORDER BY n "
        f"ON CONFLICT DO NOTHING RETURNING {selected}) "
        f"SELECT {selected}, true FROM created "
        f"UNION ALL SELECT {selected_p}, false FROM {table} p JOIN w ON {match}"
    )
    select = f"SELECT {selected_p} FROM {table} p JOIN ({wanted}) w ON {match}"
    return get_or_create, select


def _players_get_or_create_postgresql(keys) -> dict[tuple[uuid.UUID, str], Player]:
    get_or_create, select = _players_sql()
    attnames = [f.attname for f in Player._meta.concrete_fields]
    # A new player's columns are those of Player(brand_id=…, external_ref=…) as saved.
    template = Player(brand_id=None, external_ref="")
    defaults = {
        f.column: f.pre_save(template, True)
        for f in Player._meta.concrete_fields
        if not f.primary_key
    }
    rows = [dict(defaults, brand_id=brand_id, external_ref=ref) for brand_id, ref in sorted(keys)]
    found = {}
    with connection.cursor() as cursor:
        cursor.execute(get_or_create, sql.recordset_params(rows))
        for *row, created in cursor.fetchall():
            player = sql.loaded(Player, attnames, row)
            # No event can be stored for it before this transaction (commissions.events_book).
            player.created_in_this_transaction = created
            found[(player.brand_id, player.external_ref)] = player
        if len(found) < len(keys):
            # Created by a concurrent request after this statement's snapshot was taken.
            missing = [
                {"brand_id": str(brand_id), "external_ref": ref}
                for brand_id, ref in sorted(keys - found.keys())
            ]
            cursor.execute(select, sql.recordset_params(missing))
            for row in cursor.fetchall():
                player = sql.loaded(Player, attnames, row)
                found[(player.brand_id, player.external_ref)] = player
    return found


@dataclass(frozen=True)
class ApplyResult:
    warnings: dict[uuid.UUID, list[str]] = field(default_factory=dict)
    newly_registered: list[Player] = field(default_factory=list)


@dataclass
class _Decision:
    """How one registration attributes its player."""

    event: Event
    method: str = AttributionMethod.NONE
    affiliate_id: int | None = None
    click_id: uuid.UUID | None = None
    promo_code_id: int | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def decided(self) -> bool:
        return self.method != AttributionMethod.NONE


def events_apply(*, events: list[Event]) -> ApplyResult:
    """Apply newly stored events (sorted by event_time) to their players: registrations
    register and attribute their player, player_status events change its status.

    Set-based: whatever the batch size, at most one query each for click_ids, promo codes,
    last-click candidates, the registering update and the status update. A player is
    registered once: the update is conditional on `registered_at IS NULL`, so of two
    concurrent registrations only one changes the row; the other gets a warning.

    Returns the warnings per event id and the players this batch registered.
    """
    warnings: dict[uuid.UUID, list[str]] = defaultdict(list)
    registrations: list[_Decision] = []
    registering: set[int] = set()
    statuses: dict[int, Event] = {}
    for event in events:
        player = event.player
        if event.event_type == EventType.REGISTRATION:
            if player.registered_at is not None or player.pk in registering:
                warnings[event.id].append(ALREADY_REGISTERED)
                continue
            registering.add(player.pk)
            registrations.append(_Decision(event=event))
        elif event.event_type == EventType.PLAYER_STATUS:
            statuses[player.pk] = event  # events come in event_time order: the last wins

    newly_registered: list[Player] = []
    if registrations:
        _attribute_by_click_id(registrations)
        _attribute_by_promo_code(
            [d for d in registrations if not d.decided and d.event.payload.get("promo_code")]
        )
        _attribute_by_last_click(
            [d for d in registrations if not d.decided and d.event.payload.get("ip_hash")]
        )
        registered = _players_register(registrations)
        for decision in registrations:
            event, player = decision.event, decision.event.player
            if player.pk not in registered:
                warnings[event.id].append(ALREADY_REGISTERED)
                continue
            warnings[event.id].extend(decision.warnings)
            player.registered_at = event.event_time
            player.registration_event_id = event.id
            player.country = event.payload.get("country") or ""
            player.affiliate_id = decision.affiliate_id
            player.click_id = decision.click_id
            player.promo_code_id = decision.promo_code_id
            player.attribution_method = decision.method
            player.attributed_at = event.received_at
            newly_registered.append(player)

    if statuses:
        changed = _players_status_update(list(statuses.values()))
        for player_id, event in statuses.items():
            if player_id in changed:
                event.player.status = event.payload["status"]
                event.player.status_event_time = event.event_time

    return ApplyResult(
        warnings={k: v for k, v in warnings.items() if v}, newly_registered=newly_registered
    )


def _attribute_by_click_id(decisions: list[_Decision]) -> None:
    wanted: dict[int, uuid.UUID | None] = {}  # id(decision) -> click id
    for decision in decisions:
        raw = decision.event.payload.get("click_id")
        if not raw:
            continue
        try:
            wanted[id(decision)] = uuid.UUID(str(raw))
        except ValueError:
            wanted[id(decision)] = None
    if not wanted:
        return
    ids = {v for v in wanted.values() if v is not None}
    operator_ids = {d.event.operator_id for d in decisions}
    clicks = {}
    if ids:
        clicks = {
            row[0]: row
            for row in Click.objects.filter(
                id__in=ids, brand__operator_id__in=operator_ids
            ).values_list("id", "affiliate_id", "brand__operator_id", "affiliate__status")
        }
    for decision in decisions:
        if id(decision) not in wanted:
            continue
        row = clicks.get(wanted[id(decision)])
        # Another operator's click is "not found", exactly like an unknown one: it must
        # neither attribute nor reveal that it exists.
        if row is None or row[2] != decision.event.operator_id:
            decision.warnings.append(CLICK_NOT_FOUND)
        elif row[3] != AffiliateStatus.APPROVED:
            decision.warnings.append(CLICK_NOT_APPROVED)
        else:
            decision.method = AttributionMethod.CLICK_ID
            decision.click_id = row[0]
            decision.affiliate_id = row[1]


def _attribute_by_promo_code(decisions: list[_Decision]) -> None:
    if not decisions:
        return
    codes = {str(d.event.payload["promo_code"]).strip().lower() for d in decisions}
    operator_ids = {d.event.operator_id for d in decisions}
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(_promo_codes_sql(), [list(operator_ids), list(codes)])
            names = ("id", "operator_id", "code_lower", "affiliate_id", "affiliate__status")
            found = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    else:
        found = (
            PromoCode.objects.annotate(code_lower=Lower("code"))
            .filter(operator_id__in=operator_ids, code_lower__in=codes)
            .values("id", "operator_id", "code_lower", "affiliate_id", "affiliate__status")
        )
    rows = {(row["operator_id"], row["code_lower"]): row for row in found}
    for decision in decisions:
        code = str(decision.event.payload["promo_code"]).strip().lower()
        key = (decision.event.operator_id, code)
        row = rows.get(key)
        if row is None:
            decision.warnings.append(PROMO_NOT_FOUND)
        elif row["affiliate__status"] != AffiliateStatus.APPROVED:
            decision.warnings.append(PROMO_NOT_APPROVED)
        else:
            decision.method = AttributionMethod.PROMO_CODE
            decision.promo_code_id = row["id"]
            decision.affiliate_id = row["affiliate_id"]


@functools.cache
def _promo_codes_sql() -> str:
    # What the ORM query of the SQLite branch sends, without compiling it on every batch.
    qn = connection.ops.quote_name
    promo, affiliate = PromoCode._meta, Affiliate._meta
    code = f"LOWER(c.{qn(promo.get_field('code').column)})"
    operator = f"c.{qn(promo.get_field('operator').column)}"
    affiliate_id = f"c.{qn(promo.get_field('affiliate').column)}"
    return (
        f"SELECT c.{qn(promo.pk.column)}, {operator}, {code}, {affiliate_id}, "
        f"a.{qn(affiliate.get_field('status').column)} "
        f"FROM {qn(promo.db_table)} c JOIN {qn(affiliate.db_table)} a "
        f"ON a.{qn(affiliate.pk.column)} = {affiliate_id} "
        f"WHERE {operator} = ANY(%s) AND {code} = ANY(%s)"
    )


def _attribute_by_last_click(decisions: list[_Decision]) -> None:
    if not decisions:
        return
    if connection.vendor == "postgresql":
        found = _last_clicks_postgresql(decisions)
    else:
        found = _last_clicks_portable(decisions)
    for index, decision in enumerate(decisions):
        if index in found:
            decision.method = AttributionMethod.LAST_CLICK
            decision.click_id, decision.affiliate_id = found[index]


def _last_clicks_postgresql(decisions: list[_Decision]) -> dict[int, tuple[uuid.UUID, int]]:
    """One query: for each registration, the latest human click on its brand from its IP
    hash within the brand's window before event_time, of an approved affiliate."""
    click = Click._meta.db_table
    affiliate = Affiliate._meta.db_table
    brand = Brand._meta.db_table
    values = ", ".join(["(%s::int, %s::uuid, %s::varchar, %s::timestamptz)"] * len(decisions))
    params: list = []
    for index, decision in enumerate(decisions):
        event = decision.event
        params += [index, event.brand_id, str(event.payload["ip_hash"]), event.event_time]
    statement = f"""
        SELECT v.idx, c.id, c.affiliate_id
        FROM (VALUES {values}) AS v(idx, brand_id, ip_hash, event_time)
        JOIN {brand} b ON b.id = v.brand_id
        CROSS JOIN LATERAL (
            SELECT c.id, c.affiliate_id
            FROM {click} c JOIN {affiliate} a ON a.id = c.affiliate_id
            WHERE c.brand_id = v.brand_id AND c.ip_hash = v.ip_hash
              AND c.created_at <= v.event_time
              AND c.created_at >= v.event_time - make_interval(days => b.attribution_window_days)
              AND NOT c.is_bot AND a.status = %s
            ORDER BY c.created_at DESC, c.id DESC
            LIMIT 1
        ) c
    """
    with connection.cursor() as cursor:
        cursor.execute(statement, [*params, AffiliateStatus.APPROVED.value])
        return {idx: (click_id, affiliate_id) for idx, click_id, affiliate_id in cursor}


def _last_clicks_portable(decisions: list[_Decision]) -> dict[int, tuple[uuid.UUID, int]]:
    """The same as `_last_clicks_postgresql` with the ORM (SQLite, the demo database):
    two queries, candidates picked in Python."""
    windows = dict(
        Brand.objects.filter(id__in={d.event.brand_id for d in decisions}).values_list(
            "id", "attribution_window_days"
        )
    )
    condition = Q()
    bounds = []
    for decision in decisions:
        event = decision.event
        start = event.event_time - timedelta(days=windows[event.brand_id])
        bounds.append((event.brand_id, event.payload["ip_hash"], start, event.event_time))
        condition |= Q(
            brand_id=event.brand_id,
            ip_hash=event.payload["ip_hash"],
            created_at__gte=start,
            created_at__lte=event.event_time,
        )
    candidates = list(
        Click.objects.filter(condition, is_bot=False, affiliate__status=AffiliateStatus.APPROVED)
        .order_by("-created_at", "-id")
        .values_list("id", "affiliate_id", "brand_id", "ip_hash", "created_at")
    )
    found = {}
    for index, (brand_id, ip_hash, start, end) in enumerate(bounds):
        for click_id, affiliate_id, c_brand, c_ip, created_at in candidates:
            if c_brand == brand_id and c_ip == ip_hash and start <= created_at <= end:
                found[index] = (click_id, affiliate_id)
                break
    return found


def _players_register(decisions: list[_Decision]) -> set[int]:
    """Register and attribute the players of `decisions` that are still unregistered, in
    one conditional UPDATE on PostgreSQL; returns the ids of the players it changed."""
    rows = [
        (
            d.event.player.pk,
            d.event.event_time,
            d.event.id,
            d.event.payload.get("country") or "",
            d.affiliate_id,
            d.click_id,
            d.promo_code_id,
            d.method,
            d.event.received_at,
        )
        for d in decisions
    ]
    if connection.vendor != "postgresql":
        registered = set()
        for player_id, registered_at, event_id, country, aff, click, promo, method, at in rows:
            if Player.objects.filter(pk=player_id, registered_at__isnull=True).update(
                registered_at=registered_at,
                registration_event_id=event_id,
                country=country,
                affiliate_id=aff,
                click_id=click,
                promo_code_id=promo,
                attribution_method=method,
                attributed_at=at,
            ):
                registered.add(player_id)
        return registered
    table = Player._meta.db_table
    # The rows travel as one JSON parameter: Django's client-side binding would quote each
    # of their values in Python.
    statement = f"""
        UPDATE {table} AS p SET
            registered_at = v.registered_at, registration_event_id = v.event_id,
            country = v.country, affiliate_id = v.affiliate_id, click_id = v.click_id,
            promo_code_id = v.promo_code_id, attribution_method = v.method,
            attributed_at = v.attributed_at
        FROM (SELECT * FROM jsonb_to_recordset(%s::jsonb) AS v(
            player_id bigint, registered_at timestamptz, event_id uuid, country varchar,
            affiliate_id bigint, click_id uuid, promo_code_id bigint, method varchar,
            attributed_at timestamptz) LIMIT %s) AS v
        WHERE p.id = v.player_id AND p.registered_at IS NULL
        RETURNING p.id
    """
    names = (
        "player_id",
        "registered_at",
        "event_id",
        "country",
        "affiliate_id",
        "click_id",
        "promo_code_id",
        "method",
        "attributed_at",
    )
    payload = [dict(zip(names, row, strict=True)) for row in rows]
    with connection.cursor() as cursor:
        cursor.execute(statement, sql.recordset_params(payload))
        return {row[0] for row in cursor.fetchall()}


def _players_status_update(events: list[Event]) -> set[int]:
    """Set each player's status from its latest player_status event, unless a later-dated
    one was already applied (order of arrival must not matter)."""
    rows = [(e.player.pk, e.payload["status"], e.event_time) for e in events]
    if connection.vendor != "postgresql":
        changed = set()
        for player_id, status, event_time in rows:
            if (
                Player.objects.filter(pk=player_id)
                .filter(Q(status_event_time__isnull=True) | Q(status_event_time__lte=event_time))
                .update(status=status, status_event_time=event_time)
            ):
                changed.add(player_id)
        return changed
    table = Player._meta.db_table
    values = ", ".join(["(%s::bigint, %s::varchar, %s::timestamptz)"] * len(rows))
    statement = f"""
        UPDATE {table} AS p SET status = v.status, status_event_time = v.event_time
        FROM (VALUES {values}) AS v(player_id, status, event_time)
        WHERE p.id = v.player_id
          AND (p.status_event_time IS NULL OR p.status_event_time <= v.event_time)
        RETURNING p.id
    """
    with connection.cursor() as cursor:
        cursor.execute(statement, [value for row in rows for value in row])
        return {row[0] for row in cursor.fetchall()}


# --- Reassignment ---------------------------------------------------------------------


def player_reassign(
    *, player: Player, to_affiliate: Affiliate | None, reason: str, author: User
) -> Reassignment:
    """Move a registered player to another approved affiliate of the same operator (None:
    make the player organic), audited, with the ledger moves in the same transaction.

    Raises:
        ValidationError: empty reason, unregistered player, affiliate of another operator
            or not approved, or the player already belongs to that affiliate.
        PermissionDenied: the author is a manager of another operator.
    """
    from commissions.services import ledger_player_reassigned

    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": "give the reason for the reassignment"})
    with transaction.atomic():
        # The lock alone, no join: a reassignment waiting for another one gets the row as
        # that one left it, but a joined row would come back with the affiliate it had
        # joined before the wait (PostgreSQL re-checks the locked row, not the join), and
        # the move would start from the wrong affiliate. Related rows are read after.
        locked = Player.objects.select_for_update(no_key=True).get(pk=player.pk)
        operator_access_check(user=author, operator_id=locked.brand.operator_id, what="this player")
        if locked.registered_at is None:
            raise ValidationError(
                f"player {locked.external_ref} has not registered yet; reassign it after its "
                "registration has arrived"
            )
        if to_affiliate is not None:
            if to_affiliate.operator_id != locked.brand.operator_id:
                raise ValidationError(
                    {"to_affiliate": "the affiliate must belong to the player's operator"}
                )
            # The status as locked, not as the caller read it: a suspension made since then
            # (another manager) waits for this move or is seen by it.
            status = (
                Affiliate.objects.select_for_update(no_key=True)
                .values_list("status", flat=True)
                .get(pk=to_affiliate.pk)
            )
            if status != AffiliateStatus.APPROVED:
                raise ValidationError(
                    {"to_affiliate": f"{to_affiliate.email} is {status}, not approved"}
                )
        if locked.affiliate_id == (to_affiliate.pk if to_affiliate else None):
            raise ValidationError(
                f"player {locked.external_ref} is already attributed to "
                f"{to_affiliate or 'no affiliate (organic)'}"
            )
        from_affiliate = (
            Affiliate.objects.get(pk=locked.affiliate_id) if locked.affiliate_id else None
        )
        reassignment = Reassignment.objects.create(
            player=locked,
            from_affiliate=from_affiliate,
            to_affiliate=to_affiliate,
            from_method=locked.attribution_method,
            reason=reason,
            author=author,
        )
        locked.affiliate = to_affiliate
        locked.attribution_method = AttributionMethod.MANUAL
        locked.attributed_at = reassignment.created_at
        locked.click = None
        locked.promo_code = None
        locked.save(
            update_fields=[
                "affiliate",
                "attribution_method",
                "attributed_at",
                "click",
                "promo_code",
            ]
        )
        ledger_player_reassigned(
            player=locked, from_affiliate=from_affiliate, to_affiliate=to_affiliate, author=author
        )
    for name in (
        "affiliate_id",
        "attribution_method",
        "attributed_at",
        "click_id",
        "promo_code_id",
    ):
        setattr(player, name, getattr(locked, name))
    return reassignment
