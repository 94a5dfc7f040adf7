"""PostgreSQL whose per-request health check costs no round trip, and whose timestamps
load in C.

Health check: with ``CONN_HEALTH_CHECKS`` Django asks a persistent connection ``SELECT 1`` before the
first query of every request: on the token endpoint, whose whole work is one or two
statements, that is a third of its round trips. A server that ends a connection (restart,
``pg_terminate_backend``, ``idle_session_timeout``) sends its goodbye and closes the socket,
which makes the socket readable; a live, idle connection has nothing to read. So the check
here looks at the socket first and asks the server only when something is waiting there.

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
from django.utils.asyncio import async_unsafe
from psycopg.adapt import AdaptersMap
from psycopg.pq import Format

# psycopg's default loader: its C implementation in psycopg[binary] or psycopg[c].
C_TIMESTAMPTZ_LOADER = psycopg.adapters.get_loader(base.TIMESTAMPTZ_OID, Format.TEXT)
_IN_C = psycopg.pq.__impl__ in ("c", "binary")


class DatabaseWrapper(base.DatabaseWrapper):
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
