"""Production settings: the app refuses to start without a real SECRET_KEY, and
`manage.py check --deploy` is clean. Run in a subprocess with a production-like
environment, as the process would start in production."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

BASE_DIR = Path(__file__).resolve().parents[2]
SETUP = "import django; django.setup(); print('started')"


def run(args, tmp_path, **env):
    environ = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "DJANGO_SETTINGS_MODULE"}
    }
    environ.update(
        DJANGO_SETTINGS_MODULE="revvvs.settings",
        DATABASE_URL=f"sqlite:///{tmp_path / 'check.sqlite3'}",
        **env,
    )
    return subprocess.run(
        [sys.executable, *args],
        cwd=BASE_DIR,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    "secret",
    [None, "", "changeme", "dev-insecure-revvvs-secret-key-do-not-use-in-production"],
    ids=["unset", "empty", "short", "development-key"],
)
def test_without_a_real_secret_key_production_refuses_to_start(tmp_path, secret):
    env = {"DEBUG": "off"}
    if secret is not None:
        env["SECRET_KEY"] = secret
    result = run(["-c", SETUP], tmp_path, **env)
    assert result.returncode != 0
    assert "started" not in result.stdout
    assert "ImproperlyConfigured: SECRET_KEY must be set" in result.stderr


def test_with_a_real_secret_key_production_starts(tmp_path):
    result = run(["-c", SETUP], tmp_path, DEBUG="off", SECRET_KEY=secrets.token_urlsafe(50))
    assert result.returncode == 0, result.stderr
    assert "started" in result.stdout


def test_development_runs_on_the_development_key(tmp_path):
    result = run(["-c", SETUP], tmp_path, DEBUG="on")
    assert result.returncode == 0, result.stderr


def test_check_deploy_is_clean_with_production_settings(tmp_path):
    result = run(
        ["manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        tmp_path,
        DEBUG="off",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="revvvs.example.com",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout
