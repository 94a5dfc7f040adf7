"""PostgreSQL (project.postgresql): persistent connections survive the server ending them,
the per-request health check costs no round trip, and timestamps load with psycopg's C
loader yet denote the same instants as Django's.

With ``CONN_HEALTH_CHECKS`` Django checks a persistent connection before a request's first
query and replaces one the server ended (restart, ``pg_terminate_backend``,
``idle_session_timeout``), so no request fails on a connection that is gone. The engine looks
at the socket instead of sending ``SELECT 1``. These tests watch the wire with libpq's protocol
trace, end real backends with ``pg_terminate_backend`` and make requests after it, in process
and to the live server.
"""

import datetime
import select

import psycopg
import pytest
import requests
from django.conf import settings
from django.db import close_old_connections, connection

from .live import live_provider  # noqa: F401

pytestmark = pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL connections")


def admin_connection():
    params = connection.get_connection_params()
    return psycopg.connect(
        dbname=params["dbname"], host=params.get("host") or None, port=params.get("port") or None,
        user=params.get("user") or None, password=params.get("password") or None, autocommit=True,
    )


def health_check(tmp_path):
    """Run Django's check as a new request does; what it sent to the server (protocol trace)."""
    trace_path = tmp_path / "trace.txt"
    with open(trace_path, "w") as trace:
        pgconn = connection.connection.pgconn
        pgconn.trace(trace.fileno())
        try:
            connection.health_check_done = False
            connection.close_if_health_check_failed()
        finally:
            if connection.connection is not None:
                pgconn.untrace()
    return trace_path.read_text()


def end_backend(pid):
    """pg_terminate_backend, then wait for the backend to be gone (it exits asynchronously):
    the check is for a session the server has ended, as after a restart."""
    with admin_connection() as admin:
        assert admin.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone()[0] is True
        for _ in range(100):
            if not admin.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone():
                return
            admin.execute("SELECT pg_sleep(0.02)")
    raise AssertionError(f"backend {pid} still runs")


def backend_pid():
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def test_persistent_connections_are_health_checked_by_the_projects_engine():
    assert settings.DATABASES["default"]["ENGINE"] == "project.postgresql"
    assert settings.DATABASES["default"]["CONN_MAX_AGE"] > 0
    assert settings.DATABASES["default"]["CONN_HEALTH_CHECKS"] is True


def test_a_live_connection_is_checked_without_a_round_trip(transactional_db, tmp_path):
    pid = backend_pid()
    sent = health_check(tmp_path)
    assert sent == "", f"the health check talked to the server:\n{sent}"
    assert backend_pid() == pid, "a healthy connection was replaced"


def test_a_connection_the_server_ended_is_replaced_before_the_request_uses_it(transactional_db, tmp_path):
    pid = backend_pid()
    end_backend(pid)
    health_check(tmp_path)
    assert connection.connection is None, "the ended connection was kept"
    assert backend_pid() != pid


def test_a_connection_with_something_waiting_is_asked_before_it_is_kept(transactional_db, tmp_path):
    """A notification waiting on a live connection makes the socket readable too: then the
    server is asked (SELECT 1), and a connection that answers is kept."""
    pid = backend_pid()
    with connection.cursor() as cursor:
        cursor.execute("LISTEN oidc_health_check_test")
    with admin_connection() as admin:
        admin.execute("NOTIFY oidc_health_check_test")
    # The server sends the notification after NOTIFY's commit, asynchronously: wait for it.
    readable, _, _ = select.select([connection.connection.fileno()], [], [], 10)
    assert readable, "the notification did not arrive"
    sent = health_check(tmp_path)
    assert "SELECT 1" in sent, sent
    assert backend_pid() == pid
    with connection.cursor() as cursor:
        cursor.execute("UNLISTEN *")


def test_a_token_request_succeeds_after_the_server_ended_the_workers_connection(client, transactional_db):
    """In process: the request boundary (close_old_connections) plus the health check, on a
    request that reads and writes the database (client credentials)."""
    from oidc_provider import policy
    from tests.factories import ApplicationFactory
    from tests.helpers import basic_auth

    app = ApplicationFactory(application_type=policy.SERVICE, redirect_uris="", post_logout_redirect_uris="")
    body = {"grant_type": "client_credentials", "scope": "read"}
    auth = basic_auth(app.client_id, app.plaintext_secret)
    assert client.post("/oidc/token", body, HTTP_AUTHORIZATION=auth).status_code == 200
    end_backend(backend_pid())
    close_old_connections()  # what the server does when a request starts
    response = client.post("/oidc/token", body, HTTP_AUTHORIZATION=auth)
    assert response.status_code == 200, response.content


def test_the_live_server_answers_after_its_database_connections_were_ended(live_provider):  # noqa: F811
    url = live_provider.url("/oidc/.well-known/jwks.json")
    session = requests.Session()
    for _ in range(40):  # every worker thread opens its connection
        assert session.get(url, timeout=15).status_code == 200
    with psycopg.connect(live_provider.postgres.admin_conninfo, autocommit=True) as admin:
        ended = admin.execute(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()", (live_provider.postgres.name,),
        ).fetchone()[0]
        for _ in range(100):  # the backends exit asynchronously
            if not admin.execute(
                "SELECT 1 FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", (live_provider.postgres.name,),
            ).fetchone():
                break
            admin.execute("SELECT pg_sleep(0.02)")
    assert ended >= 1
    statuses = [requests.get(url, timeout=15).status_code for _ in range(60)]
    assert statuses == [200] * 60, live_provider.log()



# -- timestamps load in C (project.postgresql) -------------------------------------


def test_timestamps_load_with_psycopgs_c_loader_as_django_would(db):
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from project.postgresql.base import C_TIMESTAMPTZ_LOADER

    assert settings.DATABASES["default"]["ENGINE"] == "project.postgresql"
    with connection.cursor():  # connected
        pass
    assert psycopg.pq.__impl__ in ("c", "binary"), "psycopg[binary] is a dependency"
    assert connection.connection.adapters.get_loader(1184, psycopg.pq.Format.TEXT) is C_TIMESTAMPTZ_LOADER
    joined = timezone.now().replace(microsecond=123456)
    user = get_user_model().objects.create_user("tz-user", date_joined=joined)
    loaded = get_user_model().objects.get(pk=user.pk).date_joined
    assert loaded == joined
    assert loaded.tzinfo is datetime.timezone.utc  # the object Django's own loader attaches
    # Server-side cursors (QuerySet.iterator()) load the same way.
    assert [u.date_joined for u in get_user_model().objects.filter(pk=user.pk).iterator(chunk_size=1)] == [joined]


def test_a_timestamp_denotes_the_same_instant_whatever_the_sessions_time_zone(db):
    with connection.cursor() as cursor:
        cursor.execute("SELECT TIMESTAMPTZ '2026-12-03 08:00:00+08'")
        utc = cursor.fetchone()[0]
        cursor.execute("SET TIME ZONE 'Asia/Shanghai'")
        try:
            cursor.execute("SELECT TIMESTAMPTZ '2026-12-03 08:00:00+08'")
            shanghai = cursor.fetchone()[0]
        finally:
            cursor.execute("SET TIME ZONE 'UTC'")
    assert utc == shanghai == datetime.datetime(2026, 12, 3, 0, 0, tzinfo=datetime.timezone.utc)
    assert utc.tzinfo is datetime.timezone.utc
