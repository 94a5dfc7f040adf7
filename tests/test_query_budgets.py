"""Query budgets of the hot paths: a regression fails CI although no test measures time.

Counts include the SAVEPOINTs the test transaction turns BEGIN/COMMIT into. Lower a budget
when an optimisation lands; never raise one without saying why in the commit.
"""

import hashlib
import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection
from oauth2_provider.models import get_access_token_model, get_grant_model, get_refresh_token_model

from oidc_provider import policy
from oidc_provider.models import RedeemedCode
from oidc_provider.store import get_store
from oidc_provider.validators import code_digest, code_token_family, token_checksum
from tests.factories import ApplicationFactory
from tests.helpers import authorize, basic_auth, exchange, get_code

# Every request reads config_cache's version first: one SELECT of its own, or, on the fast
# store, a column of the request's first SELECT of a code or token. The fast store writes a
# code's redemption or a rotation as one statement on PostgreSQL and back to back in one
# transaction on SQLite (savepoint-free inside the test's transaction); the ORM store in a
# transaction.atomic block, which inside the test's transaction adds a SAVEPOINT and its RELEASE.
COMMON = {
    # version, session, user, the remembered consent, INSERT the code's Grant, INSERT the
    # login session's sign-in (the application comes from config_cache, found there by the
    # request's validation; the login session's sid from the Django session).
    "authorization": 6,
}
BUDGETS = {
    "fast": {
        **COMMON,
        # Grant+user+sub carrying the version (read before the client's authentication),
        # DELETE grant, INSERT ID/access/refresh tokens.
        "authorization_code": 5,
        # Grant+user+sub+version, and one statement deleting the Grant and inserting the rows.
        "authorization_code_postgresql": 2,
        # The token with its access token, user, sub, family's birth and the version (read
        # before the client's authentication); UPDATE (its revocation, judged by the rows it
        # changed), DELETE its access token, INSERT ID, access and refresh tokens.
        "refresh_token": 6,
        # The token+version, and one statement revoking it and writing its successors.
        "refresh_token_postgresql": 2,
        # token+user+sub carrying the version; the token's application (cached after the
        # first request).
        "userinfo": 2,
        "userinfo_warm": 1,
        # The token (read before the client's authentication) carrying the version; the
        # token's application. Once that (and an AK/SK token's account) is in config_cache,
        # the token's SELECT alone.
        "introspection": 2,
        "introspection_warm": 1,
        # INSERT access token, written only while config_cache's version is the one this
        # process assumed (no SELECT of it); the dashboard count runs after COMMIT, which the
        # test transaction never reaches. AK/SK: last_used_at is written at most once a
        # minute per key.
        "client_credentials": 1,
        "ak_sk": 1,
    },
    "orm": {
        **COMMON,
        # The version, the fast store's statements, and SAVEPOINT/RELEASE around them.
        "authorization_code": 8,
        "authorization_code_postgresql": 8,
        # The version, the fast store's, and the savepoint pair; the ORM reads the family's birth and the
        # rows it deletes (DOT's revoke deletes its access token through the ORM's collector).
        "refresh_token": 11,
        "refresh_token_postgresql": 11,
        # version; token+user+sub; the token's application (cached after the first request).
        "userinfo": 3,
        "userinfo_warm": 2,
        # version; the token (read before the client's authentication); its application.
        # Once that (and an AK/SK token's account) is in config_cache: version and token.
        "introspection": 3,
        "introspection_warm": 2,
        # version (read before the INSERT), INSERT access token.
        "client_credentials": 2,
        "ak_sk": 2,
    },
}


def budget(name):
    return BUDGETS[type(get_store()).__name__.removesuffix("Store").lower()][name]


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
    with django_assert_max_num_queries(budget("client_credentials")):
        response = _cc(client, service_app.client_id, service_app.plaintext_secret)
    assert response.status_code == 200


def test_ak_sk(client, db, django_assert_max_num_queries):
    out = StringIO()
    call_command("accesskey", "create", "--account", "batch", "--scope", "read", "--json", stdout=out)
    pair = json.loads(out.getvalue())
    _cc(client, pair["access_key"], pair["secret_key"])
    with django_assert_max_num_queries(budget("ak_sk")):
        response = _cc(client, pair["access_key"], pair["secret_key"])
    assert response.status_code == 200


@pytest.fixture
def tokens(logged_in, web_app):
    code = get_code(logged_in, web_app)["code"]
    return exchange(logged_in, web_app, code, secret=web_app.plaintext_secret).json()


def test_authorization_request(logged_in, web_app, django_assert_max_num_queries):
    get_code(logged_in, web_app)  # consent given and remembered; the application cached
    with django_assert_max_num_queries(budget("authorization")) as captured:
        response = authorize(logged_in, web_app)
    assert response.status_code == 302 and "code=" in response["Location"], response.content[:300]
    assert not any('"oidc_provider_application"' in q["sql"] for q in captured.captured_queries)


def test_authorization_code_exchange(logged_in, web_app, django_assert_max_num_queries):
    warm = get_code(logged_in, web_app)["code"]  # the user's `sub` and the signing key, read once per process
    assert exchange(logged_in, web_app, warm, secret=web_app.plaintext_secret).status_code == 200
    code = get_code(logged_in, web_app)["code"]
    allowed = budget("authorization_code_postgresql" if connection.vendor == "postgresql" else "authorization_code")
    with django_assert_max_num_queries(allowed):
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
    allowed = budget("refresh_token_postgresql" if connection.vendor == "postgresql" else "refresh_token")
    with django_assert_max_num_queries(allowed):
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
    with django_assert_max_num_queries(budget("userinfo")):
        response = client.get("/oidc/me", HTTP_AUTHORIZATION=f"Bearer {tokens['access_token']}")
    assert response.status_code == 200


def test_userinfo_once_the_tokens_application_is_cached(client, tokens, django_assert_max_num_queries):
    bearer = f"Bearer {tokens['access_token']}"
    client.get("/oidc/me", HTTP_AUTHORIZATION=bearer)
    with django_assert_max_num_queries(budget("userinfo_warm")):
        response = client.get("/oidc/me", HTTP_AUTHORIZATION=bearer)
    assert response.status_code == 200 and response.json()["sub"]


def test_introspection(client, web_app, tokens, django_assert_max_num_queries):
    with django_assert_max_num_queries(budget("introspection")):
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
    with django_assert_max_num_queries(budget("introspection_warm")):
        data = client.post("/oidc/token/introspection", {"token": token}, HTTP_AUTHORIZATION=auth).json()
    assert data["active"] is True and data["account"] == "etl"
