"""Introspection (RFC 7662) and revocation (RFC 7009)."""

import pytest

from oidc_provider.claims import subject
from oidc_provider import policy
from tests.factories import ApplicationFactory
from tests.helpers import basic_auth, exchange, get_code


@pytest.fixture
def tokens(logged_in, web_app):
    code = get_code(logged_in, web_app, scope="openid profile")["code"]
    return exchange(logged_in, web_app, code, secret=web_app.plaintext_secret).json()


def _introspect(client, app, token, **extra):
    return client.post(
        "/oidc/token/introspection", {"token": token, **extra}, HTTP_AUTHORIZATION=basic_auth(app.client_id, app.plaintext_secret)
    )


def _revoke(client, app, token, **extra):
    return client.post(
        "/oidc/token/revocation", {"token": token, **extra}, HTTP_AUTHORIZATION=basic_auth(app.client_id, app.plaintext_secret)
    )


def test_client_introspects_its_own_access_token(client, web_app, tokens, user):
    response = _introspect(client, web_app, tokens["access_token"])
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    data = response.json()
    assert data["active"] is True
    assert data["client_id"] == web_app.client_id and data["scope"] == "openid profile"
    assert data["sub"] == subject(user) and data["username"] == user.username
    assert data["token_type"] == "Bearer" and data["exp"] > data["iat"]
    assert data["iss"] == "http://127.0.0.1:8000/oidc"


def test_client_introspects_its_own_refresh_token(client, web_app, tokens):
    data = _introspect(client, web_app, tokens["refresh_token"], token_type_hint="refresh_token").json()
    assert data["active"] is True and data["token_type"] == "refresh_token"


def test_another_client_sees_the_token_as_inactive(client, web_app, tokens, db):
    other = ApplicationFactory(application_type=policy.WEB)
    assert _introspect(client, other, tokens["access_token"]).json() == {"active": False}


def test_a_resource_server_may_introspect_any_token(client, web_app, tokens, db):
    api = ApplicationFactory(application_type=policy.SERVICE, redirect_uris="", post_logout_redirect_uris="", is_resource_server=True)
    assert _introspect(client, api, tokens["access_token"]).json()["active"] is True


def test_unknown_token_is_inactive_and_bad_client_is_401(client, web_app):
    assert _introspect(client, web_app, "nope").json() == {"active": False}
    response = client.post("/oidc/token/introspection", {"token": "x"}, HTTP_AUTHORIZATION=basic_auth(web_app.client_id, "bad"))
    assert response.status_code == 401 and response.json()["error"] == "invalid_client"


def test_a_caller_with_a_wrong_secret_learns_nothing_of_a_live_token(client, web_app, tokens):
    """RFC 7662 §2.1: the endpoint requires authorization; a token read before the caller is
    authenticated must not reach the answer of one who fails."""
    response = client.post(
        "/oidc/token/introspection", {"token": tokens["access_token"]}, HTTP_AUTHORIZATION=basic_auth(web_app.client_id, "bad"),
    )
    assert response.status_code == 401 and response.json()["error"] == "invalid_client"
    assert "active" not in response.json() and "sub" not in response.json()


def test_a_refresh_token_introspects_without_a_hint(client, web_app, tokens):
    """RFC 7662 §2.1: the hint is optional; the server looks the token up in every kind."""
    data = _introspect(client, web_app, tokens["refresh_token"]).json()
    assert data["active"] is True and data["token_type"] == "refresh_token"


def test_an_access_token_introspects_under_a_wrong_hint(client, web_app, tokens):
    """RFC 7662 §2.1: a hint that is wrong only widens the search."""
    data = _introspect(client, web_app, tokens["access_token"], token_type_hint="refresh_token").json()
    assert data["active"] is True and data["token_type"] == "Bearer"


def test_introspection_without_token_is_invalid_request(client, web_app):
    response = client.post("/oidc/token/introspection", {}, HTTP_AUTHORIZATION=basic_auth(web_app.client_id, web_app.plaintext_secret))
    assert response.status_code == 400 and response.json()["error"] == "invalid_request"


def test_revoking_an_access_token_ends_it_and_its_refresh_token(client, web_app, tokens):
    response = _revoke(client, web_app, tokens["access_token"])
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    assert _introspect(client, web_app, tokens["access_token"]).json() == {"active": False}
    assert client.get("/oidc/me", HTTP_AUTHORIZATION=f"Bearer {tokens['access_token']}").status_code == 401
    refresh = client.post(
        "/oidc/token", {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        HTTP_AUTHORIZATION=basic_auth(web_app.client_id, web_app.plaintext_secret),
    )
    assert refresh.json()["error"] == "invalid_grant"


def test_revoking_a_refresh_token(client, web_app, tokens):
    assert _revoke(client, web_app, tokens["refresh_token"], token_type_hint="refresh_token").status_code == 200
    assert _introspect(client, web_app, tokens["refresh_token"]).json() == {"active": False}


def test_a_client_cannot_revoke_another_clients_token(client, web_app, tokens, db):
    other = ApplicationFactory(application_type=policy.WEB)
    assert _revoke(client, other, tokens["access_token"]).status_code == 200  # RFC 7009 §2.2: no hint either way
    assert _introspect(client, web_app, tokens["access_token"]).json()["active"] is True


def test_revocation_with_bad_client_is_401(client, web_app, tokens):
    response = client.post("/oidc/token/revocation", {"token": tokens["access_token"]}, HTTP_AUTHORIZATION=basic_auth(web_app.client_id, "bad"))
    assert response.status_code == 401


def test_an_ak_sk_token_introspects_with_its_account(client, db):
    import json
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    call_command("accesskey", "create", "--account", "etl", "--scope", "read", "--json", stdout=out)
    pair = json.loads(out.getvalue())
    auth = basic_auth(pair["access_key"], pair["secret_key"])
    token = client.post("/oidc/token", {"grant_type": "client_credentials", "scope": "read"}, HTTP_AUTHORIZATION=auth).json()["access_token"]
    data = client.post("/oidc/token/introspection", {"token": token}, HTTP_AUTHORIZATION=auth).json()
    assert data["active"] is True and data["account"] == "etl" and data["scope"] == "read" and "sub" not in data
    # The account's name is kept in the per-process copy; a rename applies at once.
    from oidc_provider.models import AccessAccount

    account = AccessAccount.objects.get(name="etl")
    account.name = "etl-nightly"
    account.save()
    data = client.post("/oidc/token/introspection", {"token": token}, HTTP_AUTHORIZATION=auth).json()
    assert data["account"] == "etl-nightly"
