"""Event API ingestion benchmark (issue 2, "Performance").

    .venv/bin/python bench/ingest.py [--duration 20] [--connections 16]

What it does, self-contained and deterministic in its set-up:

1. drops and re-creates its own PostgreSQL database `revvvs_bench_ingest`, migrates it,
   creates an operator with two brands and an API key (revvvs.services.operator_create),
   and, when the attribution/commission models are there, 20 approved affiliates with a
   promo code each and a hybrid CPA + RevShare plan, so registrations get attributed and
   deposits / NGR updates are booked;
2. serves the project with gunicorn (2 workers, DEBUG off, no rate limit) on port 8114;
3. drives POST /api/v1/events with wrk and bench/ingest.lua at 16 connections, a
   realistic mix (registrations 25 %, first deposits 20 %, deposits 30 %, NGR updates
   20 %, chargebacks 5 %) over per-thread player pools, unique idempotency keys:
   (a) batch mode, 100 events per request; (b) single mode, one event per request;
   prints events/s and p50/p99 latency of each;
4. checks the database against what wrk saw: every event answered `accepted` is stored
   exactly once, and a request whose answer never arrived (in flight when wrk stopped)
   is stored all or nothing;
5. measures the raw PostgreSQL ceiling: 100-row `INSERT ... ON CONFLICT DO NOTHING`
   into events_event itself (same columns, indexes, constraints and foreign keys; a JSON
   payload of the same size) from 16 processes for the same duration, and prints
   rows/s and the ratio batch API / raw.

gunicorn is stopped at the end, also on error or Ctrl-C. Figures: docs/performance.md.
"""

import argparse
import json
import multiprocessing
import os
import secrets
import signal
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from _common import (
    BENCH_DIR,
    CpuMeter,
    database_reset,
    django_setup,
    fmt_ms,
    gunicorn,
    machine_info,
    migrate,
    print_machine,
    server_env,
    wrk_path,
    wrk_run,
)

DATABASE = "revvvs_bench_ingest"
PORT = 8114
BATCH_SIZE = 100
PROMO_CODES = [f"BENCH{n:02d}" for n in range(1, 21)]
HISTORY_PLAYERS = 10_000
HISTORY_EVENTS_PER_PLAYER = 10
TARGET_BATCH = 5000  # events/s
TARGET_SINGLE = 1000  # events/s
TARGET_SINGLE_P99_MS = 50
# The events_event columns the raw-PostgreSQL ceiling fills itself; any other column the
# model grows gets its default, so the measurement keeps working.
RAW_COLUMNS = (
    "id",
    "operator_id",
    "brand_id",
    "player_id",
    "api_key_id",
    "event_type",
    "event_time",
    "received_at",
    "idempotency_key",
    "payload",
    "payload_hash",
    "currency",
    "amount",
    "warnings",
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=int, default=20, help="seconds per measurement")
    parser.add_argument("--connections", type=int, default=16, help="concurrent clients")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument(
        "--worker-class",
        choices=("sync", "gthread"),
        default="sync",
        help="gunicorn worker class (sync measured faster here; see docs/performance.md)",
    )
    parser.add_argument("--threads", type=int, default=4, help="threads per gthread worker")
    parser.add_argument("--warmup", type=int, default=3, help="warm-up seconds before each mode")
    parser.add_argument(
        "--modes",
        default="batch,single,raw,raw-single",
        help="comma-separated, run in this order: batch, single, raw (the PostgreSQL ceiling "
        "of 100-row inserts), raw-single (the same with one row per transaction, the "
        "ceiling of single events)",
    )
    parser.add_argument(
        "--history-players",
        type=int,
        default=HISTORY_PLAYERS,
        help=f"players of history stored before measuring, {HISTORY_EVENTS_PER_PLAYER} events "
        "each (0: start from empty tables)",
    )
    parser.add_argument(
        "--attribution",
        choices=("on", "off"),
        default="on",
        help="off: registrations carry no ip_address nor promo_code (organic), so the "
        "attribution rules find nothing to look up; the A/B of attribution's cost",
    )
    parser.add_argument(
        "--plans",
        choices=("on", "off"),
        default="on",
        help="off: no commission plan is assigned, so players are attributed but nothing "
        "books; with --attribution on/off, the A/B of attribution's and booking's costs",
    )
    parser.add_argument("--port", type=int, default=PORT)
    parser.add_argument("--json-out", type=Path, help="also write the results as JSON here")
    args = parser.parse_args()
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if unknown := set(modes) - {"batch", "single", "raw", "raw-single"}:
        parser.error(f"unknown modes: {', '.join(sorted(unknown))}")
    # A plain `kill` ends the run through the same clean-up as Ctrl-C: gunicorn is stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    info = machine_info()
    print_machine(info)
    wrk_path()  # fail (or install) before the long set-up

    print(f"setting up database {DATABASE} ...", flush=True)
    database_url = database_reset(DATABASE)
    env = server_env(database_url)
    django_setup(env)
    migrate()
    fixture = fixture_create(plans=args.plans == "on")
    print(
        f"operator {fixture['operator_id']}, brands {', '.join(fixture['brand_ids'])}, "
        f"{len(fixture['promo_codes'])} promo codes; {fixture['notes']}",
        flush=True,
    )
    fixture["history"] = history_create(fixture=fixture, players=args.history_players)
    print(f"history: {fixture['history']}", flush=True)
    from django.db import connections

    connections.close_all()

    results = {"machine": info, "args": vars(args) | {"json_out": str(args.json_out)}}
    api_modes = [m for m in modes if m in ("batch", "single")]
    if api_modes:
        server = {
            "workers": args.workers,
            "worker_class": args.worker_class,
            "threads": args.threads if args.worker_class == "gthread" else 1,
        }
        results["server"] = server
        log_path = Path("/tmp") / f"bench-ingest-gunicorn-{args.port}.log"
        print(f"gunicorn: {_server_text(server)}, 127.0.0.1:{args.port} (log {log_path})")
        with gunicorn(
            env=env,
            port=args.port,
            workers=server["workers"],
            worker_class=server["worker_class"],
            threads=server["threads"],
            log_path=log_path,
        ) as server_proc:
            meter = CpuMeter(server_pid=server_proc.pid, database_url=database_url)
            for mode in api_modes:
                results[mode] = api_measure(mode=mode, fixture=fixture, args=args, meter=meter)
    for mode, rows in (("raw", BATCH_SIZE), ("raw-single", 1)):
        if mode in modes:
            results[mode] = raw_measure(
                database_url=database_url,
                fixture=fixture,
                duration=args.duration,
                processes=args.connections,
                rows_per_statement=rows,
            )
    results["load_after"] = round(os.getloadavg()[0], 2)
    ok = report(results)
    if args.json_out:
        args.json_out.write_text(json.dumps(results, indent=2, default=str))
    return 0 if ok else 1


