"""Period close benchmark (issue 4, "Performance").

    .venv/bin/python bench/close.py [--scales 0.1,1]

For each scale (1 = 1,000 affiliates, 100,000 players, 1,000,000 events):

1. drops and re-creates its own PostgreSQL database `revvvs_bench_close` and migrates it;
2. creates an operator, two brands, four plans (CPA with a sub-affiliate rate; RevShare
   with NGR tiers, tiered; hybrid with NGR tiers, ladder, CPA offset on, carryover off;
   hybrid with CPA-count tiers), the affiliates (one plan each, in turn; minimum payouts
   0 / 100 / 1,000; the last 10 % referred by the first 10 %);
3. generates with set-based SQL (`INSERT … SELECT … FROM generate_series`) the players
   (registered in October 2026) and their events, ten per player (registration, first
   deposit, four deposits, four NGR updates), and the ledger those events would have booked:
   a CPA for every fifth player on a plan with CPA, one RevShare entry per NGR update (each
   books the difference of the month-to-date total; ~10 % of players end negative), the
   NGR state per player-month, plus a few manual adjustments;
4. closes October 2026 with `period_close` in a fresh subprocess, so that its peak RSS
   (`ru_maxrss`) is the close's own, and prints the wall time, the peak RSS and the RSS the
   same process had before the close (Django loaded, connected); then checks that the
   statements add up to the ledger.

Target: the close under 60 s at scale 1, with a flat memory profile (the peak RSS does not
grow with the scale). Figures: docs/performance.md, "Period close".
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from datetime import date
from decimal import Decimal

from _common import database_reset, django_setup, machine_info, migrate, print_machine, server_env

DATABASE = "revvvs_bench_close"
MONTH = date(2026, 10, 1)
AFFILIATES, PLAYERS, EVENTS_PER_PLAYER = 1_000, 100_000, 10
TARGET_SECONDS = 60
# A player's NGR for the month, -40 to 359, spread by a hash of the player's ref.
NGR = "(abs(hashtext(p.external_ref || 'ngr')) %% 400 - 40)"


def _defaults_for(model, given: set[str]) -> tuple[list[str], list[str], list]:
    """Columns, SQL placeholders and values for the model's NOT NULL columns that the
    generator does not set itself (Django defaults live in Python, not in the table)."""
    from django.db.models import JSONField
    from psycopg.types.json import Jsonb

    columns, placeholders, values = [], [], []
    for field in model._meta.concrete_fields:
        if field.column in given or field.primary_key or field.null:
            continue
        columns.append(field.column)
        if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
            placeholders.append("now()")
            continue
        value = field.get_default()
        placeholders.append("%s")
        values.append(Jsonb(value) if isinstance(field, JSONField) else value)
    return columns, placeholders, values


def insert_select(cursor, model, columns: dict[str, str], tail: str, params=()) -> int:
    """INSERT INTO model's table (columns…) SELECT expressions… <tail>; returns the row count."""
    extra_columns, extra_sql, extra_values = _defaults_for(model, set(columns))
    # The defaults come first, so that their values precede the caller's parameters.
    names = ", ".join([*extra_columns, *columns])
    exprs = ", ".join([*extra_sql, *columns.values()])
    cursor.execute(
        f"INSERT INTO {model._meta.db_table} ({names}) SELECT {exprs} {tail}",
        [*extra_values, *params],
    )
    return cursor.rowcount


