"""Helpers shared by the benchmarks in bench/ (ingest.py, clicks.py, close.py).

Every benchmark runs on its own PostgreSQL database, which it drops and re-creates, and
serves the project through gunicorn on its own port. Import from a script run as
`python bench/<name>.py` with `from _common import ...` (the script's folder is on sys.path).
"""

import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
PROJECT_DIR = BENCH_DIR.parent
VENV_BIN = PROJECT_DIR / ".venv" / "bin"
PG_URL = os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432")
# DEBUG off needs a real-looking key; this one is for benchmarks only.
BENCH_SECRET_KEY = "bench-only-secret-key-0123456789abcdefghijklmnopqrstuvwxyz"


# --- Machine --------------------------------------------------------------------------


def machine_info(pg_url: str = PG_URL) -> dict:
    """nproc, CPU model, RAM, load average, PostgreSQL and Python versions."""
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram_gib = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram_gib = round(int(line.split()[1]) / 1024 / 1024, 1)
                break
    except OSError:
        pass
    try:
        pg_version = pg_admin_query(pg_url, "SHOW server_version")
    except Exception as exc:  # the benchmark reports it; it fails later if PG is really down
        pg_version = f"unavailable ({exc})"
    loop_seconds, steal_percent = cpu_reference()
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "ram_gib": ram_gib,
        "loadavg_1m": round(os.getloadavg()[0], 2),
        "postgresql": pg_version,
        "python": platform.python_version(),
        "python_loop_10m_s": loop_seconds,
        "cpu_steal_percent": steal_percent,
    }


def _proc_stat_cpu() -> list[int] | None:
    try:
        return [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None


def cpu_reference() -> tuple[float, float | None]:
    """How fast this machine's Python is right now: the CPU seconds of a 10-million-step
    loop (0.42-0.73 s on the 2-core VM of 2026-12-02, within minutes, idle), and the share of
    CPU time the hypervisor stole meanwhile (/proc/stat). The same code's figures move
    with both, so each run prints them beside its own."""
    before = _proc_stat_cpu()
    started = time.process_time()
    total = 0
    for step in range(10_000_000):
        total += step
    seconds = round(time.process_time() - started, 3)
    after = _proc_stat_cpu()
    steal = None
    if before and after and len(before) > 7:
        delta = [b - a for a, b in zip(before, after, strict=False)]
        if sum(delta):
            steal = round(100 * delta[7] / sum(delta), 1)
    return seconds, steal


def print_machine(info: dict) -> None:
    print(
        f"machine: nproc={info['nproc']}  cpu={info['cpu']}  ram={info['ram_gib']} GiB  "
        f"PostgreSQL {info['postgresql']}  Python {info['python']}  "
        f"load(1m)={info['loadavg_1m']}"
    )
    print(
        f"cpu reference: a 10M-step Python loop took {info['python_loop_10m_s']} s of CPU "
        f"(steal {info['cpu_steal_percent']} %); compare figures of runs with similar ones"
    )


# --- PostgreSQL -----------------------------------------------------------------------


def pg_admin_query(pg_url: str, sql: str):
    import psycopg

    with psycopg.connect(f"{pg_url}/postgres", autocommit=True, connect_timeout=5) as conn:
        return conn.execute(sql).fetchone()[0]


def database_reset(name: str, pg_url: str = PG_URL) -> str:
    """Drop and re-create database `name`; returns its DATABASE_URL."""
    import psycopg

    if not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
        raise ValueError(f"unsafe database name {name!r}")
    with psycopg.connect(f"{pg_url}/postgres", autocommit=True, connect_timeout=5) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name}")
    return f"{pg_url}/{name}"


def server_env(database_url: str, **extra: str) -> dict:
    """The environment of a production-like server (DEBUG off) on `database_url`."""
    env = dict(os.environ)
    env.update(
        {
            "DATABASE_URL": database_url,
            "DEBUG": "off",
            "SECRET_KEY": BENCH_SECRET_KEY,
            "SECURE_SSL_REDIRECT": "off",
            "ALLOWED_HOSTS": "127.0.0.1",
            "EVENTS_RATE_LIMIT_PER_MINUTE": "0",
            "LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra)
    return env


def django_setup(env: dict) -> None:
    """Configure Django in this process with `env` (call once, before importing models)."""
    os.environ.update(env)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "revvvs.settings")
    if str(PROJECT_DIR) not in sys.path:
        sys.path.insert(0, str(PROJECT_DIR))
    import django

    django.setup()


def migrate() -> None:
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


# --- gunicorn -------------------------------------------------------------------------


@contextmanager
def gunicorn(
    *,
    env: dict,
    port: int,
    workers: int = 2,
    worker_class: str = "sync",
    threads: int = 1,
    log_path: Path | None = None,
    timeout: float = 30.0,
):
    """Serve the project with gunicorn on 127.0.0.1:`port` until the block ends.

    Waits for /healthz to answer 200; the server is stopped (and killed if it lingers)
    when the block exits, also on error or Ctrl-C."""
    cmd = [
        str(VENV_BIN / "gunicorn"),
        "revvvs.wsgi:application",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--worker-class",
        worker_class,
        "--threads",
        str(threads),
        "--timeout",
        "60",
        "--log-level",
        "warning",
    ]
    log = open(log_path or os.devnull, "w")  # noqa: SIM115 - closed in finally
    proc = subprocess.Popen(
        cmd, cwd=PROJECT_DIR, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        try:
            healthz_wait(f"http://127.0.0.1:{port}/healthz", proc=proc, timeout=timeout)
        except RuntimeError as exc:
            tail = ""
            if log_path:
                log.flush()
                tail = "\n".join(Path(log_path).read_text().splitlines()[-15:])
            raise RuntimeError(f"{exc}; gunicorn log ({log_path}):\n{tail}") from None
        yield proc
    finally:
        _stop(proc)
        log.close()


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)  # the master and its workers, by process group
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)
    except ProcessLookupError:
        pass


def healthz_wait(url: str, *, proc: subprocess.Popen | None = None, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the server exited with code {proc.returncode} before {url}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError) as exc:
            last = exc
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer 200 within {timeout:.0f} s (last error: {last})")


# --- wrk ------------------------------------------------------------------------------


def wrk_path() -> str:
    """The wrk binary; installs it with apt-get when missing and possible, else fails clearly."""
    found = shutil.which("wrk")
    if found:
        return found
    apt = shutil.which("apt-get")
    if apt:
        sudo = [] if os.geteuid() == 0 else (["sudo", "-n"] if shutil.which("sudo") else None)
        if sudo is not None:
            print("wrk is missing; installing it with apt-get ...", flush=True)
            subprocess.run([*sudo, apt, "install", "-y", "-q", "wrk"], check=False)
            found = shutil.which("wrk")
            if found:
                return found
    sys.exit(
        "bench: the load generator `wrk` is missing and could not be installed; "
        "install it (Debian/Ubuntu: `apt-get install -y wrk`) and run again."
    )


def wrk_run(
    *,
    url: str,
    script: Path,
    duration: int,
    connections: int,
    threads: int = 2,
    args: list[str] = (),
    timeout_s: int = 10,
) -> dict:
    """Run wrk with a Lua script whose done() prints one line `BENCH_JSON {...}`; returns it.

    The JSON comes from the script; wrk's own socket errors are added under "wrk_errors"."""
    cmd = [
        wrk_path(),
        "-t",
        str(min(threads, connections)),
        "-c",
        str(connections),
        "-d",
        f"{duration}s",
        "--timeout",
        f"{timeout_s}s",
        "-s",
        str(script),
        url,
        "--",
        *[str(a) for a in args],
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 120)
    if out.returncode != 0:
        raise RuntimeError(f"wrk failed ({out.returncode}): {out.stderr.strip()}")
    result = None
    errors = {}
    for line in out.stdout.splitlines():
        if line.startswith("BENCH_JSON "):
            result = json.loads(line[len("BENCH_JSON ") :])
        match = re.search(
            r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", line
        )
        if match:
            errors = dict(
                zip(("connect", "read", "write", "timeout"), map(int, match.groups()), strict=True)
            )
    if result is None:
        raise RuntimeError(f"wrk printed no BENCH_JSON line:\n{out.stdout}\n{out.stderr}")
    result["wrk_errors"] = errors
    return result


def fmt_ms(microseconds: float) -> str:
    return f"{microseconds / 1000:.1f} ms"


# --- CPU accounting -------------------------------------------------------------------
# On a shared machine wall-clock figures move with the neighbours' load; the CPU time the
# server processes spend per request moves much less, so the benchmarks report both.

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def process_cpu_seconds(pid: int) -> float | None:
    """utime + stime of one process, from /proc; None when it is gone or unreadable."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / _TICKS


def process_tree(pid: int) -> list[int]:
    """`pid` and its descendants (e.g. the gunicorn master and its workers)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(children.get(current, []))
    return tree


def pg_backend_pids(database_url: str) -> list[int]:
    """The server processes of the other sessions on `database_url`'s database."""
    import psycopg

    with psycopg.connect(database_url, autocommit=True, connect_timeout=5) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid()"
        ).fetchall()
    return [row[0] for row in rows]


class CpuMeter:
    """CPU seconds spent by the app server's processes and by its PostgreSQL backends
    between start() and stop(). PostgreSQL must run on this host for the second part."""

    def __init__(self, *, server_pid: int, database_url: str):
        self.server_pid = server_pid
        self.database_url = database_url

    def _snapshot(self) -> tuple[dict, dict]:
        app = {p: process_cpu_seconds(p) for p in process_tree(self.server_pid)}
        try:
            pg = {p: process_cpu_seconds(p) for p in pg_backend_pids(self.database_url)}
        except Exception:  # noqa: BLE001 - a remote or unreachable PG just has no figure
            pg = {}
        return app, pg

    def start(self) -> None:
        self._start = self._snapshot()

    def stop(self) -> dict:
        end = self._snapshot()

        def spent(before: dict, after: dict) -> float | None:
            values = [
                value - (before.get(pid) or 0.0)
                for pid, value in after.items()
                if value is not None
            ]
            return round(sum(values), 3) if values else None

        return {"app_s": spent(self._start[0], end[0]), "pg_s": spent(self._start[1], end[1])}
