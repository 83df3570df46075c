"""Demo data of the tracking side (called by revvvs.demo): affiliates with logins, links on
both brands, promo codes, a few hundred clicks, and a few hundred events sent through the
real Event API pipeline. Fixed identities everywhere (emails, link codes, uuid5 click ids,
`demo_` idempotency keys), so a second run changes nothing."""

import random
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.utils import timezone

from revvvs.hashing import ip_hmac

from .models import Affiliate, AffiliateStatus, Click, PromoCode, TrackingLink
from .services import affiliate_create, click_record, promo_code_create, tracking_link_create

DEMO_BASE_URL = "http://127.0.0.1:8000"
CLICK_NAMESPACE = uuid.UUID("7a0c2f4e-3b1d-4c8a-9e2f-5d6b7c8a9e01")
DAYS = 60
CLICKS = 320

# email, password, status, company, referrer email,
# links: (code, brand index, deep link path or None, name), promo codes: (code, brand index)
DEMO_AFFILIATES = [
    (
        "ace.media@affiliates.example.com",
        "ace-demo-2026",
        AffiliateStatus.APPROVED,
        "Ace Media",
        None,
        [
            ("aceLucky1", 0, None, "Lucky Star home"),
            ("aceSpring", 0, "https://promo.luckystar.example.com/spring", "Spring promo"),
            ("aceGoal01", 1, None, "Goal Rush home"),
        ],
        [("ACE50", 0), ("ACEGOAL", 1)],
    ),
    (
        "betguru@affiliates.example.com",
        "guru-demo-2026",
        AffiliateStatus.APPROVED,
        "Bet Guru",
        None,
        [("guruGoal1", 1, None, "Match tips"), ("guruSlot1", 0, None, "Slots review")],
        [("GURU10", 1)],
    ),
    (
        "casino.reviews@affiliates.example.com",
        "reviews-demo-2026",
        AffiliateStatus.APPROVED,
        "Casino Reviews Ltd",
        "ace.media@affiliates.example.com",
        [("revLucky1", 0, None, "Top 10 casinos")],
        [("REVIEWS", 0)],
    ),
    (
        "newcomer@affiliates.example.com",
        "newcomer-demo-2026",
        AffiliateStatus.PENDING,
        "Newcomer Traffic",
        None,
        [],
        [],
    ),
]

BROWSERS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4 Safari/605.1.15",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0 Mobile Safari/537.36",
]
BOTS = ["Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"]
SOURCES = ["google", "facebook", "newsletter", "tiktok", "forum"]
COUNTRIES = ["GB", "DE", "SE", "FI", "CA", "NZ", "IE"]


def _anchor() -> datetime:
    """The newest demo time: the start of the current hour, minus one hour."""
    return timezone.now().replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)


def _demo_ip(n: int) -> str:
    return f"203.0.113.{n % 200 + 1}"  # TEST-NET-3: documentation addresses


def seed_demo(*, operator, brands, result) -> dict:
    affiliates = {}
    for email, password, status, company, referrer, links, promos in DEMO_AFFILIATES:
        affiliate = Affiliate.objects.filter(operator=operator, email=email).first()
        if affiliate is None:
            affiliate = affiliate_create(
                operator=operator,
                email=email,
                password=password,
                status=status,
                referrer=affiliates.get(referrer),
                company=company,
                website=f"https://{company.lower().replace(' ', '-')}.example.net/",
                traffic_sources="SEO, email, social",
                country="GB",
                minimum_payout=Decimal("100.00"),
            )
        elif not affiliate.user.check_password(password):
            affiliate.user.set_password(password)
            affiliate.user.save(update_fields=["password"])
        affiliates[email] = affiliate
        for code, brand_index, deep_link, name in links:
            if not TrackingLink.objects.filter(code=code).exists():
                tracking_link_create(
                    affiliate=affiliate,
                    brand=brands[brand_index],
                    landing_url=deep_link,
                    name=name,
                    code=code,
                )
        for code, brand_index in promos:
            if not PromoCode.objects.filter(operator=operator, code__iexact=code).exists():
                promo_code_create(affiliate=affiliate, brand=brands[brand_index], code=code)

    _seed_clicks(operator)

    listing = []
    for email, password, *_ in DEMO_AFFILIATES:
        affiliate = affiliates[email]
        affiliate.refresh_from_db(fields=["status"])
        listing.append(
            {
                "affiliate_id": affiliate.pk,
                "email": affiliate.email,
                "password": password,
                "status": affiliate.status,
                "links": [
                    {
                        "code": link.code,
                        "brand_id": str(link.brand_id),
                        "url": f"{DEMO_BASE_URL}/t/{link.code}",
                    }
                    for link in affiliate.links.order_by("code")
                ],
                "promo_codes": [
                    {"code": promo.code, "brand_id": str(promo.brand_id)}
                    for promo in affiliate.promo_codes.order_by("code")
                ],
            }
        )
    return {"affiliates": listing}


def _demo_clicks(operator) -> list[dict]:
    """The demo clicks, deterministic but for the anchor time: id, link, time, IP, agent."""
    links = list(
        TrackingLink.objects.filter(
            affiliate__operator=operator, affiliate__status=AffiliateStatus.APPROVED
        ).order_by("code")
    )
    rng = random.Random(20260315)
    anchor = _anchor()
    clicks = []
    for n in range(CLICKS):
        link = links[n % len(links)]
        ip = _demo_ip(rng.randrange(400))
        clicks.append(
            {
                "id": uuid.uuid5(CLICK_NAMESPACE, f"demo-click-{n}"),
                "n": n,
                "link": link,
                "at": anchor - timedelta(minutes=rng.randrange(DAYS * 24 * 60)),
                "ip": ip,
                "user_agent": BOTS[0] if n % 23 == 0 else BROWSERS[n % len(BROWSERS)],
                "subs": (SOURCES[n % len(SOURCES)], COUNTRIES[n % len(COUNTRIES)].lower()),
                "country": COUNTRIES[n % len(COUNTRIES)],
            }
        )
    return sorted(clicks, key=lambda c: c["at"])


