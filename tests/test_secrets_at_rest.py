"""Tokens and codes at rest: the database keeps only digests (issue "secrets at rest").

Rule: access tokens, refresh tokens and authorization codes are stored only as their sha256.
Whoever reads the tables (a backup, a replica, SQL injection elsewhere) gets nothing that
works at the token, userinfo, introspection or revocation endpoints, and an upgrade leaves no
plaintext behind.
"""

import hashlib
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.db import connection
from django.test import override_settings
from oauth2_provider.models import get_access_token_model, get_grant_model, get_refresh_token_model

from oidc_provider import policy
from tests.factories import ApplicationFactory
from tests.helpers import basic_auth, exchange, get_code

AccessToken, RefreshToken, Grant = get_access_token_model(), get_refresh_token_model(), get_grant_model()
REPO = Path(__file__).resolve().parent.parent


def _sha256(value):
    return hashlib.sha256(value.encode()).hexdigest()


@pytest.fixture
def issued(logged_in, web_app):
    """What the HTTP responses of a login handed out: a code, then the tokens it bought."""
    code = get_code(logged_in, web_app, scope="openid profile")["code"]
    tokens = exchange(logged_in, web_app, code, secret=web_app.plaintext_secret).json()
    assert "access_token" in tokens, tokens
    return {"code": code, **tokens}


def _stored_values(model, *fields):
    """Every value of these columns, as the database holds them."""
    return {value for row in model.objects.values_list(*fields) for value in row if value}


def _userinfo(client, token):
    return client.get("/oidc/me", HTTP_AUTHORIZATION=f"Bearer {token}")


def _introspect(client, app, token):
    return client.post(
        "/oidc/token/introspection", {"token": token}, HTTP_AUTHORIZATION=basic_auth(app.client_id, app.plaintext_secret)
    ).json()


def _refresh(client, app, token):
    return client.post(
        "/oidc/token", {"grant_type": "refresh_token", "refresh_token": token},
        HTTP_AUTHORIZATION=basic_auth(app.client_id, app.plaintext_secret),
    )


def test_access_and_refresh_tokens_are_stored_only_as_their_sha256(issued):
    """The token column is blank; the row is found by the token's sha256 alone."""
    access = AccessToken.objects.get(token_checksum=_sha256(issued["access_token"]))
    refresh = RefreshToken.objects.get(token_checksum=_sha256(issued["refresh_token"]))
    assert access.token == "" and refresh.token == ""


def test_an_authorization_code_is_stored_only_as_its_sha256(logged_in, web_app):
    """The Grant row of a code that is not yet exchanged holds the code's sha256, not the code."""
    code = get_code(logged_in, web_app)["code"]
    assert list(Grant.objects.values_list("code", flat=True)) == [_sha256(code)]


def test_an_access_token_read_from_the_table_does_not_work_at_userinfo(client, issued):
    """A value copied from the access token table is no bearer token; the one handed out is."""
    stored = _stored_values(AccessToken, "token", "token_checksum")
    assert stored and issued["access_token"] not in stored
    for value in stored:
        assert _userinfo(client, value).status_code == 401
    assert _userinfo(client, issued["access_token"]).status_code == 200


def test_a_token_read_from_the_tables_is_inactive_at_introspection(client, web_app, issued):
    """RFC 7662: an unknown token is {"active": false}; a stored digest is unknown."""
    stored = _stored_values(AccessToken, "token", "token_checksum") | _stored_values(RefreshToken, "token", "token_checksum")
    for value in stored:
        assert _introspect(client, web_app, value) == {"active": False}
    assert _introspect(client, web_app, issued["access_token"])["active"] is True
    assert _introspect(client, web_app, issued["refresh_token"])["active"] is True


