"""The protected resource API under /api/ (RFC 6750)."""

import json
from io import StringIO

from django.core.management import call_command

from oidc_provider import policy
from tests.factories import ApplicationFactory
from tests.helpers import basic_auth, exchange, get_code


def _bearer(token):
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


def test_api_me_with_a_profile_token(logged_in, web_app, user):
    tokens = exchange(logged_in, web_app, get_code(logged_in, web_app, scope="openid profile")["code"], secret=web_app.plaintext_secret).json()
    response = logged_in.get("/api/me", **_bearer(tokens["access_token"]))
    assert response.status_code == 200
    assert response.json()["preferred_username"] == user.username


def test_api_without_token_is_401_with_www_authenticate(client, db):
    response = client.get("/api/me")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert client.get("/api/me", **_bearer("bogus")).status_code == 401


def test_api_me_without_profile_scope_is_403_insufficient_scope(logged_in, web_app):
    tokens = exchange(logged_in, web_app, get_code(logged_in, web_app, scope="openid")["code"], secret=web_app.plaintext_secret).json()
    response = logged_in.get("/api/me", **_bearer(tokens["access_token"]))
    assert response.status_code == 403
    assert 'error="insufficient_scope"' in response["WWW-Authenticate"]


def test_ak_sk_token_calls_echo_within_its_permissions(client, db):
    out = StringIO()
    call_command("accesskey", "create", "--account", "etl", "--scope", "read", "--json", stdout=out)
    pair = json.loads(out.getvalue())
    token = client.post(
        "/oidc/token", {"grant_type": "client_credentials", "scope": "read"},
        HTTP_AUTHORIZATION=basic_auth(pair["access_key"], pair["secret_key"]),
    ).json()["access_token"]
    assert client.get("/api/echo?x=1", **_bearer(token)).json()["query"] == {"x": "1"}
    assert client.post("/api/echo", {"a": 1}, content_type="application/json", **_bearer(token)).status_code == 403
    assert client.get("/api/me", **_bearer(token)).status_code == 403


def test_service_app_token_with_write_may_post_to_echo(client, db):
    app = ApplicationFactory(application_type=policy.SERVICE, redirect_uris="", post_logout_redirect_uris="")
    token = client.post(
        "/oidc/token", {"grant_type": "client_credentials", "scope": "write"},
        HTTP_AUTHORIZATION=basic_auth(app.client_id, app.plaintext_secret),
    ).json()["access_token"]
    response = client.post("/api/echo", {"a": 1}, content_type="application/json", **_bearer(token))
    assert response.status_code == 200 and response.json()["data"] == {"a": 1}
