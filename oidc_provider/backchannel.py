"""Back-channel logout (OpenID Connect Back-Channel Logout 1.0): a signed logout token POSTed
to each application a login session signed into, when the session ends.

Notices are rows, written with the session's end and delivered after its commit by a worker
thread of the process, outside the request: a slow or dead relying party never holds up a
logout. A failed delivery is retried with back-off; ``manage.py oidc_backchannel deliver``
sends what is due from cron as well, so a notice outlives the process that queued it. Of
several workers (threads, processes, nodes), one claims each attempt.
"""

import logging
import threading
import time
import uuid
from datetime import timedelta
from urllib.error import HTTPError, URLError
from urllib.parse import urlencode
from urllib.request import HTTPRedirectHandler, Request, build_opener

from django.db import close_old_connections, connections, transaction
from django.utils import timezone

from . import keys, signals
from .conf import oidc_settings
from .models import LogoutNotice

logger = logging.getLogger(__name__)

EVENT = "http://schemas.openid.net/event/backchannel-logout"
# Seconds to wait after each failed attempt; after the last, the notice is given up.
RETRY_DELAYS = (10, 60, 300, 1800, 7200)
TIMEOUT = 5
# A claimed attempt is the claimant's for this long; then another worker may take it.
LEASE = timedelta(seconds=60)
TOKEN_LIFETIME = 120


def queue(application, session):
    """Queue a logout notice for ``application`` about ``session``; delivered after the commit."""
    from .claims import subject

    LogoutNotice.objects.create(
        application=application, sid=session.sid, subject=subject(session.user), next_attempt_at=timezone.now(),
    )
    transaction.on_commit(wake)


def logout_token(notice):
    """The logout token (Back-Channel Logout 2.4): iss, aud, iat, exp, jti, sub, sid and the
    logout event; never a nonce. Typed logout+jwt, so it cannot pass for an ID token."""
    now = int(time.time())
    claims = {
        "iss": oidc_settings.issuer,
        "aud": notice.application.client_id,
        "iat": now,
        "exp": now + TOKEN_LIFETIME,
        "jti": str(uuid.uuid4()),
        "sub": notice.subject,
        "sid": notice.sid,
        "events": {EVENT: {}},
    }
    return keys.active_key().sign(claims, headers={"typ": "logout+jwt"})


class _NoRedirects(HTTPRedirectHandler):
    # The registered URI is the one to reach: a redirect is an answer, not a new target.
    def redirect_request(self, *args, **kwargs):
        return None


_opener = build_opener(_NoRedirects)


def post(uri, token):
    """POST the logout token; returns (delivered, detail). 200 and 204 are success (2.8)."""
    body = urlencode({"logout_token": token}).encode()
    try:
        request = Request(uri, data=body, method="POST", headers={
            "Content-Type": "application/x-www-form-urlencoded", "Cache-Control": "no-store",
        })
        with _opener.open(request, timeout=TIMEOUT) as response:
            return response.status in (200, 204), f"HTTP {response.status}"
    except HTTPError as e:
        return False, f"HTTP {e.code}"
    except (URLError, OSError) as e:
        return False, str(getattr(e, "reason", e))[:200]
    except Exception as e:  # whatever the relying party answers (a malformed status line...) is its failure
        return False, f"{type(e).__name__}: {e}"[:200]


def _claim(notice):
    """Take this attempt for this worker; False when another worker took it first."""
    now = timezone.now()  # not the batch's: earlier attempts of the batch may have taken a while
    return bool(LogoutNotice.objects.filter(pk=notice.pk, attempts=notice.attempts, delivered_at__isnull=True,
                                            given_up_at__isnull=True, next_attempt_at__lte=now)
                .update(attempts=notice.attempts + 1, next_attempt_at=now + LEASE))


def attempt(notice):
    """One delivery attempt of a claimed notice, its outcome recorded and announced."""
    uri = notice.application.backchannel_logout_uri
    if uri:
        delivered, detail = post(uri, logout_token(notice))
    else:
        delivered, detail = False, "the application no longer has a back-channel logout URI"
    now = timezone.now()
    attempts = notice.attempts + 1
    given_up = not delivered and (attempts > len(RETRY_DELAYS) or not uri)
    changes = {"last_error": "" if delivered else detail}
    if delivered:
        changes["delivered_at"] = now
    elif given_up:
        changes["given_up_at"] = now
    else:
        changes["next_attempt_at"] = now + timedelta(seconds=RETRY_DELAYS[attempts - 1])
    LogoutNotice.objects.filter(pk=notice.pk).update(**changes)
    for name, value in changes.items():
        setattr(notice, name, value)
    notice.attempts = attempts
    signals.backchannel_logout_attempted.send(
        sender=LogoutNotice, notice=notice, delivered=delivered, given_up=given_up, detail=detail,
    )
    return delivered


def deliver_due():
    """Attempt every notice that is due; returns how many were delivered."""
    now = timezone.now()
    due = (LogoutNotice.objects.select_related("application")
           .filter(delivered_at__isnull=True, given_up_at__isnull=True, next_attempt_at__lte=now)
           .order_by("next_attempt_at")[:100])
    delivered = 0
    for notice in due:
        if not _claim(notice):
            continue
        try:
            delivered += attempt(notice)
        except Exception:  # one notice's failure must not hold up the others
            logger.exception("Back-channel logout notice %s could not be attempted.", notice.pk)
    return delivered


def next_due():
    """When the next pending notice is due, or None."""
    return (LogoutNotice.objects.filter(delivered_at__isnull=True, given_up_at__isnull=True)
            .order_by("next_attempt_at").values_list("next_attempt_at", flat=True).first())


# -- the worker thread ---------------------------------------------------------------

_lock = threading.Lock()
_wakeup = threading.Event()
_idle = threading.Event()  # set while the worker waits for the next retry, or is not running
_idle.set()
_worker = None


def wake():
    """Have this process's worker deliver what is due now (started if it is not running)."""
    global _worker
    with _lock:
        _idle.clear()
        _wakeup.set()
        if _worker is None or not _worker.is_alive():
            _worker = threading.Thread(target=_run, name="oidc-backchannel-logout", daemon=True)
            _worker.start()


def wait_idle(timeout=None):
    """Wait until this process's worker has nothing due (it waits for a retry, or stopped)."""
    return _idle.wait(timeout)


def join(timeout=None):
    """Wait for this process's worker to stop (it stops when no notice is pending); for a
    graceful shutdown, and for tests."""
    worker = _worker
    if worker is not None:
        _wakeup.set()
        worker.join(timeout)


def _run():
    try:
        while True:
            _wakeup.clear()
            close_old_connections()  # a connection the database ended is replaced, not reused
            try:
                deliver_due()
                upcoming = next_due()
            except Exception:
                logger.exception("Back-channel logout delivery failed; retrying in a minute.")
                connections.close_all()
                upcoming = timezone.now() + timedelta(seconds=60)
            if upcoming is None:
                with _lock:
                    if not _wakeup.is_set():
                        return
                continue
            wait = (upcoming - timezone.now()).total_seconds()
            if wait > 0:
                with _lock:
                    if not _wakeup.is_set():
                        _idle.set()
                _wakeup.wait(min(wait, RETRY_DELAYS[-1]))
                _idle.clear()
    finally:
        connections.close_all()  # this thread's own
        _idle.set()
