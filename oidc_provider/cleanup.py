"""Deleting what has expired: tokens, codes and the records kept beside them.

What is deleted is what django-oauth-toolkit's ``clear_expired`` deletes, by the same rules,
plus the provider's records of redeemed codes. How differs, for
tables of many millions of rows that are being written while it runs:

* Each kind is walked once in primary-key order, a window of ``batch_size`` keys at a time,
  each window its own short transaction: each row is read once, where DOT counts the whole
  backlog before every batch. A token request waits for at most one batch's row locks,
  never for the whole clean-up.
* A batch's DELETE repeats the rule, so a row that stopped qualifying between the read and
  the delete is kept.
* Stopped at any point (Ctrl-C, a time limit, a deploy), what it deleted stays deleted and
  the next run goes on with the rest: there is nothing to resume by hand.

``clear_expired`` is what ``manage.py cleartokens`` runs. Where no cron exists,
``OIDC_PROVIDER["CLEAR_EXPIRED_EVERY"]`` (seconds) runs it in the server's own processes:
``maybe_run_periodic`` is then called on each request (and only then: unset, requests pay
nothing) and starts a clean-up thread when one is due, and a conditional UPDATE of the one
``PeriodicRun`` row lets exactly one process of all the nodes run each one.
"""

import logging
import threading
import time
from dataclasses import dataclass
from datetime import timedelta

from django.core.exceptions import ImproperlyConfigured
from django.core.signals import request_started
from django.db import close_old_connections, connections, models, router, transaction
from django.db.models.signals import post_delete, pre_delete
from django.utils import timezone
from oauth2_provider.models import (
    get_access_token_model,
    get_grant_model,
    get_id_token_model,
    get_refresh_token_model,
    refresh_token_expire_timedelta,
)
from oauth2_provider.settings import oauth2_settings

from .conf import oidc_settings
from .models import PeriodicRun, RedeemedCode

JOB = "clear_expired"
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Kind:
    """One kind of expired row: its label and the rows of ``model`` that qualify."""

    label: str
    model: type
    expired: models.Q


def kinds(now=None):
    """The kinds, in the order they must go: refresh tokens before the access tokens they
    hold on to, access tokens before their ID tokens."""
    now = now or timezone.now()
    refresh_expire_at = None
    refresh_revoked_at = now
    grace = oauth2_settings.REFRESH_TOKEN_GRACE_PERIOD_SECONDS
    if grace:
        if not isinstance(grace, int | float) or grace < 0:
            raise ImproperlyConfigured("REFRESH_TOKEN_GRACE_PERIOD_SECONDS must be a number of seconds, not negative")
        refresh_revoked_at = now - timedelta(seconds=grace)
    idle = refresh_token_expire_timedelta()
    if idle:
        refresh_expire_at = now - idle
    if oauth2_settings.REFRESH_TOKEN_REUSE_PROTECTION:
        # A rotated (revoked) refresh token is how a replay is recognised and its family
        # revoked: it stays as long as the family could be used.
        refresh_revoked_at = refresh_expire_at

    refresh, access = get_refresh_token_model(), get_access_token_model()
    result = []
    if refresh_revoked_at:
        result.append(Kind("revoked refresh tokens", refresh, models.Q(revoked__lte=refresh_revoked_at)))
    # Refresh tokens whose access token was deleted out of band can mint no more tokens legitimately.
    result.append(Kind("orphaned refresh tokens", refresh, models.Q(revoked__isnull=True, access_token__isnull=True)))
    if refresh_expire_at:
        # Idle: unused for the idle lifetime since its last access token expired.
        result.append(Kind("idle refresh tokens", refresh,
                           models.Q(revoked__isnull=True, access_token__expires__lte=refresh_expire_at)))
    result += [
        Kind("expired access tokens", access, models.Q(refresh_token__isnull=True, expires__lt=now)),
        Kind("expired ID tokens", get_id_token_model(), models.Q(access_token__isnull=True, expires__lt=now)),
        Kind("expired authorization codes", get_grant_model(), models.Q(expires__lt=now)),
        # A code lives AUTHORIZATION_CODE_EXPIRE_SECONDS from its issue and is redeemed after
        # it, so an older record is of a code that would have expired unspent: a replay of it
        # is refused as unknown, with nothing left to revoke (node oidc-provider keeps
        # consumed codes as long).
        Kind("expired redeemed-code records", RedeemedCode,
             models.Q(redeemed_at__lt=now - timedelta(seconds=oauth2_settings.AUTHORIZATION_CODE_EXPIRE_SECONDS))),
    ]
    return result


