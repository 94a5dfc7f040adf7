"""A per-process copy of what every request reads and only admins change.

Applications, the grant policy, signing keys and AK/SK pairs are read on every token
request but change only when an admin (CLI, console, API) acts. Each process keeps what it
read in memory, tagged with the ``ConfigVersion`` row. Saving or deleting any of those models
writes a new random value there (the receivers below, or ``changed()`` after a bulk
``update()``), and the first lookup of each request reads it back with one primary-key
SELECT (tens of microseconds), so a change still applies on the next request in every
worker (CONTRACT §5: "at the moment of the request").

The value is random, not a counter: a rolled-back change restores the old value together
with the old rows, so no stale copy can ever match a newer state.

A request whose first query is a SELECT of its own (a token, a code's Grant) reads the value
in that statement instead (``version_sql()``/``observe()``), one round trip for both. A
reader that tolerates a bounded delay (the JWKS) can skip that SELECT with ``recent()``.

A request whose only statement is the write of its outcome (client credentials: one access
token) can do without the read altogether (``assuming()``): it goes on with the copy as it
stands, and its write takes effect only if the version is still the one assumed (the
INSERT's own condition, see ``statements.insert()``); anything else it answers, or announces,
comes after ``confirm()``. When the version moved, ``Changed`` is raised and the caller runs
the request again, on the version read as usual.
"""

import random
import threading
import time
from contextlib import contextmanager

from django.core.signals import request_finished, request_started
from django.db import connections, router
from django.db.models.signals import post_delete, post_save
from django.test.signals import setting_changed

MAX_ENTRIES = 10_000


class _Snapshot:
    __slots__ = ("confirmed_at", "entries", "version")

    def __init__(self, version):
        self.version = version
        self.entries = {}
        # time.monotonic() of the last read that found this version committed, outside any
        # transaction: one read inside a transaction may yet be rolled back.
        self.confirmed_at = None


_current = _Snapshot(None)
# Per thread: the snapshot already checked against the database in this request, and the
# version assumed for it without a read (see assuming()), until that is confirmed.
_local = threading.local()


class Changed(Exception):
    """The configuration changed since the version this request assumed: run it again."""


def _read_version():
    from .models import ConfigVersion
    from .statements import fetch_one, read_first

    connection = connections[router.db_for_read(ConfigVersion)]
    sql = _version_select(connection)
    committed = not connection.in_atomic_block
    # Often the request's first query: read_first lets it stand for the health check.
    row = read_first(connection, lambda: fetch_one(connection, sql))
    return (row[0] if row else None), committed


def _version_select(connection):
    from .models import ConfigVersion

    return f"SELECT value FROM {connection.ops.quote_name(ConfigVersion._meta.db_table)} WHERE id = 1"


def version_sql(connection, using):
    """A scalar subquery of the version, for a reader on database ``using`` to add to its own
    SELECT while this request has yet to read it (``observe()`` then takes the value): one
    round trip for both. None when there is nothing to read or it lives elsewhere."""
    from .models import ConfigVersion

    if getattr(_local, "checked", None) is not None or router.db_for_read(ConfigVersion) != using:
        return None
    return f"({_version_select(connection)})"


def observe(version, committed):
    """The version as read alongside another query (see ``version_sql()``)."""
    _adopt(version, committed)


def _snapshot():
    checked = getattr(_local, "checked", None)
    if checked is not None:
        return checked
    current = _current  # once: another thread may replace it meanwhile
    if getattr(_local, "assuming", False) and current.version is not None:
        _local.checked, _local.assumed = current, current.version
        return current
    return _adopt(*_read_version())


@contextmanager
def assuming(enabled=True):
    """Within the block, the request's copy is this process's current one, its version not
    read (unless there is none yet). The block must not answer or announce anything that
    depends on the copy before its write checked the version or ``confirm()`` did."""
    if not enabled:
        yield
        return
    _local.assuming, _local.assumed = True, None
    try:
        yield
    finally:
        if _local.assumed is not None or not getattr(_local, "in_request", False):
            _local.checked = None  # not confirmed, or no request to keep it for
        _local.assuming, _local.assumed = False, None


