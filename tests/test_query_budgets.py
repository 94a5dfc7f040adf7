"""Query budgets of the hot paths: a regression fails CI although no test measures time.

Counts include the SAVEPOINTs the test transaction turns BEGIN/COMMIT into. Lower a budget
when an optimisation lands; never raise one without saying why in the commit.
"""

import json
from io import StringIO

import pytest
from django.core.management import call_command

from oidc_provider import policy
from tests.factories import ApplicationFactory
from tests.helpers import basic_auth, exchange, get_code

BUDGETS = {
    # version check (config_cache) + INSERT access token; the dashboard count runs after
    # COMMIT, which the test transaction never reaches.
    "client_credentials": 2,
    "ak_sk": 2,  # last_used_at is written at most once a minute per key
    # Grant+user+sub, version, DELETE grant, INSERT ID/access/refresh tokens and the
    # redeemed code, and the SAVEPOINTs the test transaction turns BEGIN/COMMIT into.
    "authorization_code": 12,
    "refresh_token": 17,  # the live token locked and read with its user in one query; DOT's rotation
    "userinfo": 3,  # token+user+sub, version, the token's application (cached after the first)
    "introspection": 3,
}


@pytest.fixture
def service_app(db):
    return ApplicationFactory(application_type=policy.SERVICE, redirect_uris="", post_logout_redirect_uris="")


def _cc(client, client_id, secret):
    return client.post(
        "/oidc/token", {"grant_type": "client_credentials", "scope": "read"}, HTTP_AUTHORIZATION=basic_auth(client_id, secret)
    )


def test_client_credentials(client, service_app, django_assert_max_num_queries):
    _cc(client, service_app.client_id, service_app.plaintext_secret)  # the day's counter row exists from here on
    _cc(client, service_app.client_id, service_app.plaintext_secret)  # warm: the config cache has the app
    with django_assert_max_num_queries(BUDGETS["client_credentials"]):
        response = _cc(client, service_app.client_id, service_app.plaintext_secret)
    assert response.status_code == 200


def test_ak_sk(client, db, django_assert_max_num_queries):
    out = StringIO()
    call_command("accesskey", "create", "--account", "batch", "--scope", "read", "--json", stdout=out)
    pair = json.loads(out.getvalue())
    _cc(client, pair["access_key"], pair["secret_key"])
    with django_assert_max_num_queries(BUDGETS["ak_sk"]):
        response = _cc(client, pair["access_key"], pair["secret_key"])
    assert response.status_code == 200


@pytest.fixture
def tokens(logged_in, web_app):
    code = get_code(logged_in, web_app)["code"]
    return exchange(logged_in, web_app, code, secret=web_app.plaintext_secret).json()


def test_authorization_code_exchange(logged_in, web_app, django_assert_max_num_queries):
    code = get_code(logged_in, web_app)["code"]
    with django_assert_max_num_queries(BUDGETS["authorization_code"]):
        response = exchange(logged_in, web_app, code, secret=web_app.plaintext_secret)
    assert response.status_code == 200 and "id_token" in response.json()


def test_refresh(client, web_app, tokens, django_assert_max_num_queries):
    with django_assert_max_num_queries(BUDGETS["refresh_token"]):
        response = client.post(
            "/oidc/token", {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
            HTTP_AUTHORIZATION=basic_auth(web_app.client_id, web_app.plaintext_secret),
        )
    assert response.status_code == 200


def test_userinfo(client, tokens, django_assert_max_num_queries):
    with django_assert_max_num_queries(BUDGETS["userinfo"]):
        response = client.get("/oidc/me", HTTP_AUTHORIZATION=f"Bearer {tokens['access_token']}")
    assert response.status_code == 200


def test_introspection(client, web_app, tokens, django_assert_max_num_queries):
    with django_assert_max_num_queries(BUDGETS["introspection"]):
        response = client.post(
            "/oidc/token/introspection", {"token": tokens["access_token"]},
            HTTP_AUTHORIZATION=basic_auth(web_app.client_id, web_app.plaintext_secret),
        )
    assert response.json()["active"] is True
