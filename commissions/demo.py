"""Demo data of the commission side (called by revvvs.demo after attribution's): four plans
(CPA, tiered RevShare, hybrid, a referrer's deal with a sub-affiliate rate), assignments
from three months ago, ECB-style FX rates, and events sent through the real Event API
pipeline so that every ledger kind has rows: CPA, a clawback, RevShare (also negative and
converted from USD), a pending-FX event in NOK (no NOK rate), a manual adjustment and a
reattribution. Fixed names and `demo_c_` idempotency keys: a second run changes nothing."""

from datetime import date, datetime, timedelta
from decimal import Decimal

from django.utils import timezone

from attribution.models import Affiliate, AffiliateStatus, Player

from .models import CommissionPlan, LedgerEntry, LedgerKind, PlanAssignment, PlanTier
from .services.booking import ledger_adjust, month_start, plan_assign
from .services.fx import fx_rates_import

ACE = "ace.media@affiliates.example.com"
GURU = "betguru@affiliates.example.com"
REVIEWS = "casino.reviews@affiliates.example.com"

# name -> (plan fields, tiers)
DEMO_PLANS = {
    "Demo CPA €50": (
        dict(
            cpa_amount=Decimal("50.00"),
            min_first_deposit=Decimal("20.00"),
            min_total_deposits=Decimal("40.00"),
            cpa_countries="GB, IE, DE, SE, FI",
        ),
        [],
    ),
    "Demo RevShare 25% tiered": (
        dict(
            revshare_rate=Decimal("0.25"),
            admin_fee_percent=Decimal("10.00"),
            tier_basis="ngr",
            tier_mode="tiered",
        ),
        [(Decimal("1000"), Decimal("0.30")), (Decimal("5000"), Decimal("0.35"))],
    ),
    "Demo Hybrid €25 + 20%": (
        dict(
            cpa_amount=Decimal("25.00"),
            min_first_deposit=Decimal("10.00"),
            revshare_rate=Decimal("0.20"),
        ),
        [],
    ),
    "Demo Referrer 30% + 5% sub": (
        dict(revshare_rate=Decimal("0.30"), sub_affiliate_rate=Decimal("0.05")),
        [],
    ),
}
# affiliate email -> [(plan name, brand index or None)]
DEMO_ASSIGNMENTS = {
    ACE: [("Demo Referrer 30% + 5% sub", None)],
    GURU: [("Demo Hybrid €25 + 20%", None), ("Demo RevShare 25% tiered", 1)],
    REVIEWS: [("Demo CPA €50", None)],
}
# Rates of the demo window; NOK is left out on purpose, so a NOK event waits as pending FX.
FX_BASE = {"USD": Decimal("1.0800"), "GBP": Decimal("0.8500"), "SEK": Decimal("11.4000")}
ADJUSTMENT_MEMO = "Demo: welcome bonus for joining the programme"
REASSIGN_REASON = "Demo: the player's first click was on Bet Guru's match tips"


def _months_ago(today: date, months: int) -> date:
    month = month_start(today)
    for _ in range(months):
        month = month_start(month - timedelta(days=1))
    return month


def _affiliates(operator, result) -> dict[str, Affiliate]:
    ids = [a["affiliate_id"] for a in result.get("affiliates", [])]
    rows = Affiliate.objects.filter(operator=operator)
    if ids:
        rows = rows.filter(pk__in=ids)
    return {a.email: a for a in rows}


def _fx_csv(first: date, last: date) -> str:
    """An eurofxref-hist.csv of the window: a small daily drift, weekends left out."""
    currencies = list(FX_BASE)
    lines = ["Date," + ",".join(currencies) + ",NOK,"]
    day = last
    while day >= first:
        if day.weekday() < 5:
            drift = Decimal(day.toordinal() % 17 - 8) / Decimal(1000)
            cells = [
                str((FX_BASE[c] * (1 + drift)).quantize(Decimal("0.0001"))) for c in currencies
            ]
            lines.append(f"{day.isoformat()},{','.join(cells)},N/A,")
        day -= timedelta(days=1)
    return "\n".join(lines) + "\n"