def clear_kind(kind, *, batch_size, pause=0.0, deadline=None, progress=None):
    """Delete ``kind``'s rows, batch by batch; (rows deleted, finished). ``progress(kind,
    deleted)`` is called after each batch. Past ``deadline`` (a ``time.monotonic()``), it
    stops after the batch in progress.

    A batch is a window of ``batch_size`` consecutive keys, so it holds at most that many
    rows and the database reads it by a range of its primary key index: asked for "the next
    n expired rows" instead, PostgreSQL may join the whole table to find them, every time.
    """
    if not isinstance(kind.model._meta.pk, models.IntegerField):
        raise ImproperlyConfigured(f"The clean-up walks integer primary keys; {kind.model._meta.label}'s is not one.")
    db = router.db_for_write(kind.model)
    rows = kind.model.objects.using(db).filter(kind.expired)
    bounds = kind.model._base_manager.using(db).aggregate(first=models.Min("pk"), last=models.Max("pk"))
    if bounds["first"] is None:
        return 0, True
    deleted, start = 0, bounds["first"] - 1
    while start < bounds["last"]:
        if deadline is not None and time.monotonic() >= deadline:
            return deleted, False
        stop = start + batch_size
        with transaction.atomic(using=db):
            gone = _delete(rows.filter(pk__gt=start, pk__lte=stop))
        deleted, start = deleted + gone, stop
        if gone:
            if progress is not None:
                progress(kind, deleted)
            if pause:
                time.sleep(pause)
    return deleted, True


def _delete(batch):
    """Delete the rows of ``batch`` (a queryset that repeats the rule); the number deleted.

    ``QuerySet.delete()`` would load every row as a model instance and delete them a hundred
    keys per statement. Where nobody listens for the deletion of these rows, what it would
    do besides is done here first: the foreign keys pointing at them are set to NULL where
    the relation says so. Then one DELETE. A row another row still depends on in any other
    way takes the collector's way, which knows every rule.
    """
    model = batch.model
    if any(signal.has_listeners(model) for signal in (pre_delete, post_delete)):
        return batch.only("pk").delete()[1].get(model._meta.label, 0)
    keys = batch.values("pk")
    for relation in model._meta.related_objects:
        referring = relation.related_model._base_manager.using(batch.db).filter(**{f"{relation.field.name}__in": keys})
        if getattr(relation, "on_delete", None) is models.SET_NULL:
            referring.update(**{relation.field.name: None})
        elif getattr(relation, "on_delete", None) is not models.DO_NOTHING and referring.exists():
            return batch.only("pk").delete()[1].get(model._meta.label, 0)
    return batch._raw_delete(batch.db)


def clear_expired(*, batch_size=None, pause=None, max_seconds=None, progress=None):
    """Delete every kind's expired rows; ({label: rows deleted}, finished).

    Under ``max_seconds``, each kind gets an equal share of the time left when its turn
    comes (what one leaves unused goes to those after it), so a big table early in the
    order cannot keep the later kinds from ever being cleaned."""
    batch_size = batch_size or oauth2_settings.CLEAR_EXPIRED_TOKENS_BATCH_SIZE
    pause = oauth2_settings.CLEAR_EXPIRED_TOKENS_BATCH_INTERVAL if pause is None else pause
    deadline = time.monotonic() + max_seconds if max_seconds else None
    counts, finished = {}, True
    remaining = kinds()
    for index, kind in enumerate(remaining):
        share = None
        if deadline is not None:
            share = time.monotonic() + (deadline - time.monotonic()) / (len(remaining) - index)
        counts[kind.label], done = clear_kind(kind, batch_size=batch_size, pause=pause, deadline=share, progress=progress)
        finished = finished and done
    return counts, finished


# -- in the server's processes, where there is no cron --------------------------------------

_lock = threading.Lock()
_running = None
_next_check = 0.0


def _claim(every):
    """Whether this process won the clean-up that is due (the one row's conditional UPDATE)."""
    now = timezone.now()
    PeriodicRun.objects.get_or_create(name=JOB, defaults={"due_at": now})
    return bool(PeriodicRun.objects.filter(name=JOB, due_at__lte=now).update(due_at=now + timedelta(seconds=every)))


def _run(every):
    try:
        close_old_connections()
        if _claim(every):
            clear_expired(max_seconds=every)
    except Exception:
        # The next request after a minute tries again; the server goes on serving meanwhile.
        logger.exception("The periodic clean-up of expired tokens failed; it will be tried again.")
    finally:
        connections.close_all()  # this thread's own


def _period():
    every = oidc_settings.CLEAR_EXPIRED_EVERY
    if isinstance(every, bool) or not isinstance(every, int | float) or every <= 0:
        return None  # off, or not a period (system check E017 says so)
    return every


def schedule(**kwargs):
    """Have requests start the periodic clean-up if CLEAR_EXPIRED_EVERY is set, and not
    otherwise; at start-up and whenever the settings change."""
    if kwargs.get("setting", "OIDC_PROVIDER") != "OIDC_PROVIDER":
        return
    if _period():
        request_started.connect(maybe_run_periodic, dispatch_uid="oidc_provider.clear_expired")
    else:
        request_started.disconnect(dispatch_uid="oidc_provider.clear_expired")


def maybe_run_periodic(**kwargs):
    """``request_started`` receiver: every so often, start a clean-up thread if one is due."""
    global _running, _next_check
    every = _period()
    if every is None:
        return
    now = time.monotonic()
    if now < _next_check:
        return
    with _lock:
        if now < _next_check or (_running is not None and _running.is_alive()):
            return
        # Ask the database at most once a minute per process, whatever the traffic.
        _next_check = now + min(every, 60)
        _running = threading.Thread(target=_run, args=(every,), name="oidc-clear-expired", daemon=True)
        _running.start()


def join(timeout=None):
    """Wait for this process's clean-up thread, if one runs (for tests and shutdown)."""
    running = _running
    if running is not None:
        running.join(timeout)
