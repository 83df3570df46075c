"""Settings for the test suite: PostgreSQL (as production), fast password hashing."""

import os

os.environ.setdefault("DEBUG", "on")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/revvvs")

from .settings import *  # noqa: E402,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
DATABASES["default"]["CONN_MAX_AGE"] = 0  # noqa: F405
# Clicks are stored in their request, so a test sees them at once; the buffer has its own
# tests (tests/attribution/test_click_buffer.py).
CLICK_FLUSH_SECONDS = 0
# Every click reads its link: a test that suspends an affiliate sees it on the next click.
TRACKING_LINK_CACHE_SECONDS = 0