# --- Set-up ---------------------------------------------------------------------------


def fixture_create(*, plans: bool = True) -> dict:
    """The operator, brands and key; affiliates, promo codes and a plan when possible."""
    from revvvs.services import operator_create

    created = operator_create(name="Bench operator", brand_names=["Bench Casino", "Bench Sport"])
    fixture = {
        "operator_id": created.operator.pk,
        "brand_ids": [str(b.id) for b in created.brands],
        "api_key": created.api_key,
        "promo_codes": [],
        "notes": "",
    }
    notes = []
    # The attribution and commission models are filled in by other issues; each piece is
    # optional so that the benchmark runs at every stage of the project.
    try:
        from attribution.models import Affiliate, AffiliateStatus, PromoCode
        from revvvs.models import User

        affiliates = []
        for n, code in enumerate(PROMO_CODES, start=1):
            email = f"bench-affiliate-{n:02d}@example.com"
            user = User.objects.create(username=email, email=email)
            affiliate = Affiliate.objects.create(
                operator=created.operator,
                user=user,
                email=email,
                status=AffiliateStatus.APPROVED,
            )
            if hasattr(affiliate, "status_changed_at"):
                Affiliate.objects.filter(pk=affiliate.pk).update(status_changed_at=_now())
            PromoCode.objects.create(
                operator=created.operator,
                affiliate=affiliate,
                brand=created.brands[(n - 1) % len(created.brands)],
                code=code,
            )
            affiliates.append(affiliate)
        fixture["promo_codes"] = list(PROMO_CODES)
        notes.append(f"{len(affiliates)} approved affiliates")
    except Exception as exc:  # noqa: BLE001 - a missing piece only makes the mix simpler
        notes.append(f"no affiliates ({type(exc).__name__}: {exc})")
        affiliates = []
    if affiliates and not plans:
        notes.append("no commission plan (--plans off)")
    elif affiliates:
        try:
            from decimal import Decimal

            from commissions.models import CommissionPlan, PlanAssignment

            plan = CommissionPlan.objects.create(
                operator=created.operator,
                name="Bench hybrid",
                currency="EUR",
                cpa_amount=Decimal("100.00"),
                min_first_deposit=Decimal("20.00"),
                revshare_rate=Decimal("0.25"),
            )
            PlanAssignment.objects.bulk_create(
                PlanAssignment(
                    affiliate=a, plan=plan, valid_from=(_now() - timedelta(days=365)).date()
                )
                for a in affiliates
            )
            notes.append("hybrid CPA 100 EUR + 25 % RevShare plan assigned")
        except Exception as exc:  # noqa: BLE001
            notes.append(f"no commission plan ({type(exc).__name__}: {exc})")
    fixture["notes"] = "; ".join(notes)
    return fixture


def history_create(*, fixture: dict, players: int) -> str:
    """Store `players` registered players with HISTORY_EVENTS_PER_PLAYER events each, then
    ANALYZE: the API is measured against tables with a past and fresh planner statistics,
    as in production, not against empty tables whose statistics lag behind the load."""
    from django.db import connection

    from attribution.models import Player
    from events.models import ApiKey

    if players > 0:
        start = _now() - timedelta(days=60)
        brand_ids = fixture["brand_ids"]
        Player.objects.bulk_create(
            (
                Player(brand_id=brand_ids[n % len(brand_ids)], external_ref=f"hist-p{n}")
                for n in range(players)
            ),
            batch_size=2000,
        )
        Player.objects.filter(external_ref__startswith="hist-p").update(registered_at=start)
        api_key_id = ApiKey.objects.filter(operator_id=fixture["operator_id"]).values_list(
            "pk", flat=True
        )[0]
        try:
            with connection.cursor() as cursor:
                cursor.execute(
                    """
                    INSERT INTO events_event (id, operator_id, brand_id, player_id, api_key_id,
                        event_type, event_time, received_at, idempotency_key, payload,
                        payload_hash, currency, amount, warnings)
                    SELECT gen_random_uuid(), %(operator)s, p.brand_id, p.id, %(key)s, e.type,
                        p.registered_at + g * interval '1 hour',
                        p.registered_at + g * interval '1 hour', 'hist-' || p.id || '-' || g,
                        jsonb_build_object('event_type', e.type, 'player_external_ref',
                            p.external_ref, 'amount', e.amount::text),
                        md5(p.id || '-' || g) || md5(g || '-' || p.id),
                        CASE WHEN e.amount IS NULL THEN '' ELSE 'EUR' END, e.amount, '[]'
                    FROM attribution_player p
                    CROSS JOIN generate_series(1, %(per_player)s) AS g
                    CROSS JOIN LATERAL (SELECT
                        CASE WHEN g = 1 THEN 'registration' WHEN g = 2 THEN 'first_deposit'
                             WHEN g %% 3 = 0 THEN 'ngr_update' ELSE 'deposit' END AS type,
                        CASE WHEN g = 1 THEN NULL
                             ELSE ((p.id * 7 + g * 13) %% 500 + 10)::numeric END AS amount
                    ) AS e
                    WHERE p.external_ref LIKE 'hist-p%%'
                    """,
                    {
                        "operator": fixture["operator_id"],
                        "key": api_key_id,
                        "per_player": HISTORY_EVENTS_PER_PLAYER,
                    },
                )
                stored = cursor.rowcount
        except Exception as exc:  # noqa: BLE001 - the Event model changed: measure without
            return f"none ({type(exc).__name__}: {exc})"
    else:
        stored = 0
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return f"{players:,} players, {stored:,} events, then ANALYZE"


def _now() -> datetime:
    return datetime.now(UTC)


# --- API measurement ------------------------------------------------------------------


