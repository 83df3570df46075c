"""Settings of the click benchmark's server: the project's production settings plus one
bench-only URL, `/bench/302`, a view that only answers a redirect (bench/clicks_urls.py).
Never used outside bench/clicks.py."""

from revvvs.settings import *  # noqa: F403

ROOT_URLCONF = "clicks_urls"