def test_a_refresh_token_read_from_the_table_does_not_refresh(client, web_app, issued):
    """The stored value is invalid_grant at the token endpoint, and spoils nothing: the
    refresh token handed out still works afterwards."""
    stored = _stored_values(RefreshToken, "token", "token_checksum")
    assert stored and issued["refresh_token"] not in stored
    for value in stored:
        response = _refresh(client, web_app, value)
        assert response.status_code == 400 and response.json()["error"] == "invalid_grant"
    assert _refresh(client, web_app, issued["refresh_token"]).status_code == 200


def test_a_code_read_from_the_table_cannot_be_exchanged(logged_in, web_app):
    """The Grant's stored value is invalid_grant at the token endpoint, and neither spends
    nor revokes the real code, which is exchanged afterwards."""
    code = get_code(logged_in, web_app)["code"]
    stored = _stored_values(Grant, "code")
    assert stored and code not in stored
    for value in stored:
        response = exchange(logged_in, web_app, value, secret=web_app.plaintext_secret)
        assert response.status_code == 400 and response.json()["error"] == "invalid_grant"
    response = exchange(logged_in, web_app, code, secret=web_app.plaintext_secret)
    assert response.status_code == 200 and "access_token" in response.json()


def test_a_token_read_from_the_tables_revokes_nothing(client, web_app, issued):
    """RFC 7009 answers 200 for an unknown token; the stored digests are unknown, so the
    tokens handed out keep working."""
    stored = _stored_values(AccessToken, "token", "token_checksum") | _stored_values(RefreshToken, "token", "token_checksum")
    for value in stored:
        response = client.post(
            "/oidc/token/revocation", {"token": value},
            HTTP_AUTHORIZATION=basic_auth(web_app.client_id, web_app.plaintext_secret),
        )
        assert response.status_code == 200
    assert _userinfo(client, issued["access_token"]).status_code == 200
    assert _introspect(client, web_app, issued["refresh_token"])["active"] is True


def _every_cell():
    """Every value of every table of the database, as text (a session's data decoded)."""
    sessions = SessionStore()
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
            for row in cursor.fetchall():
                for value in row:
                    if isinstance(value, (bytes, memoryview)):
                        value = bytes(value).decode("utf-8", "replace")
                    yield table, str(value)
                    if table == Session._meta.db_table and isinstance(value, str):
                        yield table, json.dumps(sessions.decode(value))


def test_no_table_holds_a_token_or_code_the_endpoints_handed_out(logged_in, web_app, issued):
    """After a login's code, its exchange, a refresh, a machine's client credentials, replays
    and a revocation, nothing in any table (tokens, codes, sessions, audit log, anything)
    contains a code, an access token, a refresh token or an ID token the endpoints answered
    with."""
    refreshed = _refresh(logged_in, web_app, issued["refresh_token"]).json()
    service = ApplicationFactory(application_type=policy.SERVICE, redirect_uris="", post_logout_redirect_uris="")
    machine = logged_in.post(
        "/oidc/token", {"grant_type": "client_credentials"},
        HTTP_AUTHORIZATION=basic_auth(service.client_id, service.plaintext_secret),
    ).json()
    # What the audit log records: a replayed code, a replayed refresh token, a revocation.
    assert exchange(logged_in, web_app, issued["code"], secret=web_app.plaintext_secret).status_code == 400
    assert _refresh(logged_in, web_app, issued["refresh_token"]).status_code == 400
    logged_in.post(
        "/oidc/token/revocation", {"token": machine["access_token"]},
        HTTP_AUTHORIZATION=basic_auth(service.client_id, service.plaintext_secret),
    )
    pending = get_code(logged_in, web_app)["code"]  # one code left unexchanged, its Grant still there
    handed_out = {
        issued["code"], issued["access_token"], issued["refresh_token"], issued["id_token"],
        refreshed["access_token"], refreshed["refresh_token"], refreshed["id_token"],
        machine["access_token"], pending,
    }
    assert all(handed_out)
    cells = list(_every_cell())
    assert any(cell == _sha256(pending) for _table, cell in cells)  # the scan sees the Grant table
    found = [(table, secret[:8]) for table, cell in cells for secret in handed_out if secret in cell]
    assert found == []