def generate(scale: float) -> dict:
    from django.db import connection, transaction

    from attribution.models import Affiliate, Player
    from commissions.models import (
        CommissionPlan,
        LedgerEntry,
        PlanAssignment,
        PlanTier,
        PlayerMonthNgr,
    )
    from events.models import Event
    from revvvs.models import Brand, Operator, User

    affiliates = max(20, int(AFFILIATES * scale))
    players = max(200, int(PLAYERS * scale))
    started = time.perf_counter()
    with transaction.atomic():
        operator = Operator.objects.create(name="Bench close")
        brands = [Brand.objects.create(operator=operator, name=f"Brand {n}") for n in (1, 2)]
        plans = [
            CommissionPlan.objects.create(
                operator=operator,
                name="CPA 50",
                cpa_amount=Decimal("50"),
                sub_affiliate_rate=Decimal("0.05"),
            ),
            CommissionPlan.objects.create(
                operator=operator, name="RevShare tiered", revshare_rate=Decimal("0.25")
            ),
            CommissionPlan.objects.create(
                operator=operator,
                name="Hybrid ladder",
                cpa_amount=Decimal("30"),
                revshare_rate=Decimal("0.20"),
                tier_mode="ladder",
                revshare_offsets_cpa=True,
                negative_carryover=False,
            ),
            CommissionPlan.objects.create(
                operator=operator,
                name="Hybrid CPA-count tiers",
                cpa_amount=Decimal("25"),
                revshare_rate=Decimal("0.25"),
                tier_basis="cpa_count",
            ),
        ]
        for plan, tiers in zip(
            plans[1:],
            [
                [("1000", "0.30"), ("5000", "0.35")],
                [("500", "0.25"), ("2000", "0.30")],
                [("5", "0.30"), ("20", "0.35")],
            ],
            strict=True,
        ):
            for threshold, rate in tiers:
                PlanTier.objects.create(plan=plan, threshold=Decimal(threshold), rate=Decimal(rate))
        users = User.objects.bulk_create(
            [
                User(username=f"bench_affiliate_{n}", email=f"a{n}@bench.example", password="!")
                for n in range(affiliates)
            ]
        )
        minimums = [Decimal("0")] * 7 + [Decimal("100")] * 2 + [Decimal("1000")]
        rows = Affiliate.objects.bulk_create(
            [
                Affiliate(
                    operator=operator,
                    user=user,
                    email=user.email,
                    status="approved",
                    minimum_payout=minimums[n % 10],
                )
                for n, user in enumerate(users)
            ]
        )
        referred = rows[-affiliates // 10 :]
        for n, affiliate in enumerate(referred):
            affiliate.referrer = rows[n]
        Affiliate.objects.bulk_update(referred, ["referrer"])
        PlanAssignment.objects.bulk_create(
            [
                PlanAssignment(affiliate=a, plan=plans[n % 4], valid_from=date(2026, 1, 1))
                for n, a in enumerate(rows)
            ]
        )
        first_affiliate = rows[0].pk
        month = MONTH.isoformat()
        with connection.cursor() as cursor:
            # Players: p<g>, affiliate g mod A, registered on day g mod 28 of the month.
            insert_select(
                cursor,
                Player,
                {
                    "brand_id": "CASE WHEN g %% 2 = 0 THEN %s::uuid ELSE %s::uuid END",
                    "external_ref": "'p' || g",
                    "registered_at": "%s::timestamptz + (g %% 28) * interval '1 day'",
                    "attribution_method": "'promo_code'",
                    "attributed_at": "%s::timestamptz + (g %% 28) * interval '1 day'",
                    "affiliate_id": "%s + (g %% %s)",
                },
                "FROM generate_series(0, %s) AS g",
                [
                    str(brands[0].pk),
                    str(brands[1].pk),
                    month,
                    month,
                    first_affiliate,
                    affiliates,
                    players - 1,
                ],
            )
            cursor.execute("ANALYZE attribution_player")
            # Ten events per player, an hour apart from the registration.
            insert_select(
                cursor,
                Event,
                {
                    "id": "gen_random_uuid()",
                    "operator_id": "%s",
                    "brand_id": "p.brand_id",
                    "player_id": "p.id",
                    "event_type": "(ARRAY['registration','first_deposit','deposit','deposit',"
                    "'deposit','deposit','ngr_update','ngr_update','ngr_update','ngr_update'])"
                    "[k + 1]",
                    "event_time": "p.registered_at + k * interval '1 hour'",
                    "received_at": "p.registered_at + k * interval '1 hour'",
                    "idempotency_key": "'e' || p.id || '_' || k",
                    "payload": "'{}'::jsonb",
                    "payload_hash": "md5(p.id || '_' || k)",
                    "currency": "CASE WHEN k = 0 THEN '' ELSE 'EUR' END",
                    "amount": "CASE WHEN k = 0 THEN NULL WHEN k < 6 THEN 20 + (p.id %% 80) "
                    "ELSE " + NGR + " * (k - 5) / 4.0 END",
                },
                "FROM attribution_player p CROSS JOIN generate_series(0, %s) AS k "
                "WHERE p.brand_id IN (%s::uuid, %s::uuid)",
                [operator.pk, EVENTS_PER_PLAYER - 1, str(brands[0].pk), str(brands[1].pk)],
            )
            cursor.execute("ANALYZE events_event")
            plan_of = (
                "FROM attribution_player p "
                "JOIN commissions_planassignment a ON a.affiliate_id = p.affiliate_id "
                "JOIN commissions_commissionplan pl ON pl.id = a.plan_id "
            )
            # A CPA for every fifth player on a plan with CPA, booked by the first deposit.
            insert_select(
                cursor,
                LedgerEntry,
                {
                    "operator_id": "%s",
                    "affiliate_id": "p.affiliate_id",
                    "kind": "'cpa'",
                    "amount": "pl.cpa_amount",
                    "currency": "'EUR'",
                    "period": "%s::date",
                    "activity_date": "e.event_time::date",
                    "player_id": "p.id",
                    "brand_id": "p.brand_id",
                    "source_event_id": "e.id",
                    "plan_id": "pl.id",
                },
                plan_of + "JOIN events_event e ON e.player_id = p.id "
                "AND e.event_type = 'first_deposit' "
                "WHERE pl.cpa_amount IS NOT NULL AND abs(hashtext(p.external_ref)) %% 5 = 0 "
                "AND pl.operator_id = %s",
                [operator.pk, month, operator.pk],
            )
            # One RevShare entry per NGR update: rate × (this total − the previous one).
            insert_select(
                cursor,
                LedgerEntry,
                {
                    "operator_id": "%s",
                    "affiliate_id": "p.affiliate_id",
                    "kind": "'revshare'",
                    "amount": "round(pl.revshare_rate * " + NGR + " / 4.0, 4)",
                    "currency": "'EUR'",
                    "period": "%s::date",
                    "activity_date": "e.event_time::date",
                    "player_id": "p.id",
                    "brand_id": "p.brand_id",
                    "source_event_id": "e.id",
                    "plan_id": "pl.id",
                },
                plan_of + "JOIN events_event e ON e.player_id = p.id "
                "AND e.event_type = 'ngr_update' "
                "WHERE pl.revshare_rate IS NOT NULL AND pl.operator_id = %s",
                [operator.pk, month, operator.pk],
            )
            # The NGR state of each player-month: the latest update and what it booked.
            insert_select(
                cursor,
                PlayerMonthNgr,
                {
                    "player_id": "p.id",
                    "month": "%s::date",
                    "latest_event_id": "e.id",
                    "latest_event_time": "e.event_time",
                    "latest_idempotency_key": "e.idempotency_key",
                    "ngr_total": "e.amount",
                    "currency": "'EUR'",
                    "ngr_total_plan": "e.amount",
                    "revshare_booked": "4 * round(pl.revshare_rate * e.amount / 4.0, 4)",
                    "revshare_currency": "'EUR'",
                },
                plan_of + "JOIN events_event e ON e.player_id = p.id "
                "AND e.event_type = 'ngr_update' AND e.idempotency_key = 'e' || p.id || '_9' "
                "WHERE pl.revshare_rate IS NOT NULL AND pl.operator_id = %s",
                [month, operator.pk],
            )
            # A manual adjustment for every tenth affiliate.
            insert_select(
                cursor,
                LedgerEntry,
                {
                    "operator_id": "%s",
                    "affiliate_id": "a.id",
                    "kind": "'manual_adjustment'",
                    "amount": "CASE WHEN a.id %% 20 = 0 THEN -25 ELSE 40 END",
                    "currency": "'EUR'",
                    "period": "%s::date",
                    "activity_date": "%s::date + 20",
                    "memo": "'bench adjustment'",
                },
                "FROM attribution_affiliate a WHERE a.operator_id = %s AND a.id %% 10 = 0",
                [operator.pk, month, month, operator.pk],
            )
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
        counts = {}
        for name, table in [
            ("affiliates", "attribution_affiliate"),
            ("players", "attribution_player"),
            ("events", "events_event"),
            ("ledger_entries", "commissions_ledgerentry"),
            ("ngr_rows", "commissions_playermonthngr"),
        ]:
            cursor.execute(f"SELECT count(*) FROM {table}")
            counts[name] = cursor.fetchone()[0]
    counts["operator_id"] = operator.pk
    counts["generate_s"] = round(time.perf_counter() - started, 1)
    return counts


def close_only(operator_id: int) -> None:
    """Run in the subprocess: the close alone, with this process's peak RSS."""
    from django.db import connection

    from commissions.services.periods import period_close
    from revvvs.models import Operator

    operator = Operator.objects.get(pk=operator_id)
    connection.ensure_connection()
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    result = period_close(operator=operator, month=MONTH)
    wall = time.perf_counter() - started
    rss_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        "BENCH_JSON "
        + json.dumps(
            {
                "wall_s": round(wall, 2),
                "rss_before_mib": round(rss_before / 1024, 1),
                "rss_peak_mib": round(rss_peak / 1024, 1),
                "statements": result.statements.count(),
                "tier_adjustments": result.tier_adjustments,
                "sub_affiliate_entries": result.sub_affiliate_entries,
            }
        )
    )


