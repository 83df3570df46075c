"""Settings for the test suite: PostgreSQL (as production), fast password hashing."""

import os

os.environ.setdefault("DEBUG", "on")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/revvvs")

from .settings import *  # noqa: E402,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
DATABASES["default"]["CONN_MAX_AGE"] = 0  # noqa: F405
