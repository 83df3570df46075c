"""A real gunicorn worker buffers the redirect's clicks and stores them when it is stopped
gracefully (SIGTERM, what deploys send): nothing acknowledged with a 302 is lost."""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from django.db import connection

from attribution.models import Click
from tests.factories import AffiliateFactory, TrackingLinkFactory

PROJECT = Path(__file__).resolve().parents[2]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _database_url() -> str:
    s = connection.settings_dict
    return f"postgres://{s['USER']}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


def _get(url) -> tuple[int, dict]:
    """Status and headers; the connection closed at once (a sync worker serves the next
    connection only when this one is done)."""
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        response = opener.open(url, timeout=5)
    except urllib.error.HTTPError as error:  # the 302, not followed
        response = error
    with response:
        return response.status, dict(response.headers)


@pytest.mark.django_db(transaction=True)
def test_a_gracefully_stopped_worker_stores_its_buffered_clicks(tenant):
    link = TrackingLinkFactory(
        affiliate=AffiliateFactory(operator=tenant.operator), brand=tenant.brand
    )
    port = _free_port()
    env = dict(
        os.environ,
        DJANGO_SETTINGS_MODULE="revvvs.settings",
        DEBUG="on",
        DATABASE_URL=_database_url(),
        CLICK_FLUSH_SECONDS="30",  # only the exit can store them within this test
        CLICK_FLUSH_ROWS="1000",
    )
    server = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("gunicorn")),
            "revvvs.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "1",
        ],
        cwd=PROJECT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if _get(f"http://127.0.0.1:{port}/healthz")[0] == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "gunicorn did not start"
            time.sleep(0.1)
        click_ids = []
        for n in range(5):
            status, headers = _get(f"http://127.0.0.1:{port}/t/{link.code}?sub1=s{n}")
            assert status == 302
            location = headers["Location"]
            click_ids.append(parse_qs(urlsplit(location).query)["click_id"][0])

        assert Click.objects.count() == 0  # still in the worker's buffer

        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=30) == 0
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()

    stored = Click.objects.order_by("sub1")
    assert [str(c.id) for c in stored] == click_ids
    assert [c.sub1 for c in stored] == [f"s{n}" for n in range(5)]