def check_totals() -> str:
    """The statements add up to the ledger entries of the month."""
    from django.db.models import Sum

    from commissions.models import LedgerEntry, LedgerKind, Statement

    kinds = [kind.value for kind in LedgerKind]
    ledger = LedgerEntry.objects.filter(period=MONTH).aggregate(total=Sum("amount"))["total"]
    sums = Statement.objects.filter(period__month=MONTH).aggregate(*(Sum(kind) for kind in kinds))
    statements = sum(sums.values(), Decimal("0"))
    status = "ok" if ledger == statements else "MISMATCH"
    return f"ledger {ledger} = statements {statements}: {status}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scales", default="0.1,1", help="comma-separated, 1 = full size")
    parser.add_argument("--close-only", type=int, metavar="OPERATOR_ID", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.close_only:
        django_setup(server_env(os.environ["DATABASE_URL"]))
        close_only(args.close_only)
        return

    print_machine(machine_info())
    print("note: a shared machine; other processes' load makes the figures noisy")
    url = database_reset(DATABASE)
    env = server_env(url)
    django_setup(env)
    from django.db import connection

    for scale in (float(s) for s in args.scales.split(",")):
        connection.close()
        database_reset(DATABASE)
        migrate()
        counts = generate(scale)
        print(
            f"scale {scale}: {counts['affiliates']} affiliates, {counts['players']} players, "
            f"{counts['events']} events, {counts['ledger_entries']} ledger entries, "
            f"{counts['ngr_rows']} NGR rows (generated in {counts['generate_s']} s)"
        )
        connection.close()
        started = time.perf_counter()
        child = subprocess.run(
            [sys.executable, __file__, "--close-only", str(counts["operator_id"])],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if child.returncode != 0:
            sys.exit(f"the close failed:\n{child.stderr}")
        line = next(x for x in child.stdout.splitlines() if x.startswith("BENCH_JSON "))
        figures = json.loads(line.removeprefix("BENCH_JSON "))
        verdict = "meets" if figures["wall_s"] < TARGET_SECONDS else "MISSES"
        print(
            f"  close: {figures['wall_s']} s ({verdict} the {TARGET_SECONDS} s target; "
            f"subprocess total {time.perf_counter() - started:.1f} s), peak RSS "
            f"{figures['rss_peak_mib']} MiB (before the close {figures['rss_before_mib']} MiB); "
            f"{figures['statements']} statements, {figures['tier_adjustments']} tier "
            f"adjustments, {figures['sub_affiliate_entries']} sub-affiliate entries"
        )
        print(f"  check: {check_totals()}")
    print(f"database left for inspection: {url}")


if __name__ == "__main__":
    main()
