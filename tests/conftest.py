import os
import uuid

import pytest
from django.test import override_settings

from oidc_provider import policy

from . import run_log
from .factories import ApplicationFactory, UserFactory


def pytest_configure(config):
    # Before any test: the run's logs and the secrets it hands out (tests/test_logs.py).
    run_log.install()


def pytest_collection_modifyitems(session, config, items):
    # A test that reads what the whole run did goes after every other test.
    items.sort(key=lambda item: getattr(getattr(item, "obj", None), "runs_last", False))


@pytest.fixture(autouse=True, scope="session")
def _token_counts_written_at_once():
    # The dashboard's token counts are written at once, inside each test's transaction, not
    # left in memory for a later test (tests/test_token_counts.py turns the interval on).
    with override_settings(CONSOLE_TOKEN_COUNT_INTERVAL=0):
        yield


@pytest.fixture(autouse=True, scope="session")
def _store_from_environment():
    # OIDC_TEST_STORE=orm (or fast) runs the suite on that store (oidc_provider.store).
    from django.conf import settings

    name = os.environ.get("OIDC_TEST_STORE")
    if not name:
        yield
        return
    with override_settings(OIDC_PROVIDER={**settings.OIDC_PROVIDER, "STORE": name}):
        yield


@pytest.fixture
def user(db):
    return UserFactory()


@pytest.fixture
def web_app(db):
    return ApplicationFactory(application_type=policy.WEB, grant_types=["authorization_code", "refresh_token"])


@pytest.fixture
def spa_app(db):
    return ApplicationFactory(application_type=policy.SPA, redirect_uris="https://spa.example.com/cb")


@pytest.fixture
def logged_in(client, user):
    client.force_login(user)
    return client


@pytest.fixture
def scratch_database_url(tmp_path):
    """A database of the suite's engine of its own (SQLite file, or a new PostgreSQL or MariaDB
    database), for tests that run ``manage.py migrate`` step by step in a subprocess."""
    url = os.environ.get("DATABASE_URL", "")
    if url.startswith("postgres"):
        yield from scratch_postgresql_database(url)
    elif url.startswith("mysql"):
        yield from scratch_mysql_database(url)
    else:
        yield f"sqlite:///{tmp_path / 'scratch.sqlite3'}"


def scratch_postgresql_database(url):
    import psycopg

    name = f"oidc_scratch_{uuid.uuid4().hex[:8]}"
    admin = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def mysql_admin(url):
    """A connection to the MariaDB server of a ``mysql://`` URL, outside any database."""
    from urllib.parse import unquote, urlsplit

    import MySQLdb

    parts = urlsplit(url)
    return MySQLdb.connect(
        host=parts.hostname or "127.0.0.1", port=parts.port or 3306,
        user=unquote(parts.username or "root"), password=unquote(parts.password or ""),
    )


def scratch_mysql_database(url, collation="utf8mb4_nopad_bin"):
    name = f"oidc_scratch_{uuid.uuid4().hex[:8]}"
    conn = mysql_admin(url)
    try:
        conn.cursor().execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE {collation}")
        yield url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        conn.cursor().execute(f"DROP DATABASE IF EXISTS `{name}`")
        conn.close()
