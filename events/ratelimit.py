"""A per-key fixed-window request limit kept in the Django cache.

With the default in-process cache the limit holds per worker process; production sets
CACHE_URL to a shared cache (Redis) so that it holds per key across workers and hosts."""

import time

from django.conf import settings
from django.core.cache import cache

WINDOW_SECONDS = 60


def rate_limit_hit(*, api_key) -> int | None:
    """Count one request for `api_key`; returns seconds to wait when over the limit, else None."""
    limit = api_key.rate_limit_per_minute or settings.EVENTS_RATE_LIMIT_PER_MINUTE
    if not limit:
        return None
    now = time.time()
    window = int(now // WINDOW_SECONDS)
    cache_key = f"events-rl:{api_key.pk}:{window}"
    if cache.add(cache_key, 1, timeout=WINDOW_SECONDS + 5):
        count = 1
    else:
        try:
            count = cache.incr(cache_key)
        except ValueError:
            cache.set(cache_key, 1, timeout=WINDOW_SECONDS + 5)
            count = 1
    if count > limit:
        return max(1, int((window + 1) * WINDOW_SECONDS - now) + 1)
    return None
