"""Identifiers match only themselves, on every database (RFC 6749 §2.2: a client identifier is
a unique string; RFC 3986 §6.2.1: redirect URIs compare character for character).

MariaDB's and MySQL's default collations ignore case, accents and trailing spaces, under
which "ABC" would find the client "abc". The project's settings create the test database
with a binary, no-pad collation, and its check project.E001 refuses, at ``manage.py
migrate``, a production database without one.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection

from oidc_provider import policy
from tests.conftest import scratch_mysql_database
from tests.factories import ApplicationFactory
from tests.helpers import basic_auth

REPO = Path(__file__).resolve().parent.parent
on_mariadb = pytest.mark.skipif(connection.vendor != "mysql", reason="MariaDB and MySQL collations")


@pytest.fixture
def service_app(db):
    return ApplicationFactory(
        application_type=policy.SERVICE, client_id="exact-client", redirect_uris="", post_logout_redirect_uris="",
    )


def client_credentials(client, client_id, secret):
    return client.post("/oidc/token", {"grant_type": "client_credentials"}, HTTP_AUTHORIZATION=basic_auth(client_id, secret))


def test_the_client_id_itself_gets_a_token(client, service_app):
    response = client_credentials(client, "exact-client", service_app.plaintext_secret)
    assert response.status_code == 200, response.content


@pytest.mark.parametrize("lookalike", ["EXACT-CLIENT", "Exact-client", "exact-client ", "exáct-client"])
def test_a_client_id_differing_in_case_accent_or_trailing_space_is_an_unknown_client(client, service_app, lookalike):
    response = client_credentials(client, lookalike, service_app.plaintext_secret)
    assert response.status_code == 401, response.content
    assert response.json()["error"] == "invalid_client"


def test_an_access_token_differing_in_case_is_refused(client, service_app):
    token = client_credentials(client, "exact-client", service_app.plaintext_secret).json()["access_token"]
    lookalike = token.swapcase()
    response = client.post(
        "/oidc/token/introspection", {"token": lookalike}, HTTP_AUTHORIZATION=basic_auth("exact-client", service_app.plaintext_secret)
    )
    assert response.status_code == 200 and response.json() == {"active": False}
    response = client.post(
        "/oidc/token/introspection", {"token": token}, HTTP_AUTHORIZATION=basic_auth("exact-client", service_app.plaintext_secret)
    )
    assert response.json()["active"] is True


@on_mariadb
def test_the_test_database_compares_strings_byte_for_byte(service_app):
    with connection.cursor() as cursor:
        cursor.execute("SELECT @@collation_database")
        assert cursor.fetchone()[0] == "utf8mb4_nopad_bin"
        for lookalike in ("EXACT-CLIENT", "exact-client ", "exáct-client"):
            cursor.execute("SELECT COUNT(*) FROM oidc_provider_application WHERE client_id = %s", [lookalike])
            assert cursor.fetchone()[0] == 0, lookalike


def manage(database_url, tmp_path, *args):
    env = {**os.environ, "DATABASE_URL": database_url, "DJANGO_DATA_DIR": str(tmp_path)}
    return subprocess.run([sys.executable, "manage.py", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


@on_mariadb
def test_migrate_refuses_a_database_that_ignores_case(tmp_path):
    url = os.environ["DATABASE_URL"]
    for loose_url in scratch_mysql_database(url, collation="utf8mb4_general_ci"):
        result = manage(loose_url, tmp_path, "migrate", "-v0")
        assert result.returncode != 0
        assert "project.E001" in result.stderr and "utf8mb4_general_ci" in result.stderr, result.stderr
        assert "oidc_provider_application" not in manage(loose_url, tmp_path, "dbshell", "--", "-e", "SHOW TABLES").stdout


@on_mariadb
def test_check_names_tables_left_with_a_loose_collation(scratch_database_url, tmp_path):
    assert manage(scratch_database_url, tmp_path, "migrate", "-v0").returncode == 0
    assert manage(scratch_database_url, tmp_path, "check", "--database", "default").returncode == 0
    altered = manage(
        scratch_database_url, tmp_path, "dbshell", "--", "-e",
        "ALTER TABLE oidc_provider_application CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci",
    )
    assert altered.returncode == 0, altered.stderr
    result = manage(scratch_database_url, tmp_path, "check", "--database", "default")
    assert result.returncode != 0
    # The message names the first columns and counts the rest: the table is what to convert.
    assert "project.E002" in result.stderr and "oidc_provider_application." in result.stderr, result.stderr
