"""Brute-force accounting: the client's address, failed logins per IP, failed client
authentications per client and per IP.

django-axes locks one username for one IP after 5 failures; this counts every failed login
of an IP, whatever the username, so password spraying from one address is slowed as well
(more than 100 failures in 15 minutes from one IP -> 429). The token, introspection and
revocation endpoints count failed client authentications (wrong secret or SK, unknown
client) per client and per IP the same way, and refuse both for a while once a limit is
passed (429 with Retry-After), successes included, so a right guess tells nothing either.

Counts are kept where every worker and server sees them: the database (``ThrottleCount``,
one atomic UPDATE per failure), or the cache named by ``THROTTLE_CACHE`` (Redis). A
per-process store would multiply every limit by the number of workers.

Only failures pay for the counting. A success checks the blocks in the per-process
configuration copy (config_cache), which a new block invalidates in every process.
"""

import hashlib
import ipaddress
import time
from datetime import datetime, timezone as dt_timezone

from django.contrib.auth.signals import user_login_failed
from django.core.cache import caches
from django.db import IntegrityError, router, transaction
from django.db.models import F, Sum

from . import config_cache
from .conf import oidc_settings
from .models import ThrottleCount

LOGIN_WINDOW = 15 * 60
LOGIN_LIMIT = 100
BUCKETS = 3  # a sliding window made of three fixed buckets: no row per failure


# -- the client's address -------------------------------------------------------------------

_networks = {"source": None, "networks": ()}


def _trusted_networks():
    source = oidc_settings.TRUSTED_PROXIES
    if _networks["source"] is not source:
        _networks["networks"], _networks["source"] = tuple(parse_networks(source)[0]), source
    return _networks["networks"]


def parse_networks(values):
    """(networks, invalid entries) of a list or comma-separated string of addresses/networks."""
    if isinstance(values, str):
        values = values.split(",")
    networks, invalid = [], []
    for value in values or ():
        value = str(value).strip()
        if not value:
            continue
        try:
            networks.append(ipaddress.ip_network(value, strict=False))
        except ValueError:
            invalid.append(value)
    return networks, invalid


def _parse_address(value):
    value = value.strip()
    if value.startswith("[") and "]" in value:  # [v6]:port
        value = value[1 : value.index("]")]
    elif value.count(":") == 1:  # v4:port
        value = value.partition(":")[0]
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


def _trusted(address, networks):
    return any(address in network for network in networks)


def client_address(request_or_meta):
    """The client's address from a Django request, or from a META-like mapping; None if unknown.

    ``X-Forwarded-For`` is believed only when the connection comes from a trusted proxy
    (``TRUSTED_PROXIES``): anyone else could write any address into it. Walking it from the
    right, each trusted proxy vouches for the address before it; the first address that is
    not a trusted proxy is the client.
    """
    meta = getattr(request_or_meta, "META", request_or_meta) or {}
    address = _parse_address(meta.get("REMOTE_ADDR") or "")
    if address is None:
        return None
    client = str(address)
    networks = _trusted_networks()
    if not networks or not _trusted(address, networks):
        return client
    for hop in reversed((meta.get("HTTP_X_FORWARDED_FOR") or "").split(",")):
        if not hop.strip():
            continue
        hop_address = _parse_address(hop)
        if hop_address is None:
            break  # a trusted proxy passed on garbage: the last address vouched for stands
        client = str(hop_address)
        if not _trusted(hop_address, networks):
            break
    return client


def from_trusted_proxy(request_or_meta):
    """Whether the connection comes from one of ``TRUSTED_PROXIES``, whose headers are believed."""
    meta = getattr(request_or_meta, "META", request_or_meta) or {}
    address = _parse_address(meta.get("REMOTE_ADDR") or "")
    networks = _trusted_networks()
    return address is not None and bool(networks) and _trusted(address, networks)


def client_ip(request_or_meta):
    """``client_address()``, or "unknown" to count requests without one together."""
    return client_address(request_or_meta) or "unknown"


# -- the shared counts ----------------------------------------------------------------------


def _digest(value):
    return hashlib.sha256(str(value).encode("utf-8", "surrogatepass")).hexdigest()[:40]


