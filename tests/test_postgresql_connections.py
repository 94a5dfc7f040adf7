"""PostgreSQL: persistent connections survive the server ending them, and timestamps load
with psycopg's C loader (project.postgresql) yet denote the same instants as Django's.

With ``CONN_HEALTH_CHECKS`` Django checks a persistent connection before a request's first
query and replaces one the server ended (restart, ``pg_terminate_backend``,
``idle_session_timeout``), so no request fails on a connection that is gone. These tests end
real backends with ``pg_terminate_backend`` and make requests after it, in process and to the
live server.
"""

import datetime

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


def health_check():
    """Django's check, as the start of a new request runs it."""
    connection.health_check_done = False
    connection.close_if_health_check_failed()


def test_persistent_connections_are_health_checked():
    assert settings.DATABASES["default"]["CONN_MAX_AGE"] > 0
    assert settings.DATABASES["default"]["CONN_HEALTH_CHECKS"] is True


def test_a_connection_the_server_ended_is_replaced_before_the_request_uses_it(transactional_db):
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    with admin_connection() as admin:
        assert admin.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone()[0] is True
        for _ in range(50):  # the backend exits asynchronously
            if not admin.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone():
                break
            admin.execute("SELECT pg_sleep(0.02)")
    health_check()
    assert connection.connection is None, "the ended connection was kept"
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        assert cursor.fetchone()[0] != pid


def test_requests_succeed_after_the_server_ended_every_connection(client, transactional_db):
    """In process: the request boundary (close_old_connections) plus the health check."""
    assert client.get("/oidc/.well-known/openid-configuration").status_code == 200
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    with admin_connection() as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
    close_old_connections()  # what the server does when a request starts
    assert client.get("/oidc/.well-known/openid-configuration").status_code == 200


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
