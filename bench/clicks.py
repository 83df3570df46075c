"""Click redirect benchmark (issue 3, "Performance").

    .venv/bin/python bench/clicks.py [--duration 20] [--connections 8]

1. drops and re-creates its own PostgreSQL database `revvvs_bench_clicks`, migrates it and
   creates an operator, a brand, an approved affiliate with 20 links, and 20,000 earlier
   clicks (so the uniqueness lookup runs on a table that is not empty);
2. serves the project with gunicorn (2 workers, DEBUG off) on port 8112, with
   bench/clicks_settings.py: the production settings plus the bench-only `/bench/302`, a
   view that only returns a redirect through the same middleware;
3. drives GET /t/{code} with wrk and bench/clicks.lua (varying link, sub ids and visitor
   IP per request), then /bench/302 the same way, and prints redirects/s, p50/p99 and the
   ratio /t/{code} : /bench/302;
4. checks that every 302 of /t/{code} stored its click.

gunicorn is stopped at the end, also on error or Ctrl-C. Figures: docs/performance.md.
"""

import argparse
import json
import sys
import time
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

DATABASE = "revvvs_bench_clicks"
PORT = 8112
LINKS = 20
EARLIER_CLICKS = 20_000
TARGET_RPS = 2000
FLUSH_WAIT_SECONDS = 1.0
TARGET_P99_MS = 20


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=int, default=20, help="seconds per measurement")
    parser.add_argument("--connections", type=int, default=8, help="concurrent clients")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--worker-class", choices=("sync", "gthread"), default="sync")
    parser.add_argument("--gthreads", type=int, default=4, help="threads per gthread worker")
    parser.add_argument("--warmup", type=int, default=3, help="warm-up seconds before each")
    parser.add_argument("--port", type=int, default=PORT)
    parser.add_argument("--json-out", type=Path, help="also write the results as JSON here")
    args = parser.parse_args()

    info = machine_info()
    print_machine(info)
    wrk_path()

    database_url = database_reset(DATABASE)
    env = server_env(
        database_url,
        DJANGO_SETTINGS_MODULE="clicks_settings",
        PYTHONPATH=str(BENCH_DIR),
        TRUSTED_PROXY_IP_HEADER="HTTP_X_FORWARDED_FOR",
    )
    django_setup(env)
    migrate()
    codes = fixture_create()
    print(f"database {DATABASE}: {LINKS} links, {EARLIER_CLICKS} earlier clicks")

    results = {}
    base = f"http://127.0.0.1:{args.port}"
    with gunicorn(
        env=env,
        port=args.port,
        workers=args.workers,
        worker_class=args.worker_class,
        threads=args.gthreads if args.worker_class == "gthread" else 1,
    ) as server_proc:
        meter = CpuMeter(server_pid=server_proc.pid, database_url=database_url)
        for name, url, codes_arg in (
            ("redirect", f"{base}/t/", ",".join(codes)),
            ("bare_302", f"{base}/bench/302", ""),
        ):
            if args.warmup:
                wrk_run(
                    url=url,
                    script=BENCH_DIR / "clicks.lua",
                    duration=args.warmup,
                    connections=args.connections,
                    threads=args.threads,
                    args=[codes_arg],
                )
                time.sleep(FLUSH_WAIT_SECONDS)
            clicks_before = click_count()
            meter.start()
            result = wrk_run(
                url=url,
                script=BENCH_DIR / "clicks.lua",
                duration=args.duration,
                connections=args.connections,
                threads=args.threads,
                args=[codes_arg],
            )
            cpu = meter.stop()
            # The workers buffer clicks for CLICK_FLUSH_SECONDS (attribution/clicks.py).
            time.sleep(FLUSH_WAIT_SECONDS)
            result["clicks_stored"] = click_count() - clicks_before
            result["rps"] = result["status_302"] / (result["duration_us"] / 1e6)
            # CPU per redirect in the workers and in PostgreSQL: the figure that moves least
            # with the machine's other load, and says where the time goes.
            result["cpu_ms_per_redirect"] = {
                part: round(cpu[f"{part}_s"] * 1000 / result["status_302"], 3)
                for part in ("app", "pg")
                if cpu[f"{part}_s"] is not None and result["status_302"]
            }
            results[name] = result
            print(
                f"{name:9s} {result['rps']:8.0f} redirects/s   p50 {fmt_ms(result['p50_us'])}"
                f"   p90 {fmt_ms(result['p90_us'])}   p99 {fmt_ms(result['p99_us'])}"
                f"   (302: {result['status_302']}, other: {result['status_other']}, "
                f"socket errors: {result['wrk_errors'] or 'none'})"
            )
            cpu_text = " + ".join(
                f"{part} {ms:.3f} ms" for part, ms in result["cpu_ms_per_redirect"].items()
            )
            print(f"{'':9s} server CPU per redirect: {cpu_text or 'n/a'}")

    redirect, bare = results["redirect"], results["bare_302"]
    ratio = redirect["rps"] / bare["rps"] if bare["rps"] else 0.0
    print(f"ratio /t/{{code}} : /bench/302 = {ratio:.2f}")
    # wrk stops mid-request: requests in flight at the end of the warm-up and of the run may
    # be stored without their 302 counted (at most one per connection each), never fewer.
    extra = redirect["clicks_stored"] - redirect["status_302"]
    stored_ok = 0 <= extra <= 2 * args.connections
    print(
        f"clicks stored during the measurement: {redirect['clicks_stored']} "
        f"({'matches' if stored_ok else 'DOES NOT MATCH'} the 302s counted)"
    )
    p99_ms = redirect["p99_us"] / 1000
    verdict = redirect["rps"] >= TARGET_RPS and p99_ms < TARGET_P99_MS
    print(
        f"target >= {TARGET_RPS} redirects/s with p99 < {TARGET_P99_MS} ms: "
        f"{'met' if verdict else 'NOT met'}"
    )
    if args.json_out:
        args.json_out.write_text(
            json.dumps(
                {"machine": info, "args": vars(args) | {"json_out": str(args.json_out)}, **results},
                indent=2,
            )
        )
    return 0 if stored_ok and redirect["status_other"] == 0 else 1


def click_count() -> int:
    from attribution.models import Click

    return Click.objects.count()


def fixture_create() -> list[str]:
    from django.utils import timezone

    from attribution.models import Click
    from attribution.services import affiliate_create, tracking_link_create
    from revvvs.hashing import ip_hmac
    from revvvs.services import operator_create

    created = operator_create(name="Bench operator", brand_names=["Bench Casino"])
    brand = created.brands[0]
    affiliate = affiliate_create(
        operator=created.operator, email="bench@affiliates.example.com", status="approved"
    )
    links = [
        tracking_link_create(affiliate=affiliate, brand=brand, name=f"bench {n}")
        for n in range(LINKS)
    ]
    now = timezone.now()
    Click.objects.bulk_create(
        [
            Click(
                link=links[n % LINKS],
                affiliate=affiliate,
                brand=brand,
                created_at=now - timedelta_minutes(n % (60 * 24 * 30)),
                ip_hash=ip_hmac(f"10.200.{n // 250 % 250}.{n % 250 + 1}"),
                user_agent="Mozilla/5.0",
            )
            for n in range(EARLIER_CLICKS)
        ],
        batch_size=2000,
    )
    return [link.code for link in links]


def timedelta_minutes(n: int):
    from datetime import timedelta

    return timedelta(minutes=n)


if __name__ == "__main__":
    started = time.monotonic()
    code = main()
    print(f"done in {time.monotonic() - started:.0f} s")
    sys.exit(code)