def test_a_site_that_turns_plaintext_token_storage_back_on_fails_the_system_check(settings):
    """Storing tokens only as digests is not a site's option: the check names the setting."""
    with override_settings(OAUTH2_PROVIDER={**settings.OAUTH2_PROVIDER, "COMPLIANT_BCP_RFC9700_TOKEN_STORAGE": False}):
        with pytest.raises(SystemCheckError, match="COMPLIANT_BCP_RFC9700_TOKEN_STORAGE"):
            call_command("check")


# -- an upgrade: rows written before digests leave no plaintext behind --------------------------------

_APPLICATION = """
from oidc_provider.models import Application
Application.objects.create(name="Upgraded", application_type="web", grant_types=["authorization_code"],
                           redirect_uris="https://rp.example.com/cb", client_secret="unused-secret-1")
"""

_BEFORE = """
import json
from datetime import timedelta
from django.contrib.auth import get_user_model
from django.utils import timezone
from oauth2_provider.models import get_access_token_model, get_grant_model, get_refresh_token_model
from oidc_provider.models import Application

plain = json.loads({plain!r})
user = get_user_model().objects.create_user("upgraded", password="unused-password-1")
# Made at today's schema (an older one lacks today's columns); only its key is needed here.
app = Application.objects.only("pk").get(name="Upgraded")
later = timezone.now() + timedelta(hours=1)
# As the provider wrote them before: the token in its column (its checksum derived from it), the code as it is.
access = get_access_token_model().objects.create(user=user, application=app, token=plain["access"], expires=later, scope="openid")
get_refresh_token_model().objects.create(user=user, application=app, token=plain["refresh"], access_token=access)
get_grant_model().objects.create(user=user, application=app, code=plain["code"], expires=later,
                                 redirect_uri="https://rp.example.com/cb", scope="openid")
"""

_AFTER = """
import json
from oauth2_provider.models import get_access_token_model, get_grant_model, get_refresh_token_model
print("ROWS " + json.dumps({{
    "access": list(get_access_token_model().objects.values_list("token", "token_checksum")),
    "refresh": list(get_refresh_token_model().objects.values_list("token", "token_checksum")),
    "codes": list(get_grant_model().objects.values_list("code", flat=True)),
}}))
"""


def test_upgrading_turns_plaintext_tokens_and_codes_into_digests(scratch_database_url, tmp_path):
    """Rows left by a version that kept tokens and codes in plaintext are digests after
    ``migrate``; the tokens still match their rows (the checksum is what lookups use)."""
    env = {**os.environ, "DATABASE_URL": scratch_database_url, "DJANGO_DATA_DIR": str(tmp_path)}

    def manage(*args):
        result = subprocess.run([sys.executable, "manage.py", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, f"{args[:2]}: {result.stdout}{result.stderr}"
        return result.stdout

    plain = {"access": "plain-access-" + uuid.uuid4().hex, "refresh": "plain-refresh-" + uuid.uuid4().hex,
             "code": "plain-code-" + uuid.uuid4().hex[:16]}
    manage("migrate", "-v0")
    manage("shell", "--no-imports", "-c", _APPLICATION)
    manage("migrate", "oidc_provider", "0003", "-v0")  # the schema of the version before
    manage("shell", "--no-imports", "-c", _BEFORE.format(plain=json.dumps(plain)))
    manage("migrate", "-v0")
    out = manage("shell", "--no-imports", "-c", _AFTER.format())
    rows = json.loads(next(line for line in out.splitlines() if line.startswith("ROWS "))[5:])
    assert rows == {
        "access": [["", _sha256(plain["access"])]],
        "refresh": [["", _sha256(plain["refresh"])]],
        "codes": [_sha256(plain["code"])],
    }
