"""Which writes wait for the disk on PostgreSQL (OIDC_PROVIDER["ASYNC_COMMIT_LONE_ACCESS_TOKENS"],
"ASYNC_COMMIT_AUTHORIZATION_CODES").

An access token issued with no other write is committed with ``synchronous_commit`` off for
that one statement: a database crash can only lose such a token, which then stops working
(its client asks again). A redeemed code, a rotation and a revocation are what single use
and replay detection rest on: they always wait for the disk. These tests run outside a test
transaction (``transactional_db``), where the token endpoint's statements are their own
transactions as in production, and look at what reached the database.
"""

import pytest
from django.conf import settings
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from oidc_provider import policy
from oidc_provider.conf import oidc_settings
from tests.factories import ApplicationFactory, UserFactory
from tests.helpers import basic_auth, exchange, get_code

pytestmark = pytest.mark.skipif(connection.vendor != "postgresql", reason="synchronous_commit is PostgreSQL's")

RELAXED = "set_config('synchronous_commit', 'off', true)"


def relaxed_statements(captured):
    return [q["sql"] for q in captured.captured_queries if "synchronous_commit" in q["sql"]]


def synchronous_commit_now():
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        return cursor.fetchone()[0]


def client_credentials(client, app):
    return client.post(
        "/oidc/token", {"grant_type": "client_credentials", "scope": "read"},
        HTTP_AUTHORIZATION=basic_auth(app.client_id, app.plaintext_secret),
    )


@pytest.fixture
def service_app(transactional_db):
    return ApplicationFactory(application_type=policy.SERVICE, redirect_uris="", post_logout_redirect_uris="")


@pytest.fixture
def web_app(transactional_db):
    return ApplicationFactory(application_type=policy.WEB, grant_types=["authorization_code", "refresh_token"])


def test_a_lone_access_token_does_not_wait_for_the_disk_and_works(client, service_app):
    with CaptureQueriesContext(connection) as captured:
        response = client_credentials(client, service_app)
    assert response.status_code == 200, response.content
    relaxed = relaxed_statements(captured)
    assert len(relaxed) == 1 and relaxed[0].startswith('INSERT INTO "oauth2_provider_accesstoken"') and RELAXED in relaxed[0]
    # Only that statement's transaction: the session is back to waiting for the disk.
    assert synchronous_commit_now() == "on"
    introspected = client.post(
        "/oidc/token/introspection", {"token": response.json()["access_token"]},
        HTTP_AUTHORIZATION=basic_auth(service_app.client_id, service_app.plaintext_secret),
    )
    assert introspected.json()["active"] is True


def test_revocation_waits_for_the_disk(client, service_app):
    token = client_credentials(client, service_app).json()["access_token"]
    with CaptureQueriesContext(connection) as captured:
        response = client.post(
            "/oidc/token/revocation", {"token": token},
            HTTP_AUTHORIZATION=basic_auth(service_app.client_id, service_app.plaintext_secret),
        )
    assert response.status_code == 200
    assert captured.captured_queries and relaxed_statements(captured) == []


def test_a_code_exchange_and_a_rotation_wait_for_the_disk(client, web_app):
    client.force_login(UserFactory())
    code = get_code(client, web_app)["code"]
    with CaptureQueriesContext(connection) as captured:
        tokens = exchange(client, web_app, code, secret=web_app.plaintext_secret)
    assert tokens.status_code == 200 and "refresh_token" in tokens.json()
    assert relaxed_statements(captured) == []
    with CaptureQueriesContext(connection) as captured:
        rotated = client.post(
            "/oidc/token", {"grant_type": "refresh_token", "refresh_token": tokens.json()["refresh_token"]},
            HTTP_AUTHORIZATION=basic_auth(web_app.client_id, web_app.plaintext_secret),
        )
    assert rotated.status_code == 200
    assert relaxed_statements(captured) == []


def test_the_setting_turns_it_off(client, service_app):
    with override_settings(OIDC_PROVIDER={**settings.OIDC_PROVIDER, "ASYNC_COMMIT_LONE_ACCESS_TOKENS": False}):
        assert oidc_settings.ASYNC_COMMIT_LONE_ACCESS_TOKENS is False
        with CaptureQueriesContext(connection) as captured:
            response = client_credentials(client, service_app)
    assert response.status_code == 200
    assert relaxed_statements(captured) == []


def test_an_authorization_code_does_not_wait_for_the_disk_and_is_exchanged_once(client, web_app):
    from oauth2_provider.models import get_grant_model

    client.force_login(UserFactory())
    with CaptureQueriesContext(connection) as captured:
        code = get_code(client, web_app)["code"]
    relaxed = relaxed_statements(captured)
    grant_table = get_grant_model()._meta.db_table
    assert len(relaxed) == 1 and relaxed[0].startswith(f'INSERT INTO "{grant_table}"') and RELAXED in relaxed[0]
    assert synchronous_commit_now() == "on"
    assert exchange(client, web_app, code, secret=web_app.plaintext_secret).status_code == 200
    replay = exchange(client, web_app, code, secret=web_app.plaintext_secret)
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"


def test_the_codes_setting_turns_it_off(client, web_app):
    client.force_login(UserFactory())
    with override_settings(OIDC_PROVIDER={**settings.OIDC_PROVIDER, "ASYNC_COMMIT_AUTHORIZATION_CODES": False}):
        with CaptureQueriesContext(connection) as captured:
            code = get_code(client, web_app)["code"]
    assert relaxed_statements(captured) == []
    assert exchange(client, web_app, code, secret=web_app.plaintext_secret).status_code == 200
