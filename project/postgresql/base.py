"""PostgreSQL whose per-request health check costs no round trip.

With ``CONN_HEALTH_CHECKS`` Django asks a persistent connection ``SELECT 1`` before the
first query of every request: on the token endpoint, whose whole work is one or two
statements, that is a third of its round trips. A server that ends a connection (restart,
``pg_terminate_backend``, ``idle_session_timeout``) sends its goodbye and closes the socket,
which makes the socket readable; a live, idle connection has nothing to read. So the check
here looks at the socket first and asks the server only when something is waiting there.
"""

import select

from django.db.backends.postgresql import base


class DatabaseWrapper(base.DatabaseWrapper):
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
