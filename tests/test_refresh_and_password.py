"""Refresh tokens (RFC 6749 §6, RFC 9700 §4.14) and the password grant (RFC 6749 §4.3)."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from oauth2_provider.models import get_refresh_token_model

from oidc_provider import policy, signals
from oidc_provider.claims import subject
from oidc_provider.validators import token_checksum
from tests.factories import PASSWORD, ApplicationFactory
from tests.helpers import basic_auth, exchange, get_code, set_policy, verify_id_token


def _refresh(client, app, token, **extra):
    return client.post(
        "/oidc/token", {"grant_type": "refresh_token", "refresh_token": token, **extra},
        HTTP_AUTHORIZATION=basic_auth(app.client_id, app.plaintext_secret),
    )


@pytest.fixture
def tokens(logged_in, web_app):
    code = get_code(logged_in, web_app, scope="openid profile")["code"]
    return exchange(logged_in, web_app, code, secret=web_app.plaintext_secret).json()


def test_refresh_rotates_and_returns_a_new_id_token(logged_in, web_app, tokens, user):
    response = _refresh(logged_in, web_app, tokens["refresh_token"])
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["refresh_token"] != tokens["refresh_token"]
    assert body["access_token"] != tokens["access_token"]
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", body["refresh_token"])  # 256 random bits, like access tokens
    claims = verify_id_token(logged_in, body["id_token"], web_app.client_id)
    assert claims["sub"] == subject(user)
    assert response["Cache-Control"] == "no-store"


def test_replaying_a_rotated_refresh_token_fails_and_revokes_the_family(logged_in, web_app, tokens):
    heard = []
    signals.refresh_token_replayed.connect(lambda **kw: heard.append(kw), weak=False, dispatch_uid="t-replay")
    try:
        newer = _refresh(logged_in, web_app, tokens["refresh_token"]).json()
        replay = _refresh(logged_in, web_app, tokens["refresh_token"])
        assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
        # The whole family is revoked: the newer refresh token fails too.
        assert _refresh(logged_in, web_app, newer["refresh_token"]).json()["error"] == "invalid_grant"
        assert heard and heard[0]["application"] == web_app
    finally:
        signals.refresh_token_replayed.disconnect(dispatch_uid="t-replay")


def test_refresh_cannot_widen_scope(logged_in, web_app, tokens):
    response = _refresh(logged_in, web_app, tokens["refresh_token"], scope="openid profile email")
    assert response.status_code == 400 and response.json()["error"] == "invalid_scope"


def test_refresh_may_narrow_scope(logged_in, web_app, tokens):
    response = _refresh(logged_in, web_app, tokens["refresh_token"], scope="openid")
    assert response.status_code == 200 and response.json()["scope"] == "openid"


def test_refresh_token_of_another_client_is_invalid_grant(logged_in, web_app, tokens, db):
    """oidcc-refresh-token: a refresh token is bound to its client."""
    other = ApplicationFactory(application_type=policy.WEB, grant_types=["authorization_code", "refresh_token"])
    assert _refresh(logged_in, other, tokens["refresh_token"]).json()["error"] == "invalid_grant"


def test_refresh_refused_once_the_policy_forbids_it(logged_in, web_app, tokens):
    set_policy(policy.WEB, policy.REFRESH_TOKEN, policy.FORBIDDEN)
    assert _refresh(logged_in, web_app, tokens["refresh_token"]).json()["error"] == "unauthorized_client"


def test_refresh_family_expires_after_its_maximum_lifetime(logged_in, web_app, tokens, settings):
    get_refresh_token_model().objects.update(created=timezone.now() - timedelta(days=91))
    assert _refresh(logged_in, web_app, tokens["refresh_token"]).json()["error"] == "invalid_grant"


def test_refresh_family_lifetime_counts_from_its_first_token(logged_in, web_app, tokens):
    newer = _refresh(logged_in, web_app, tokens["refresh_token"]).json()
    # Only the family's first token is old: the newer one is refused all the same.
    get_refresh_token_model().objects.filter(token_checksum=token_checksum(tokens["refresh_token"])).update(created=timezone.now() - timedelta(days=91))
    assert _refresh(logged_in, web_app, newer["refresh_token"]).json()["error"] == "invalid_grant"


def test_a_rotated_refresh_token_leaves_its_access_token_revoked(logged_in, web_app, tokens):
    _refresh(logged_in, web_app, tokens["refresh_token"])
    userinfo = logged_in.get("/oidc/me", HTTP_AUTHORIZATION=f"Bearer {tokens['access_token']}")
    assert userinfo.status_code == 401


def test_refresh_without_rotation_keeps_the_refresh_token(logged_in, web_app, tokens, settings):
    """A site that turns DOT's ROTATE_REFRESH_TOKEN off gets DOT's reuse of the token."""
    settings.OAUTH2_PROVIDER = {**settings.OAUTH2_PROVIDER, "ROTATE_REFRESH_TOKEN": False}
    first = _refresh(logged_in, web_app, tokens["refresh_token"])
    assert first.status_code == 200, first.content
    assert first.json()["refresh_token"] == tokens["refresh_token"]
    second = _refresh(logged_in, web_app, tokens["refresh_token"])
    assert second.status_code == 200, second.content
    assert second.json()["access_token"] != first.json()["access_token"]


def test_app_without_refresh_grant_gets_no_refresh_token(logged_in, db):
    app = ApplicationFactory(application_type=policy.WEB, grant_types=["authorization_code"])
    body = exchange(logged_in, app, get_code(logged_in, app)["code"], secret=app.plaintext_secret).json()
    assert "refresh_token" not in body


@pytest.fixture
def password_app(db):
    return ApplicationFactory(application_type=policy.WEB, grant_types=["password", "refresh_token"])


def _password(client, app, username, password, scope="openid profile"):
    return client.post(
        "/oidc/token", {"grant_type": "password", "username": username, "password": password, "scope": scope},
        HTTP_AUTHORIZATION=basic_auth(app.client_id, app.plaintext_secret),
    )


def test_password_grant_returns_access_id_and_refresh_tokens(client, password_app, user):
    response = _password(client, password_app, user.username, PASSWORD)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["access_token"] and body["refresh_token"]
    claims = verify_id_token(client, body["id_token"], password_app.client_id)
    assert claims["sub"] == subject(user) and claims["azp"] == password_app.client_id


def test_password_grant_without_openid_has_no_id_token(client, password_app, user):
    body = _password(client, password_app, user.username, PASSWORD, scope="read").json()
    assert "id_token" not in body and body["access_token"]


def test_password_grant_wrong_password_is_invalid_grant(client, password_app, user):
    response = _password(client, password_app, user.username, "wrong")
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"


def test_password_grant_inactive_user_is_invalid_grant(client, password_app, user):
    user.is_active = False
    user.save()
    assert _password(client, password_app, user.username, PASSWORD).json()["error"] == "invalid_grant"


def test_password_grant_for_a_spa_is_refused(client, db, user):
    from tests.helpers import pkce_pair  # noqa: F401  (spa is public: no secret)

    spa = ApplicationFactory(application_type=policy.SPA, redirect_uris="https://spa.example.com/cb")
    response = client.post("/oidc/token", {"grant_type": "password", "username": user.username, "password": PASSWORD, "client_id": spa.client_id})
    assert response.json()["error"] == "unauthorized_client"
