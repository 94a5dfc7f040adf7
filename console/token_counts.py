"""Tokens issued per day and grant, for the dashboard: counted in memory, written at most once a second.

Writing the day's row once per token made every grant pay for a second commit (on
PostgreSQL a second WAL flush, about a third of a client-credentials request). A process
now adds its counts up in memory and writes them with one upsert per (day, grant):

- at once when the last write is older than ``CONSOLE_TOKEN_COUNT_INTERVAL`` seconds
  (default 1), so at low traffic every token is written as it is issued;
- otherwise by a timer when the interval is up, so under load the dashboard of another
  process is at most that far behind;
- before this process reads the counts (:func:`flush` from the dashboard), and at exit.

``CONSOLE_TOKEN_COUNT_INTERVAL = 0`` writes every count at once (the test suite does).
A process killed outright loses at most its last interval's counts: they are statistics,
not records (the audit log and the token tables are written in the token's transaction).
"""

import atexit
import logging
import os
import threading
import time
from collections import Counter

from django.conf import settings
from django.db import DatabaseError, IntegrityError, connections, router, transaction
from django.db.models import F
from django.utils import timezone

from .models import DailyTokenCount

log = logging.getLogger(__name__)

DEFAULT_INTERVAL = 1.0


class TokenCounter:
    def __init__(self):
        self._lock = threading.Lock()
        self._pending = Counter()  # (day, grant) -> tokens not yet written
        self._written_at = float("-inf")  # time.monotonic() of the last write
        self._timer = None

    @staticmethod
    def interval():
        return float(getattr(settings, "CONSOLE_TOKEN_COUNT_INTERVAL", DEFAULT_INTERVAL))

    def add(self, grant, day=None):
        """Count one issued token; called after the token's transaction commits."""
        key = (day or timezone.localdate(), grant)
        interval = self.interval()
        with self._lock:
            self._pending[key] += 1
            wait = self._written_at + interval - time.monotonic()
            if wait > 0:
                if self._timer is None:
                    self._timer = threading.Timer(wait, self._flush_from_timer)
                    self._timer.daemon = True
                    self._timer.start()
                return
        self.flush()

    def flush(self):
        """Write every pending count now (one upsert per day and grant)."""
        with self._lock:
            pending, self._pending = self._pending, Counter()
            self._written_at = time.monotonic()
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
        for (day, grant), n in pending.items():
            try:
                _add_tokens(day, grant, n)
            except DatabaseError:
                # Never fail a token response (already committed) over a statistic: keep the
                # count for the next write and say why the dashboard may lag.
                log.warning("Could not write %d %s token count(s) for the dashboard; retrying later.", n, grant, exc_info=True)
                with self._lock:
                    self._pending[(day, grant)] += n

    def _flush_from_timer(self):
        with self._lock:
            self._timer = None
        try:
            self.flush()
        finally:
            # The timer's thread opened its own connection; don't leave it to the garbage collector.
            connections[router.db_for_write(DailyTokenCount)].close()

    def _forget(self):
        # A forked child starts with its parent's memory: the parent writes those counts.
        self._lock = threading.Lock()
        self._pending = Counter()
        self._timer = None


counter = TokenCounter()
atexit.register(counter.flush)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=counter._forget)


def count_token(grant, day=None):
    """Count one issued token for the dashboard once the current transaction commits."""
    transaction.on_commit(lambda: counter.add(grant, day), using=router.db_for_write(DailyTokenCount))


def flush():
    counter.flush()


def _add_tokens(day, grant, n):
    """Add n to the (day, grant) row, race-free on every backend (an upsert on SQLite and PostgreSQL)."""
    using = router.db_for_write(DailyTokenCount)
    connection = connections[using]
    if connection.vendor in ("sqlite", "postgresql"):
        table = connection.ops.quote_name(DailyTokenCount._meta.db_table)
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table} (day, {connection.ops.quote_name('grant')}, count) VALUES (%s, %s, %s) "  # noqa: S608
                f"ON CONFLICT (day, {connection.ops.quote_name('grant')}) DO UPDATE SET count = {table}.count + excluded.count",
                [day, grant, n],
            )
        return
    rows = DailyTokenCount.objects.using(using).filter(day=day, grant=grant)
    if not rows.update(count=F("count") + n):
        try:
            with transaction.atomic(using=using):
                DailyTokenCount.objects.using(using).create(day=day, grant=grant, count=n)
        except IntegrityError:
            rows.update(count=F("count") + n)
