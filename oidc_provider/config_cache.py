"""A per-process copy of what every request reads and only admins change.

Applications, the grant policy, signing keys and AK/SK pairs are read on every token
request but change only when an admin (CLI, console, API) acts. Each process keeps what it
read in memory, tagged with the ``ConfigVersion`` row. Saving or deleting any of those models
writes a new random value there (the receivers below, or ``changed()`` after a bulk
``update()``), and the first lookup of each request reads it back with one primary-key
SELECT, so a change applies from the next request on, in every worker.

The value is random, not a counter: a rolled-back change restores the old value together
with the old rows, so no stale copy can ever match a newer state. A reader that tolerates a
bounded delay (the JWKS) can skip that SELECT with ``recent()``; a request whose first
statement is a SELECT of its own can carry the version in it (``version_sql()``, ``observe()``).
"""

import random
import threading
import time

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
# Per thread: the snapshot already checked against the database in this request.
_local = threading.local()
_version_model = None  # ConfigVersion, given by connect()


def _read_version():
    connection = connections[router.db_for_read(_version_model)]
    committed = not connection.in_atomic_block
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT value FROM {connection.ops.quote_name(_version_model._meta.db_table)} WHERE id = 1")
        row = cursor.fetchone()
    return (row[0] if row else None), committed


def _snapshot():
    checked = getattr(_local, "checked", None)
    if checked is not None:
        return checked
    return _adopt(*_read_version())


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


def version_sql(using):
    """A scalar subquery reading the version, for a request's SELECT on database ``using`` to
    carry as one more column, or None when this request has checked the version already (or
    keeps it elsewhere). Hand the column's value to ``observe()``."""
    if not getattr(_local, "in_request", False) or getattr(_local, "checked", None) is not None:
        return None
    if router.db_for_read(_version_model) != using:
        return None
    connection = connections[using]
    return f"(SELECT value FROM {connection.ops.quote_name(_version_model._meta.db_table)} WHERE id = 1)"


def observe(version, using):
    """Take the version a ``version_sql()`` column read, as if ``get()`` had read it."""
    _adopt(version, not connections[using].in_atomic_block)


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
    value = random.getrandbits(62)
    using = router.db_for_write(_version_model)
    if not _version_model.objects.using(using).filter(pk=1).update(value=value):
        _version_model.objects.using(using).update_or_create(pk=1, defaults={"value": value})
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


def connect(version_model, watched):
    """Wire the receivers: a save or delete of any ``watched`` model writes a new value in
    ``version_model``'s row (called from AppConfig.ready, which has the models)."""
    global _version_model
    _version_model = version_model
    for model in watched:
        uid = f"oidc_provider.config_cache.{model._meta.label_lower}"
        post_save.connect(changed, sender=model, dispatch_uid=uid + ".save")
        post_delete.connect(changed, sender=model, dispatch_uid=uid + ".delete")
    request_started.connect(_request_started, dispatch_uid="oidc_provider.config_cache.started")
    request_finished.connect(_request_finished, dispatch_uid="oidc_provider.config_cache.finished")
    setting_changed.connect(forget, dispatch_uid="oidc_provider.config_cache.settings")
