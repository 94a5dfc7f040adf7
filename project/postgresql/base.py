"""Django's PostgreSQL engine, with a health check that costs no round trip and timestamps
loaded by psycopg's C loader.

Health check: with ``CONN_HEALTH_CHECKS`` Django sends a persistent connection ``SELECT 1``
before the first query of every request; on the token endpoint, whose own work is one or two
statements, that is a third of its round trips. A server that ends a session (restart,
``pg_terminate_backend``, ``idle_session_timeout``) sends its goodbye and closes the socket,
which makes the socket readable, while a live idle connection has nothing to read: so the
check looks at the socket and asks the server only when something is waiting there.

Timestamps: Django registers its own ``timestamptz`` loader, a Python subclass of psycopg's, so that
values come back in its connection time zone. Where that zone is UTC (``USE_TZ``, no database
``TIME_ZONE``), Django sets the session's ``TimeZone`` to UTC and psycopg's own loader,
written in C, returns the same values with the very ``tzinfo`` Django's attaches
(``datetime.timezone.utc``). A token row and its user carry several timestamps: read on every
userinfo, introspection and code exchange, they make the Python loader a visible share of
those requests.
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
    def close_if_health_check_failed(self):
        if self.connection is None or not self.health_check_enabled or self.health_check_done:
            return
        if _quiet(self.connection):
            self.health_check_done = True
            return
        super().close_if_health_check_failed()  # closed, broken or something to read: SELECT 1 decides

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


def _quiet(connection):
    """Whether a connection psycopg still holds open has nothing waiting on its socket."""
    if connection.closed or connection.broken:
        return False
    try:
        fd = connection.fileno()
    except (psycopg.Error, OSError, ValueError):
        return False
    if hasattr(select, "poll"):
        poller = select.poll()
        poller.register(fd, select.POLLIN | select.POLLPRI)
        return not poller.poll(0)
    return not select.select([fd], [], [], 0)[0]


@lru_cache
def _adapters_loading_timestamps_in_c():
    adapters = AdaptersMap(get_adapters_template(True, datetime.timezone.utc))
    adapters.register_loader("timestamptz", C_TIMESTAMPTZ_LOADER)
    return adapters