def api_measure(*, mode: str, fixture: dict, args, meter: CpuMeter) -> dict:
    url = f"http://127.0.0.1:{args.port}/api/v1/events"
    script = BENCH_DIR / "ingest.lua"

    def run(duration: int, nonce: str) -> dict:
        return wrk_run(
            url=url,
            script=script,
            duration=duration,
            connections=args.connections,
            threads=2,
            args=[
                mode,
                BATCH_SIZE,
                fixture["api_key"],
                ",".join(fixture["brand_ids"]),
                nonce,
                ",".join(fixture["promo_codes"]),
                args.attribution,
            ],
        )

    if args.warmup:
        print(f"{mode}: warming up {args.warmup} s ...", flush=True)
        run(args.warmup, _nonce())
    nonce = _nonce()
    print(f"{mode}: measuring {args.duration} s at {args.connections} connections ...", flush=True)
    load_before = round(os.getloadavg()[0], 2)
    meter.start()
    raw = run(args.duration, nonce)
    seconds = raw["duration_us"] / 1e6
    batch = BATCH_SIZE if mode == "batch" else 1
    check = stored_check(
        operator_id=fixture["operator_id"], nonce=nonce, raw=raw, events_per_request=batch
    )
    cpu = meter.stop()
    cpu_per_event = {}
    if check["stored"]:
        for part in ("app", "pg"):
            if cpu[f"{part}_s"] is not None:
                cpu_per_event[f"{part}_ms"] = round(cpu[f"{part}_s"] * 1000 / check["stored"], 3)
    result = {
        "mode": mode,
        "connections": args.connections,
        "events_per_request": batch,
        "seconds": round(seconds, 2),
        "requests": raw["answered"],
        "accepted": raw["accepted"],
        "events_per_s": round(raw["accepted"] / seconds, 1),
        "requests_per_s": round(raw["answered"] / seconds, 1),
        "p50_ms": round(raw["latency_us"]["p50"] / 1000, 1),
        "p90_ms": round(raw["latency_us"]["p90"] / 1000, 1),
        "p99_ms": round(raw["latency_us"]["p99"] / 1000, 1),
        "max_ms": round(raw["latency_us"]["max"] / 1000, 1),
        "duplicates": raw["duplicates"],
        "errors": raw["errors"],
        "bad_status": raw["bad_status"],
        "wrk_errors": raw["wrk_errors"],
        "sample_errors": raw["sample_errors"],
        "load_before": load_before,
        "check": check,
        "cpu_s": cpu,
        "cpu_ms_per_event": cpu_per_event,
    }
    if len(cpu_per_event) == 2:
        # What the two processes alone would allow if they had every core to themselves.
        per_event = cpu_per_event["app_ms"] + cpu_per_event["pg_ms"]
        result["cpu_bound_events_per_s"] = round((os.cpu_count() or 1) * 1000 / per_event)
    print(
        f"{mode}: {result['events_per_s']:,.0f} events/s "
        f"({result['requests_per_s']:,.0f} requests/s), "
        f"p50 {fmt_ms(raw['latency_us']['p50'])}, p99 {fmt_ms(raw['latency_us']['p99'])}; "
        f"stored check: {check['verdict']}",
        flush=True,
    )
    if len(cpu_per_event) == 2:
        print(
            f"{mode}: server CPU per event: gunicorn {cpu_per_event['app_ms']:.3f} ms + "
            f"PostgreSQL backends {cpu_per_event['pg_ms']:.3f} ms; all {os.cpu_count()} cores "
            f"for them alone would allow ~{result['cpu_bound_events_per_s']:,} events/s",
            flush=True,
        )
    for sample in raw["sample_errors"]:
        print(f"  sample error: {sample}")
    return result


def stored_check(*, operator_id: int, nonce: str, raw: dict, events_per_request: int) -> dict:
    """Count the run's rows: answered requests must match `accepted` exactly; a request
    whose answer never arrived must be stored whole or not at all."""
    from django.db import connection

    with connection.cursor() as cursor:
        # wrk stops with requests in flight, which the server still finishes: wait until
        # the count settles before checking.
        previous = None
        for _ in range(120):
            cursor.execute(
                "SELECT count(*), count(DISTINCT idempotency_key) FROM events_event "
                "WHERE operator_id = %s AND idempotency_key LIKE %s",
                [operator_id, f"{nonce}-%"],
            )
            stored, distinct = cursor.fetchone()
            if stored == previous:
                break
            previous = stored
            time.sleep(1.0)
        partial = []
        stored_unanswered = 0
        if raw["unanswered"]:
            cursor.execute(
                "SELECT p, count(e.id) FROM unnest(%s::text[]) AS p "
                "LEFT JOIN events_event e ON e.operator_id = %s "
                "AND e.idempotency_key LIKE %s || p || '%%' GROUP BY p",
                [raw["unanswered"], operator_id, f"{nonce}-"],
            )
            for prefix, count in cursor.fetchall():
                stored_unanswered += count
                if count not in (0, events_per_request):
                    partial.append(f"{prefix}: {count} of {events_per_request}")
    connection.close()
    answered_stored = stored - stored_unanswered
    problems = []
    if answered_stored != raw["accepted"]:
        problems.append(
            f"{answered_stored} stored for answered requests but {raw['accepted']} accepted"
        )
    if distinct != stored:
        problems.append(f"{stored - distinct} doubled rows")
    if partial:
        problems.append("partially stored requests: " + ", ".join(partial))
    if raw["duplicates"] or raw["errors"] or raw["bad_status"]:
        problems.append(
            f"unexpected answers: {raw['duplicates']} duplicates, {raw['errors']} errors, "
            f"{raw['bad_status']} non-2xx"
        )
    return {
        "stored": stored,
        "accepted": raw["accepted"],
        "unanswered_requests": len(raw["unanswered"]),
        "stored_for_unanswered": stored_unanswered,
        "problems": problems,
        "verdict": "OK" if not problems else "FAILED: " + "; ".join(problems),
    }


