"""Per-IP throttle of failed logins (CONTRACT §7: >100 failures in 15 minutes from one IP -> 429).

django-axes locks one username for one IP after 5 failures; this counts every failure of an
IP, whatever the username, so password spraying from one address is slowed as well. Counts
live in the cache (Redis when REDIS_URL is set, so all workers share them).
"""

import time

from django.contrib.auth.signals import user_login_failed
from django.core.cache import cache
from django.dispatch import receiver

WINDOW = 15 * 60
LIMIT = 100


def client_ip(request_or_meta):
    """The client's address from a Django request, or from a META-like mapping."""
    meta = getattr(request_or_meta, "META", request_or_meta) or {}
    return meta.get("REMOTE_ADDR") or "unknown"


def _key(ip, bucket):
    return f"oidc_provider:login_failures:{ip}:{bucket}"


def _buckets(now=None):
    # Three 5-minute buckets make a sliding 15-minute window without per-failure rows.
    current = int((now or time.time()) // 300)
    return [current - i for i in range(3)]


def record_failure(ip):
    key = _key(ip, _buckets()[0])
    cache.add(key, 0, timeout=WINDOW + 300)
    try:
        cache.incr(key)
    except ValueError:
        cache.set(key, 1, timeout=WINDOW + 300)


def failures(ip):
    return sum(v or 0 for v in cache.get_many([_key(ip, b) for b in _buckets()]).values())


def is_throttled(ip):
    return failures(ip) > LIMIT


@receiver(user_login_failed, dispatch_uid="oidc_provider.throttle")
def _count_failure(sender, credentials=None, request=None, **kwargs):
    if request is not None:
        record_failure(client_ip(request))