def assumed():
    """The version this request assumed and has yet to confirm, or None."""
    return getattr(_local, "assumed", None)


def confirmed(committed):
    """A write conditioned on ``assumed()`` took effect: the assumption held."""
    snapshot, _local.assumed = _local.checked, None
    if committed and snapshot is not None and snapshot is _current:
        snapshot.confirmed_at = time.monotonic()


def refuted():
    """A write conditioned on ``assumed()`` found another version: raise ``Changed``."""
    _local.assumed = _local.checked = None
    raise Changed


def confirm():
    """Check the version this request assumed (a no-op when it assumed none); ``Changed`` if
    it moved."""
    if getattr(_local, "assumed", None) is None:
        return
    version, committed = _read_version()
    if version != _local.assumed:
        _local.assumed = _local.checked = None
        _adopt(version, committed)
        raise Changed
    confirmed(committed)


def _adopt(version, committed):
    global _current
    snapshot = _current
    if version is None:
        # No version row (a flushed test database): nothing can be trusted, read through.
        snapshot = _Snapshot(None)
    elif snapshot.version != version:
        snapshot = _current = _Snapshot(version)
    if committed and version is not None:
        snapshot.confirmed_at = time.monotonic()
    if getattr(_local, "in_request", False):
        _local.checked = snapshot
    return snapshot


def get(key, load):
    """The cached value for ``key``, or ``load()``'s result, kept while nothing changes.

    ``None`` is not kept, so unknown client IDs cannot fill the cache.
    """
    snapshot = _snapshot()
    if snapshot.version is None:
        return load()
    try:
        return snapshot.entries[key]
    except KeyError:
        pass
    value = load()
    if value is not None and len(snapshot.entries) < MAX_ENTRIES:
        snapshot.entries[key] = value
    return value


def recent(key, max_age):
    """The value kept for ``key`` if this process confirmed its version less than ``max_age``
    seconds ago, without reading the version again; else None (then call ``get()``).

    Only for readers that tolerate another process's change arriving up to ``max_age`` late.
    """
    snapshot = _current
    confirmed_at = snapshot.confirmed_at
    if confirmed_at is None or time.monotonic() - confirmed_at >= max_age:
        return None
    return snapshot.entries.get(key)


def changed(**kwargs):
    """Mark the configuration changed, for every process (call it after a bulk ``update()``)."""
    from .models import ConfigVersion

    value = random.getrandbits(62)
    using = router.db_for_write(ConfigVersion)
    if not ConfigVersion.objects.using(using).filter(pk=1).update(value=value):
        ConfigVersion.objects.using(using).update_or_create(pk=1, defaults={"value": value})
    forget()


def forget(**kwargs):
    """Drop this process's copy (settings changed in a test, or the configuration did)."""
    global _current
    _current = _Snapshot(None)
    _local.checked = None


def _request_started(**kwargs):
    _local.in_request = True
    _local.checked = None


def _request_finished(**kwargs):
    _local.in_request = False
    _local.checked = None


def connect():
    """Wire the receivers (from AppConfig.ready, once the models are loaded)."""
    from oauth2_provider.models import get_application_model

    from .models import AccessAccount, AccessKey, GrantPolicy, SigningKey

    for model in (get_application_model(), GrantPolicy, SigningKey, AccessAccount, AccessKey):
        uid = f"oidc_provider.config_cache.{model._meta.label_lower}"
        post_save.connect(changed, sender=model, dispatch_uid=uid + ".save")
        post_delete.connect(changed, sender=model, dispatch_uid=uid + ".delete")
    request_started.connect(_request_started, dispatch_uid="oidc_provider.config_cache.started")
    request_finished.connect(_request_finished, dispatch_uid="oidc_provider.config_cache.finished")
    setting_changed.connect(forget, dispatch_uid="oidc_provider.config_cache.settings")