def _nonce() -> str:
    return secrets.token_hex(4)


# --- Raw PostgreSQL ceiling -----------------------------------------------------------

RAW_PAYLOAD = {
    "event_type": "deposit",
    "event_time": "2026-03-15T10:00:00Z",
    "brand_id": "00000000-0000-0000-0000-000000000000",
    "player_external_ref": "player_000000",
    "idempotency_key": "raw-xxxxxxxx-00-000000-000",
    "currency": "EUR",
    "amount": "123.45",
    "metadata": {"source": "bench"},
}


def raw_measure(
    *, database_url: str, fixture: dict, duration: int, processes: int, rows_per_statement: int
) -> dict:
    """rows/s of `rows_per_statement`-row INSERT ... ON CONFLICT DO NOTHING into events_event
    from `processes` processes, each in autocommit (one transaction per statement, as the API
    commits once per request). 100 rows is the ceiling of batches; 1 row, that of single
    events (PostgreSQL storing the event row alone, with none of the API's other work)."""
    from django.db import connection

    from attribution.models import Player
    from events.models import ApiKey, Event

    nonce = _nonce()
    brand_ids = fixture["brand_ids"]
    players = Player.objects.bulk_create(
        Player(brand_id=brand_ids[n % len(brand_ids)], external_ref=f"raw-{nonce}-p{n}")
        for n in range(2000)
    )
    player_rows = [(str(p.brand_id), p.pk) for p in players]
    api_key_id = ApiKey.objects.filter(operator_id=fixture["operator_id"]).values_list(
        "pk", flat=True
    )[0]
    extras = {}
    for f in Event._meta.concrete_fields:
        if f.column not in RAW_COLUMNS:
            value = f.get_db_prep_save(f.get_default(), connection)
            extras[f.column] = json.dumps(value) if isinstance(value, dict | list) else value
    connection.close()

    ctx = multiprocessing.get_context("fork")
    counter = ctx.Value("q", 0)
    start_at = time.time() + 1.0
    print(
        f"raw: {processes} processes x {rows_per_statement}-row INSERT ... ON CONFLICT DO NOTHING "
        f"for {duration} s ...",
        flush=True,
    )
    procs = [
        ctx.Process(
            target=_raw_worker,
            args=(
                database_url,
                fixture["operator_id"],
                api_key_id,
                player_rows,
                extras,
                f"raw-{nonce}-{n}",
                start_at,
                duration,
                counter,
                rows_per_statement,
            ),
        )
        for n in range(processes)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(duration + 60)
        if p.is_alive():
            p.kill()
    statements = counter.value
    import psycopg

    with psycopg.connect(database_url) as conn:
        stored = conn.execute(
            "SELECT count(*) FROM events_event WHERE idempotency_key LIKE %s", [f"raw-{nonce}-%"]
        ).fetchone()[0]
    rows_per_s = stored / duration
    print(f"raw: {rows_per_s:,.0f} rows/s ({statements} statements, {stored} rows)", flush=True)
    return {
        "processes": processes,
        "rows_per_statement": rows_per_statement,
        "seconds": duration,
        "statements": statements,
        "rows": stored,
        "rows_per_s": round(rows_per_s, 1),
    }


def _raw_worker(
    database_url,
    operator_id,
    api_key_id,
    player_rows,
    extras,
    prefix,
    start_at,
    duration,
    counter,
    rows_per_statement,
):
    import random

    import psycopg

    rng = random.Random(prefix)
    columns = [*RAW_COLUMNS, *extras]
    row_sql = "(" + ",".join(["%s"] * len(columns)) + ")"
    sql = (
        f"INSERT INTO events_event ({','.join(columns)}) VALUES "
        + ",".join([row_sql] * rows_per_statement)
        + " ON CONFLICT DO NOTHING"
    )
    extra_values = list(extras.values())
    types = ("registration", "first_deposit", "deposit", "ngr_update", "chargeback")
    statements = 0
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("SELECT 1")
        time.sleep(max(0.0, start_at - time.time()))
        deadline = start_at + duration
        n = 0
        while time.time() < deadline:
            params = []
            now = datetime.now(UTC)
            for _ in range(rows_per_statement):
                n += 1
                brand_id, player_id = player_rows[rng.randrange(len(player_rows))]
                key = f"{prefix}-{n}"
                payload = dict(RAW_PAYLOAD, idempotency_key=key, brand_id=brand_id)
                params += [
                    uuid.uuid4(),
                    operator_id,
                    brand_id,
                    player_id,
                    api_key_id,
                    types[n % len(types)],
                    now,
                    now,
                    key,
                    json.dumps(payload),
                    secrets.token_hex(32),
                    "EUR",
                    "123.4500",
                    "[]",
                    *extra_values,
                ]
            conn.execute(sql, params)
            statements += 1
    with counter.get_lock():
        counter.value += statements


# --- Report ---------------------------------------------------------------------------


def report(results: dict) -> bool:
    print()
    print("=" * 78)
    print_machine(results["machine"])
    if "server" in results:
        s = results["server"]
        print(
            f"server: gunicorn {_server_text(s)}, DEBUG off, PostgreSQL; "
            f"load(1m) after the run {results['load_after']}"
        )
    print(
        f"{'mode':<8}{'conns':>6}{'events/s':>11}{'req/s':>9}{'p50':>10}{'p99':>10}"
        f"{'CPU ms/event':>17}  check"
    )
    ok = True
    for mode in ("batch", "single"):
        if mode not in results:
            continue
        r = results[mode]
        print(
            f"{mode:<8}{r['connections']:>6}{r['events_per_s']:>11,.0f}{r['requests_per_s']:>9,.0f}"
            f"{r['p50_ms']:>8.1f}ms{r['p99_ms']:>8.1f}ms{_cpu_text(r):>17}  {r['check']['verdict']}"
        )
        ok = ok and not r["check"]["problems"]
    raw = results.get("raw")
    for name, api_mode, label in (
        ("raw", "batch", "100-row INSERT"),
        ("raw-single", "single", "1-row INSERT"),
    ):
        raw = results.get(name)
        if not raw:
            continue
        print(f"{name:<10}{raw['processes']:>4}{raw['rows_per_s']:>11,.0f}  ({label}, rows/s)")
        if api_mode in results:
            api = results[api_mode]["events_per_s"]
            ratio = api / raw["rows_per_s"] if raw["rows_per_s"] else 0
            results[f"{api_mode}_over_{name.replace('-', '_')}"] = round(ratio, 3)
            print(f"{api_mode} API / {name} PostgreSQL ceiling: {ratio:.1%}")
    print("targets:")
    if "batch" in results:
        value = results["batch"]["events_per_s"]
        print(f"  batch  >= {TARGET_BATCH:,} events/s: {_verdict(value, TARGET_BATCH)}")
    if "single" in results:
        value = results["single"]["events_per_s"]
        p99 = results["single"]["p99_ms"]
        print(f"  single >= {TARGET_SINGLE:,} events/s: {_verdict(value, TARGET_SINGLE)}")
        p99_verdict = (
            f"met ({p99:.1f} ms)"
            if p99 < TARGET_SINGLE_P99_MS
            else f"MISSED ({p99:.1f} ms, {p99 / TARGET_SINGLE_P99_MS - 1:.0%} over)"
        )
        print(f"  single p99 < {TARGET_SINGLE_P99_MS} ms: {p99_verdict}")
    print("=" * 78)
    if not ok:
        print("the stored-events check FAILED (see above)", file=sys.stderr)
    return ok


def _cpu_text(result: dict) -> str:
    cpu = result.get("cpu_ms_per_event") or {}
    if len(cpu) != 2:
        return "n/a"
    return f"{cpu['app_ms']:.2f}+{cpu['pg_ms']:.2f}"


def _server_text(server: dict) -> str:
    text = f"{server['workers']} workers, {server['worker_class']}"
    if server["threads"] > 1:
        text += f" x {server['threads']} threads"
    return text


def _verdict(value: float, target: float) -> str:
    if value >= target:
        return f"met ({value:,.0f}, +{value / target - 1:.0%})"
    return f"MISSED ({value:,.0f}, {1 - value / target:.0%} short)"


if __name__ == "__main__":
    sys.exit(main())
