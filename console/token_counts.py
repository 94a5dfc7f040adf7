"""Tokens issued per day and grant, for the dashboard's chart.

Writing the day's row once per token would give every token request a second commit, so a
process adds its counts up in memory and writes them, one update per day and grant, at most
once per ``CONSOLE_TOKEN_COUNT_INTERVAL`` seconds (default 1; 0 writes every count at once):
with its first token after the interval, when its dashboard is read, and at exit. Another
process's counts since its last write show once it issues its next token. They are
statistics, not records: the audit log and the token tables are written with the token.
"""

import atexit
import logging
import threading
import time
from collections import Counter

from django.conf import settings
from django.db import DatabaseError, IntegrityError, router, transaction
from django.db.models import F
from django.utils import timezone

from .models import DailyTokenCount

log = logging.getLogger(__name__)

DEFAULT_INTERVAL = 1.0

_lock = threading.Lock()
_pending = Counter()  # (day, grant) -> tokens not yet written
_written_at = float("-inf")  # time.monotonic() of the last write


def interval():
    return float(getattr(settings, "CONSOLE_TOKEN_COUNT_INTERVAL", DEFAULT_INTERVAL))


def count_token(grant):
    """Count one issued token once the current transaction commits."""
    transaction.on_commit(lambda: _add(grant), using=router.db_for_write(DailyTokenCount))


def _add(grant):
    with _lock:
        _pending[(timezone.localdate(), grant)] += 1
        if time.monotonic() - _written_at < interval():
            return
    flush()


def flush():
    """Write this process's pending counts now."""
    global _pending, _written_at
    with _lock:
        pending, _pending = _pending, Counter()
        _written_at = time.monotonic()
    for (day, grant), n in pending.items():
        try:
            _add_to_row(day, grant, n)
        except DatabaseError:
            # Never fail a token response (already committed) over a statistic: keep the
            # count for the next write and say why the dashboard may lag.
            log.warning("Could not write %d %s token count(s) for the dashboard; retrying later.", n, grant, exc_info=True)
            with _lock:
                _pending[(day, grant)] += n


def _add_to_row(day, grant, n):
    """Add n to the (day, grant) row, race-free: the unique constraint settles who creates it."""
    rows = DailyTokenCount.objects.filter(day=day, grant=grant)
    if rows.update(count=F("count") + n):
        return
    try:
        with transaction.atomic(using=router.db_for_write(DailyTokenCount)):
            DailyTokenCount.objects.create(day=day, grant=grant, count=n)
    except IntegrityError:
        rows.update(count=F("count") + n)


atexit.register(flush)