def _bucket_keys(kind, value, window, now):
    width = max(1, window // BUCKETS)
    current = int(now // width)
    return [f"{kind}:{_digest(value)}:{current - i}" for i in range(BUCKETS)], width


def _cache():
    alias = oidc_settings.THROTTLE_CACHE
    return caches[alias] if alias else None


def _aware(timestamp):
    return datetime.fromtimestamp(timestamp, tz=dt_timezone.utc)


def _increment(key, expires_at):
    cache = _cache()
    if cache is not None:
        timeout = max(1, int(expires_at - time.time()))
        cache.add(key, 0, timeout=timeout)
        try:
            cache.incr(key)
        except ValueError:  # expired between the two calls
            cache.set(key, 1, timeout=timeout)
        return
    now = _aware(time.time())
    if ThrottleCount.objects.filter(key=key, expires__gt=now).update(count=F("count") + 1):
        return
    # A new bucket, at most one per key every few minutes: the time to drop expired ones.
    ThrottleCount.objects.filter(expires__lt=now).delete()
    try:
        with transaction.atomic(using=router.db_for_write(ThrottleCount)):
            ThrottleCount.objects.create(key=key, count=1, expires=_aware(expires_at))
    except IntegrityError:
        # Another worker created it meanwhile: add one to it.
        ThrottleCount.objects.filter(key=key).update(count=F("count") + 1)


def _total(keys):
    cache = _cache()
    if cache is not None:
        return sum(v or 0 for v in cache.get_many(keys).values())
    now = _aware(time.time())
    return ThrottleCount.objects.filter(key__in=keys, expires__gt=now).aggregate(n=Sum("count"))["n"] or 0


def record(kind, value, window, now=None):
    """Count one failure of ``value`` (an IP, a client_id) in ``kind``; returns the failures
    in the last ``window`` seconds, this one included."""
    now = now or time.time()
    keys, width = _bucket_keys(kind, value, window, now)
    _increment(keys[0], (int(now // width) + 1) * width + window)
    return _total(keys)


def count(kind, value, window, now=None):
    keys, _ = _bucket_keys(kind, value, window, now or time.time())
    return _total(keys)


# -- failed logins per IP ---------------------------------------------------------------------


def record_failure(ip):
    return record("login", ip, LOGIN_WINDOW)


def failures(ip):
    return count("login", ip, LOGIN_WINDOW)


def is_throttled(ip):
    return failures(ip) > LOGIN_LIMIT


# -- failed client authentications per client and per IP --------------------------------------

_BLOCKS_KEY = "oidc_provider:throttle:blocks"


def _block_key(kind, value):
    return f"block:{kind}:{_digest(value)}"


def _load_blocks():
    """{block key: when it ends (epoch seconds)} of the blocks in force."""
    cache = _cache()
    now = time.time()
    if cache is not None:
        return {k: v for k, v in (cache.get(_BLOCKS_KEY) or {}).items() if v > now}
    rows = ThrottleCount.objects.filter(key__startswith="block:", expires__gt=_aware(now)).values_list("key", "expires")
    return {key: expires.timestamp() for key, expires in rows}


def _blocks():
    return config_cache.get(("throttle.blocks",), _load_blocks)


def _block(key, until):
    cache = _cache()
    if cache is not None:
        # Read-modify-write: a block lost to a concurrent write is set again by the next failure.
        blocks = {k: v for k, v in (cache.get(_BLOCKS_KEY) or {}).items() if v > time.time()}
        blocks[key] = until
        cache.set(_BLOCKS_KEY, blocks, timeout=int(max(blocks.values()) - time.time()) + 1)
    else:
        now = _aware(time.time())
        if not ThrottleCount.objects.filter(key=key).update(count=1, expires=_aware(until)):
            try:
                with transaction.atomic(using=router.db_for_write(ThrottleCount)):
                    ThrottleCount.objects.create(key=key, count=1, expires=_aware(until))
            except IntegrityError:
                ThrottleCount.objects.filter(key=key, expires__lte=now).update(expires=_aware(until))
    # Every process's copy of the blocks is part of the configuration it checks successes
    # against: make them all read it again.
    config_cache.changed()


def _subjects(client_id, ip):
    subjects = []
    if oidc_settings.CLIENT_AUTH_FAILURES_PER_IP:
        subjects.append(("client_auth_ip", ip, oidc_settings.CLIENT_AUTH_FAILURES_PER_IP))
    if oidc_settings.CLIENT_AUTH_FAILURES_PER_CLIENT and client_id:
        subjects.append(("client_auth_client", client_id, oidc_settings.CLIENT_AUTH_FAILURES_PER_CLIENT))
    return subjects


def client_auth_blocked(client_id, meta):
    """Seconds until this client or the address of the request (its META or oauthlib's
    headers) may authenticate again, or 0. Reads only the per-process copy of the blocks: no
    round trip on a success, nor the address's parsing while nothing is blocked."""
    blocks = _blocks()
    if not blocks:
        return 0
    ip = client_ip(meta)
    now = time.time()
    ends = [blocks.get(_block_key(kind, value), 0) for kind, value, _ in _subjects(client_id, ip)]
    return max(0, int(max(ends, default=0) - now + 0.999))


def record_client_auth_failure(client_id, ip):
    """Count a failed client authentication; seconds of the block it started, or 0."""
    window = oidc_settings.CLIENT_AUTH_WINDOW
    now = time.time()
    blocked = 0
    for kind, value, limit in _subjects(client_id, ip):
        if record(kind, value, window, now) > limit:
            _block(_block_key(kind, value), now + window)
            blocked = window
    return blocked


def _count_login_failure(sender, credentials=None, request=None, **kwargs):
    if request is not None:
        record_failure(client_ip(request))


def connect():
    user_login_failed.connect(_count_login_failure, dispatch_uid="oidc_provider.throttle")
