"""Query budgets of the hot paths: a regression fails CI although no test measures time.

Counts include the SAVEPOINTs the test transaction turns BEGIN/COMMIT into. Lower a budget
when an optimisation lands; never raise one without saying why in the commit.
"""

import hashlib
import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection, connections
from oauth2_provider.models import get_access_token_model, get_grant_model, get_refresh_token_model

from oidc_provider import policy
from oidc_provider.models import RedeemedCode
from oidc_provider.validators import code_digest, code_token_family, token_checksum
from tests.factories import ApplicationFactory
from tests.helpers import authorize, basic_auth, exchange, get_code

BUDGETS = {
    # INSERT access token, written only if config_cache's version is the one this process
    # assumed (no SELECT of it); the dashboard count runs after COMMIT, which the test
    # transaction never reaches.
    "client_credentials": 1,
    "ak_sk": 1,  # the same; last_used_at is written at most once a minute per key
    # Grant+user+sub with the config version as one more column, DELETE grant, INSERT
    # ID/access/refresh tokens and the redeemed code (BEGIN/COMMIT are savepoint-free inside
    # the test's transaction).
    "authorization_code": 6,
    # PostgreSQL: Grant+user+sub+version, and one statement that deletes the Grant and inserts
    # the ID, access and refresh tokens and the redeemed code (no transaction round trips).
    "authorization_code_postgresql": 2,
    # The live token with its user, sub, family's birth and the config version (read ahead of
    # the client's authentication); its revocation (one UPDATE, judged by the rows it changed)
    # and its access token's DELETE; INSERT ID, access and refresh tokens (a Chain: on SQLite
    # back to back in one transaction, savepoint-free inside the test's).
    "refresh_token": 6,
    # PostgreSQL: the live token read, and one statement that revokes it (judged by the rows
    # it changed), deletes its access token and inserts the ID, access and refresh tokens.
    "refresh_token_postgresql": 2,
    # version, session, user, the remembered consent, INSERT the code's Grant (the
    # application comes from config_cache, found there by the request's validation).
    "authorization": 5,
    # token+user+sub with the config version as one more column; the token's application
    # (cached after the first request).
    "userinfo": 2,
    # token+user+sub with the config version as one more column (read ahead of the client's
    # authentication, which needs the version); the token's application by id (cached after
    # the first request).
    "introspection": 2,
    # Once the token's application (and an AK/SK token's account) is in config_cache: the
    # token's SELECT alone.
    "introspection_warm": 1,
}


AccessToken = get_access_token_model()
RefreshToken = get_refresh_token_model()
Grant = get_grant_model()


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


def test_authorization_request(logged_in, web_app, django_assert_max_num_queries):
    get_code(logged_in, web_app)  # consent given and remembered; the application cached
    with django_assert_max_num_queries(BUDGETS["authorization"]) as captured:
        response = authorize(logged_in, web_app)
    assert response.status_code == 302 and "code=" in response["Location"], response.content[:300]
    assert not any('"oidc_provider_application"' in q["sql"] for q in captured.captured_queries)


def test_authorization_code_exchange(logged_in, web_app, django_assert_max_num_queries):
    warm = get_code(logged_in, web_app)["code"]  # the user's `sub` and the signing key, read once per process
    assert exchange(logged_in, web_app, warm, secret=web_app.plaintext_secret).status_code == 200
    code = get_code(logged_in, web_app)["code"]
    budget = BUDGETS["authorization_code_postgresql" if connection.vendor == "postgresql" else "authorization_code"]
    with django_assert_max_num_queries(budget):
        response = exchange(logged_in, web_app, code, secret=web_app.plaintext_secret)
    assert response.status_code == 200 and "id_token" in response.json()
    # Every row written and linked, however many statements it took.
    access = AccessToken.objects.get(token_checksum=hashlib.sha256(response.json()["access_token"].encode()).hexdigest())
    assert access.id_token.jti and access.refresh_token.access_token_id == access.pk
    assert access.refresh_token.token_checksum == token_checksum(response.json()["refresh_token"])
    # The refresh token's family stands for the spent code (a replay finds it): no RedeemedCode row.
    assert access.refresh_token.token_family == code_token_family(code)
    assert not RedeemedCode.objects.exists()
    assert not Grant.objects.filter(code=code_digest(code)).exists()