def seed_demo(*, operator, brands, result) -> dict:
    today = timezone.now().date()
    start = _months_ago(today, 3)
    fx_rates_import(text=_fx_csv(start - timedelta(days=7), today), source="demo")

    plans = {}
    for name, (fields, tiers) in DEMO_PLANS.items():
        plan, created = CommissionPlan.objects.get_or_create(
            operator=operator, name=name, defaults={"currency": "EUR", **fields}
        )
        if created:
            PlanTier.objects.bulk_create(
                [PlanTier(plan=plan, threshold=t, rate=r) for t, r in tiers]
            )
        plans[name] = plan

    affiliates = _affiliates(operator, result)
    for email, assignments in DEMO_ASSIGNMENTS.items():
        affiliate = affiliates.get(email)
        if affiliate is None:
            continue
        for plan_name, brand_index in assignments:
            brand = brands[brand_index] if brand_index is not None else None
            if not PlanAssignment.objects.filter(
                affiliate=affiliate, plan=plans[plan_name], brand=brand
            ).exists():
                plan_assign(
                    affiliate=affiliate, plan=plans[plan_name], brand=brand, valid_from=start
                )
    if REVIEWS in affiliates and ACE in affiliates and affiliates[REVIEWS].referrer_id is None:
        from attribution.services import affiliate_update

        affiliate_update(affiliate=affiliates[REVIEWS], referrer=affiliates[ACE])

    # Read back, so the JSON shows the stored values (4 places), the same on every run.
    plans = {
        p.name: p for p in CommissionPlan.objects.filter(pk__in=[p.pk for p in plans.values()])
    }
    listing = [_plan_json(plans[name]) for name in DEMO_PLANS]
    by_id = {a.pk: a for a in affiliates.values()}
    for entry in result.get("affiliates", []):
        affiliate = by_id.get(entry.get("affiliate_id"))
        if affiliate is None:
            continue
        entry["plans"] = [
            {
                **_plan_json(assignment.plan),
                "brand_id": str(assignment.brand_id) if assignment.brand_id else None,
                "valid_from": assignment.valid_from.isoformat(),
                "valid_to": assignment.valid_to.isoformat() if assignment.valid_to else None,
            }
            for assignment in affiliate.plan_assignments.select_related("plan").order_by("pk")
        ]
    return {"plans": listing}


def _plan_json(plan: CommissionPlan) -> dict:
    def money(value):
        return None if value is None else str(value)

    return {
        "plan_id": plan.pk,
        "name": plan.name,
        "currency": plan.currency,
        "cpa_amount": money(plan.cpa_amount),
        "min_first_deposit": money(plan.min_first_deposit),
        "min_total_deposits": money(plan.min_total_deposits),
        "qualification_days": plan.qualification_days,
        "cpa_countries": plan.cpa_countries,
        "clawback_days": plan.clawback_days,
        "revshare_rate": money(plan.revshare_rate),
        "admin_fee_percent": money(plan.admin_fee_percent),
        "tier_basis": plan.tier_basis,
        "tier_mode": plan.tier_mode,
        "tiers": [{"threshold": str(t.threshold), "rate": str(t.rate)} for t in plan.tiers.all()],
        "negative_carryover": plan.negative_carryover,
        "revshare_offsets_cpa": plan.revshare_offsets_cpa,
        "sub_affiliate_rate": str(plan.sub_affiliate_rate),
    }