def _seed_clicks(operator) -> None:
    planned = _demo_clicks(operator)
    existing = set(
        Click.objects.filter(id__in=[c["id"] for c in planned]).values_list("id", flat=True)
    )
    for click in planned:  # in time order, so each click's unique flag sees the earlier ones
        if click["id"] in existing:
            continue
        click_record(
            link=click["link"],
            ip_hash=ip_hmac(click["ip"]),
            user_agent=click["user_agent"],
            referrer="https://www.example.net/best-casinos",
            country=click["country"],
            subs=click["subs"],
            now=click["at"],
            click_id=click["id"],
        )


def seed_events(*, operator, brands, result) -> dict:
    """Registrations attributed by click_id, promo code, IP (last click) and organic, then
    first deposits, deposits and NGR updates, through events.services.events_ingest."""
    from events.models import ApiKey
    from events.services import events_ingest

    api_key = ApiKey.objects.filter(operator=operator).first()
    if api_key is None:
        return {}
    now = timezone.now()
    clicks = {c["id"]: c for c in _demo_clicks(operator)}
    stored = dict(Click.objects.filter(id__in=list(clicks)).values_list("id", "created_at"))
    humans = [c for c in clicks.values() if c["id"] in stored and "bot" not in c["user_agent"]]
    humans.sort(key=lambda c: c["n"])
    promos = list(PromoCode.objects.filter(operator=operator).order_by("code"))
    rng = random.Random(42)

    players = []  # (ref, brand_id, registration time, extra fields)

    def add(ref, brand_id, at, **fields):
        players.append((ref, brand_id, min(at, now - timedelta(minutes=5)), fields))

    for i, click in enumerate(humans[:45]):  # the landing page passed the click_id on
        at = stored[click["id"]] + timedelta(minutes=12)
        add(f"demo_player_c{i:03d}", click["link"].brand_id, at, click_id=str(click["id"]))
    for i, click in enumerate(humans[45:60]):  # no click_id, same IP: last click
        at = stored[click["id"]] + timedelta(hours=3)
        add(f"demo_player_i{i:03d}", click["link"].brand_id, at, ip_address=click["ip"])
    for i in range(15):
        promo = promos[i % len(promos)]
        at = now - timedelta(days=rng.randrange(1, DAYS), minutes=rng.randrange(1440))
        add(f"demo_player_p{i:03d}", promo.brand_id, at, promo_code=promo.code.lower())
    for i in range(20):
        at = now - timedelta(days=rng.randrange(1, DAYS), minutes=rng.randrange(1440))
        brand = brands[i % len(brands)]
        add(f"demo_player_o{i:03d}", brand.id, at, ip_address=f"198.51.100.{i + 1}")

    registrations, activity, early = [], [], []
    for index, (ref, brand_id, at, fields) in enumerate(players):
        base = {"brand_id": str(brand_id), "player_external_ref": ref}
        registrations.append(
            {
                **base,
                "event_type": "registration",
                "event_time": _iso(at),
                "idempotency_key": f"demo_reg_{ref}",
                "country": COUNTRIES[index % len(COUNTRIES)],
                **fields,
            }
        )
        if index % 5 == 4:
            continue  # registered, never deposited
        ftd_at = min(at + timedelta(hours=1 + index % 20), now - timedelta(minutes=1))
        ftd = {
            **base,
            "event_type": "first_deposit",
            "event_time": _iso(ftd_at),
            "idempotency_key": f"demo_ftd_{ref}",
            "currency": "EUR",
            "amount": str(Decimal(20 + (index * 37) % 280)),
        }
        # A few operators' queues deliver the deposit before the registration.
        (early if index % 17 == 3 else activity).append(ftd)
        for d in range(index % 3):
            dep_at = min(ftd_at + timedelta(days=d + 1), now - timedelta(minutes=1))
            activity.append(
                {
                    **base,
                    "event_type": "deposit",
                    "event_time": _iso(dep_at),
                    "idempotency_key": f"demo_dep_{ref}_{d}",
                    "currency": "EUR",
                    "amount": str(Decimal(10 + (index * 13 + d * 7) % 190)),
                }
            )
        ngr = Decimal((index * 53) % 400 - 80) + Decimal("0.50")
        ngr_at = min(ftd_at + timedelta(days=2), now - timedelta(minutes=1))
        activity.append(
            {
                **base,
                "event_type": "ngr_update",
                "event_time": _iso(ngr_at),
                "idempotency_key": f"demo_ngr_{ref}_{ngr_at:%Y%m}",
                "currency": "EUR",
                "amount": str(ngr),
            }
        )

    outcomes = []
    for batch in (early, registrations, activity):
        for start in range(0, len(batch), 100):
            outcomes += events_ingest(api_key=api_key, raw_events=batch[start : start + 100])
    errors = [o.as_dict() for o in outcomes if o.status == "error"]
    if errors:
        raise RuntimeError(f"demo events refused: {errors[:3]}")
    return {}


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")
