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
statement is a SELECT of its own can carry the version in it (``wanted()``, ``observe()``).

A request whose only statement is the write of its outcome (client credentials: one access
token) skips the read (``assuming()``): it decides on the copy as it stands, and its write
takes effect only while the version is still the one assumed (``assumed_version()``, the
INSERT's own condition). Before it answers anything else, or announces a refusal, it reads
the version (``confirm()``). Either way, when the version moved, ``Changed`` is raised and the
request is run again with the version read as usual.
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
# Per thread: the snapshot already checked against the database in this request.
_local = threading.local()
_version_model = None  # ConfigVersion, given by connect()
_store = None  # what reads its value (read_config_version()), given by connect()


class Changed(Exception):
    """The configuration changed since the version this request assumed: run it again."""


def _read_version():
    committed = not connections[router.db_for_read(_version_model)].in_atomic_block
    return _store.read_config_version(), committed


def version_model(using):
    """The ConfigVersion model, for a statement on database ``using`` to read or compare its
    row's ``value`` (pk 1) in the same round trip; None when it is kept on another database."""
    return _version_model if router.db_for_read(_version_model) == using else None


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
def assuming():
    """Within the block, the request decides on this process's copy without reading its
    version. What it writes must be conditional on ``assumed_version()`` (or call
    ``confirm()`` first), and it must ``confirm()`` before it answers or announces anything
    else; see the module's docstring."""
    _local.assuming, _local.assumed = True, None
    try:
        yield
    finally:
        if _local.assumed is not None or not getattr(_local, "in_request", False):
            _local.checked = None  # not confirmed, or no request to keep it for
        _local.assuming, _local.assumed = False, None


def assumed_version():
    """The version this request assumed and has yet to confirm, or None."""
    return getattr(_local, "assumed", None)


def confirmed():
    """A write conditional on ``assumed_version()`` took effect: the assumption held."""
    _local.assumed = None


def confirm():
    """Read the version if this request assumed one; raise ``Changed`` if it moved."""
    assumed = assumed_version()
    if assumed is None:
        return
    _local.assumed = None
    version, committed = _read_version()
    _adopt(version, committed)
    if version != assumed:
        raise Changed


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


def wanted(using):
    """The ConfigVersion model when this request has yet to read the version and a SELECT of
    its own on database ``using`` can carry it as one more column (then hand the column's
    value to ``observe()``); else None."""
    if not getattr(_local, "in_request", False) or getattr(_local, "checked", None) is not None:
        return None
    return version_model(using)


def observe(version, using):
    """Take the version a column of another SELECT read (see ``wanted()``), as if ``get()`` had read it."""
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


def connect(version_model, watched, store):
    """Wire the receivers: a save or delete of any ``watched`` model writes a new value in
    ``version_model``'s row, which ``store.read_config_version()`` reads (called from
    AppConfig.ready, which has the models)."""
    global _version_model, _store
    _version_model, _store = version_model, store
    for model in watched:
        uid = f"oidc_provider.config_cache.{model._meta.label_lower}"
        post_save.connect(changed, sender=model, dispatch_uid=uid + ".save")
        post_delete.connect(changed, sender=model, dispatch_uid=uid + ".delete")
    request_started.connect(_request_started, dispatch_uid="oidc_provider.config_cache.started")
    request_finished.connect(_request_finished, dispatch_uid="oidc_provider.config_cache.finished")
    setting_changed.connect(forget, dispatch_uid="oidc_provider.config_cache.settings")
