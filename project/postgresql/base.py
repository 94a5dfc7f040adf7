"""PostgreSQL whose per-request health check costs no round trip, and whose timestamps
load in C.

Health check: with ``CONN_HEALTH_CHECKS`` Django asks a persistent connection ``SELECT 1`` before the
first query of every request: on the token endpoint, whose whole work is one or two
statements, that is a third of its round trips. A server that ends a connection (restart,
``pg_terminate_backend``, ``idle_session_timeout``) sends its goodbye and closes the socket,
which makes the socket readable; a live, idle connection has nothing to read. So the check
here looks at the socket first and asks the server only when something is waiting there.

Retry: the socket can look healthy at the check and the server end the session an instant
later (``pg_terminate_backend`` signals the backend and returns before it exits). The
request's first statement then fails on a connection that is gone; when that statement is a
read outside a transaction, the engine connects again and runs it once more (see
``_RetryOnceWhenEnded``).

Timestamps: Django registers its own ``timestamptz`` loader, a Python subclass of
psycopg's, so that values come back in its connection time zone. Where that zone is UTC
(``USE_TZ``, no database ``TIME_ZONE``), Django sets the session's ``TimeZone`` to UTC and
psycopg's own C loader returns the same values (``datetime.timezone.utc``, the very object
Django's attaches), at a tenth of the cost: a token row and its user carry five timestamps,
some 40 µs of every userinfo, introspection and code exchange.
"""

import datetime
import select
from functools import lru_cache

import psycopg
from django.db.backends.postgresql import base
from django.db.backends.postgresql.psycopg_any import get_adapters_template
from django.db.backends.utils import CursorDebugWrapper, CursorWrapper
from django.db.utils import InterfaceError, OperationalError
from django.utils.asyncio import async_unsafe
from psycopg.adapt import AdaptersMap
from psycopg.pq import Format

# psycopg's default loader: its C implementation in psycopg[binary] or psycopg[c].
C_TIMESTAMPTZ_LOADER = psycopg.adapters.get_loader(base.TIMESTAMPTZ_OID, Format.TEXT)
_IN_C = psycopg.pq.__impl__ in ("c", "binary")


class _RetryOnceWhenEnded:
    """A cursor that runs the request's first statement again, once, on a new connection,
    when the server had ended the session (restart, ``pg_terminate_backend``).

    Safe because it is limited to a SELECT on a connection checked at the start of this
    request and not used through Django's cursor since, in autocommit outside any atomic
    block: with no transaction open, whatever the request did before is committed and nothing
    half-done goes with the lost session; and a read changes nothing, so running it again is
    the same as running it once. Any other statement's error is raised as before.
    """

    def _execute(self, sql, params, *ignored_wrapper_args):
        db = self.db
        armed, db.retry_armed = db.retry_armed, False
        if not (armed and db.get_autocommit() and not db.in_atomic_block and _is_read(sql)):
            return super()._execute(sql, params, *ignored_wrapper_args)
        try:
            return super()._execute(sql, params, *ignored_wrapper_args)
        except (OperationalError, InterfaceError) as error:
            if not db.ended_by_server(error):
                raise
        db.close()
        db.connect()
        self.cursor = db.create_cursor()
        return super()._execute(sql, params, *ignored_wrapper_args)


class _RetryingCursor(_RetryOnceWhenEnded, CursorWrapper):
    pass


class _RetryingDebugCursor(_RetryOnceWhenEnded, CursorDebugWrapper):
    pass


def _is_read(sql):
    return sql.lstrip()[:6].upper() == "SELECT" and "FOR UPDATE" not in sql.upper()


class DatabaseWrapper(base.DatabaseWrapper):
    retry_armed = False

    def close_if_health_check_failed(self):
        # The check runs once per request, before its first statement: that statement may
        # be retried (see _RetryOnceWhenEnded).
        if self.connection is not None and self.health_check_enabled and not self.health_check_done:
            self.retry_armed = True
        super().close_if_health_check_failed()

    def ended_by_server(self, error):
        # The server's goodbye (57P01 admin shutdown, 57P02 crash shutdown, 57P03 cannot
        # connect now), a lost connection (class 08), or a connection psycopg saw close.
        sqlstate = getattr(error.__cause__, "sqlstate", None) or ""
        if sqlstate in ("57P01", "57P02", "57P03") or sqlstate.startswith("08"):
            return True
        connection = self.connection
        return connection is None or connection.closed or getattr(connection, "broken", False)

    def make_cursor(self, cursor):
        return _RetryingCursor(cursor, self)

    def make_debug_cursor(self, cursor):
        return _RetryingDebugCursor(cursor, self)

    def get_connection_params(self):
        params = super().get_connection_params()
        if _IN_C and self.timezone is datetime.timezone.utc:  # USE_TZ, no database TIME_ZONE
            params["context"] = _adapters_loading_timestamps_in_c()
        return params

    @async_unsafe
    def create_cursor(self, name=None):
        if self.connection.adapters.get_loader(base.TIMESTAMPTZ_OID, Format.TEXT) is not C_TIMESTAMPTZ_LOADER:
            return super().create_cursor(name)
        # Django's, without its check of the loader's time zone (psycopg's loader follows
        # the session's, which Django set).
        if name is None:
            return self.connection.cursor()
        if self.settings_dict["OPTIONS"].get("server_side_binding") is True:
            return self.connection.cursor(name, scrollable=False, withhold=self.connection.autocommit)
        return base.ServerSideCursor(self.connection, name=name, scrollable=False, withhold=self.connection.autocommit)

    def is_usable(self):
        connection = self.connection
        if connection is None or connection.closed or getattr(connection, "broken", False):
            return False
        try:
            waiting = _readable(connection.fileno())
        except (OSError, ValueError):
            return False
        # Usually the server's goodbye and end of file; a notice or notification is possible
        # too, so the round trip decides.
        return super().is_usable() if waiting else True


def _readable(fd):
    if hasattr(select, "poll"):
        poller = select.poll()
        poller.register(fd, select.POLLIN | select.POLLPRI)
        return bool(poller.poll(0))
    return bool(select.select([fd], [], [], 0)[0])


@lru_cache
def _adapters_loading_timestamps_in_c():
    adapters = AdaptersMap(get_adapters_template(True, datetime.timezone.utc))
    adapters.register_loader("timestamptz", C_TIMESTAMPTZ_LOADER)
    return adapters