def test_refresh(client, web_app, tokens, django_assert_max_num_queries):
    presented = RefreshToken.objects.get(token_checksum=token_checksum(tokens["refresh_token"]))
    budget = BUDGETS["refresh_token_postgresql" if connection.vendor == "postgresql" else "refresh_token"]
    with django_assert_max_num_queries(budget):
        response = client.post(
            "/oidc/token", {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
            HTTP_AUTHORIZATION=basic_auth(web_app.client_id, web_app.plaintext_secret),
        )
    assert response.status_code == 200
    # What DOT's rotation leaves behind, written by the fewer statements.
    rotated = RefreshToken.objects.get(pk=presented.pk)
    assert rotated.revoked is not None and rotated.access_token_id is None
    assert not AccessToken.objects.filter(pk=presented.access_token_id).exists()
    access = AccessToken.objects.get(token_checksum=hashlib.sha256(response.json()["access_token"].encode()).hexdigest())
    assert access.source_refresh_token_id == presented.pk and access.id_token is not None
    assert access.refresh_token.token_family == presented.token_family and access.refresh_token.revoked is None


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


def test_introspection_of_an_ak_sk_token(client, db, django_assert_max_num_queries):
    # A resource server introspecting machine tokens: the token's account name comes from
    # config_cache after the first request, not from a query per call.
    out = StringIO()
    call_command("accesskey", "create", "--account", "etl", "--scope", "read", "--json", stdout=out)
    pair = json.loads(out.getvalue())
    auth = basic_auth(pair["access_key"], pair["secret_key"])
    token = _cc(client, pair["access_key"], pair["secret_key"]).json()["access_token"]
    client.post("/oidc/token/introspection", {"token": token}, HTTP_AUTHORIZATION=auth)
    with django_assert_max_num_queries(BUDGETS["introspection_warm"]):
        data = client.post("/oidc/token/introspection", {"token": token}, HTTP_AUTHORIZATION=auth).json()
    assert data["active"] is True and data["account"] == "etl"


@pytest.mark.django_db(transaction=True)
def test_no_request_pays_for_a_separate_health_check_probe(client, monkeypatch):
    """CONN_HEALTH_CHECKS sends SELECT 1 before a request's first query (a round trip of its
    own on PostgreSQL) unless that first query stands in for it (statements.read_first)."""
    from tests.factories import UserFactory

    assert connection.settings_dict["CONN_HEALTH_CHECKS"]
    probes = []
    wrapper = type(connections["default"])
    real = wrapper.is_usable
    monkeypatch.setattr(wrapper, "is_usable", lambda self: probes.append(1) or real(self))
    web_app = ApplicationFactory(application_type=policy.WEB, grant_types=["authorization_code", "refresh_token"])
    client.force_login(UserFactory())
    tokens = exchange(client, web_app, get_code(client, web_app)["code"], secret=web_app.plaintext_secret).json()
    requests = {
        "code exchange": (lambda: get_code(client, web_app)["code"],
                          lambda code: exchange(client, web_app, code, secret=web_app.plaintext_secret)),
        "userinfo": (lambda: None, lambda _: client.get("/oidc/me", HTTP_AUTHORIZATION=f"Bearer {tokens['access_token']}")),
        "introspection": (lambda: None, lambda _: client.post(
            "/oidc/token/introspection", {"token": tokens["access_token"]},
            HTTP_AUTHORIZATION=basic_auth(web_app.client_id, web_app.plaintext_secret),
        )),
    }
    for name, (prepare, send) in requests.items():
        send(prepare())  # warm: the caches, the connection
        argument = prepare()
        probes.clear()
        # What request_started does under a real server (the test client skips it): the
        # persistent connection is due for a health check again.
        connections["default"].close_if_unusable_or_obsolete()
        response = send(argument)
        assert response.status_code == 200, name
        assert probes == [], f"{name} sent a separate health-check probe"