def _demo_events(brands, now: datetime) -> list[dict]:
    """The demo's commission events: registrations by promo code, deposits, NGR updates,
    a chargeback and a NOK update, over the previous and the current month."""
    latest = now - timedelta(hours=1)
    previous = datetime.combine(_months_ago(now.date(), 1), datetime.min.time(), now.tzinfo)
    current = datetime.combine(month_start(now.date()), datetime.min.time(), now.tzinfo)

    def at(month: datetime, day: int, hour: int) -> str:
        moment = min(month + timedelta(days=day, hours=hour), latest)
        return moment.isoformat().replace("+00:00", "Z")

    events = []

    def add(kind, ref, brand, when, **fields):
        events.append(
            {
                "event_type": kind,
                "event_time": when,
                "brand_id": str(brands[brand].id),
                "player_external_ref": ref,
                "idempotency_key": f"demo_c_{kind}_{ref}_{len(events):03d}",
                **fields,
            }
        )

    # Casino Reviews: CPA players on Lucky Star; the last one charges back and is clawed back.
    for n in range(4):
        ref = f"demo_cpa_{n}"
        add("registration", ref, 0, at(previous, 1 + n, 9), promo_code="REVIEWS", country="GB")
        add("first_deposit", ref, 0, at(previous, 1 + n, 10), currency="EUR", amount="30.00")
        add("deposit", ref, 0, at(previous, 3 + n, 12), currency="EUR", amount="25.00")
    add("chargeback", "demo_cpa_3", 0, at(current, 0, 8), currency="EUR", amount="30.00")
    # Ace Media (RevShare 30 %): positive and negative months, one update in USD.
    for n in range(3):
        ref = f"demo_rs_{n}"
        add("registration", ref, 0, at(previous, 2 + n, 9), promo_code="ACE50", country="DE")
        add("first_deposit", ref, 0, at(previous, 2 + n, 10), currency="EUR", amount="100.00")
        add("ngr_update", ref, 0, at(previous, 14, 23), currency="EUR", amount=f"{250 * (n + 1)}")
        add("ngr_update", ref, 0, at(previous, 27, 23), currency="EUR", amount=f"{400 * (n + 1)}")
        amount = "-180.00" if n == 1 else f"{120 * (n + 1)}.50"
        add("ngr_update", ref, 0, at(current, 0, 23), currency="USD", amount=amount)
    add("ngr_update", "demo_rs_2", 0, at(current, 1, 6), currency="NOK", amount="5400.00")
    # Bet Guru: tiered RevShare on Goal Rush (its hybrid deal covers the other brand).
    for n in range(3):
        ref = f"demo_guru_{n}"
        add("registration", ref, 1, at(previous, 4 + n, 9), promo_code="GURU10", country="SE")
        add("first_deposit", ref, 1, at(previous, 4 + n, 11), currency="SEK", amount="500.00")
        add("ngr_update", ref, 1, at(previous, 27, 23), currency="SEK", amount=f"{3000 + 900 * n}")
        add("ngr_update", ref, 1, at(current, 0, 22), currency="EUR", amount=f"{-40 + 90 * n}")
    return sorted(events, key=lambda e: e["event_time"])


def seed_events(*, operator, brands, result) -> dict:
    from events.models import ApiKey
    from events.services import events_ingest

    api_key = ApiKey.objects.filter(operator=operator, revoked_at__isnull=True).first()
    if api_key is None:
        return {}
    bodies = _demo_events(brands, timezone.now())
    for start in range(0, len(bodies), 100):
        events_ingest(api_key=api_key, raw_events=bodies[start : start + 100])

    affiliates = _affiliates(operator, result)
    guru, ace = affiliates.get(GURU), affiliates.get(ACE)
    if guru is not None and guru.status == AffiliateStatus.APPROVED:
        if not LedgerEntry.objects.filter(
            affiliate=guru, kind=LedgerKind.MANUAL_ADJUSTMENT, memo=ADJUSTMENT_MEMO
        ).exists():
            ledger_adjust(
                affiliate=guru,
                amount=Decimal("75.00"),
                currency=guru.payout_currency,
                memo=ADJUSTMENT_MEMO,
                author=_author(operator),
            )
        # Move one of Ace Media's players to Bet Guru: a reattribution, once.
        player = Player.objects.filter(brand=brands[0], external_ref="demo_rs_0").first()
        if player is not None and ace is not None and player.affiliate_id == ace.pk:
            try:
                from attribution.services import player_reassign
            except ImportError:  # no reassignment service: no reattribution in the demo
                player_reassign = None
            if player_reassign is not None:
                player_reassign(
                    player=player,
                    to_affiliate=guru,
                    reason=REASSIGN_REASON,
                    author=_author(operator),
                )

    closed = _close_past_months(operator)
    counts = {
        kind: LedgerEntry.objects.filter(operator=operator, kind=kind).count()
        for kind in LedgerKind.values
    }
    return {
        "commission_events": len(bodies),
        "ledger_entries": counts,
        "closed_periods": closed,
    }


def _close_past_months(operator) -> list[str]:
    """Close every ended month with entries, oldest first, so that statements, tier
    adjustments and sub-affiliate earnings have data (closing again changes nothing)."""
    from django.db.models import Min

    from .services.periods import period_close

    first = LedgerEntry.objects.filter(operator=operator).aggregate(first=Min("period"))["first"]
    if first is None:
        return []
    this_month = timezone.now().date().replace(day=1)
    closed, month = [], first
    while month < this_month:
        period_close(operator=operator, month=month)
        closed.append(f"{month:%Y-%m}")
        month = (month + timedelta(days=32)).replace(day=1)
    return closed


def _author(operator):
    from revvvs.models import User

    return (
        User.objects.filter(operator=operator, is_staff=True).order_by("pk").first()
        or User.objects.filter(is_superuser=True).order_by("pk").first()
    )
