"""Claims per scope (OIDC Core 5.4) in userinfo and the ID token."""

from oidc_provider.claims import subject
from tests.helpers import exchange, get_code, verify_id_token


def _tokens(client, app, scope):
    code = get_code(client, app, scope=scope)["code"]
    return exchange(client, app, code, secret=app.plaintext_secret).json()


def test_userinfo_returns_claims_of_granted_scopes(logged_in, web_app, user):
    """oidcc-scope-profile / -email: claims from userinfo when an access token is issued."""
    tokens = _tokens(logged_in, web_app, "openid profile email")
    info = logged_in.get("/oidc/me", HTTP_AUTHORIZATION=f"Bearer {tokens['access_token']}").json()
    assert info["sub"] == subject(user)
    assert info["name"] == "Ada Lovelace"
    assert info["given_name"] == "Ada" and info["family_name"] == "Lovelace"
    assert info["preferred_username"] == user.username
    assert info["email"] == user.email
    claims = verify_id_token(logged_in, tokens["id_token"], web_app.client_id)
    # An access token was issued, so profile claims live at userinfo, not in the ID token.
    assert "email" not in claims and "name" not in claims


def test_openid_scope_alone_releases_only_sub(logged_in, web_app, user):
    tokens = _tokens(logged_in, web_app, "openid")
    info = logged_in.get("/oidc/me", HTTP_AUTHORIZATION=f"Bearer {tokens['access_token']}").json()
    assert info == {"sub": subject(user)}


def test_userinfo_by_post_with_bearer_header(logged_in, web_app):
    tokens = _tokens(logged_in, web_app, "openid email")
    response = logged_in.post("/oidc/me", HTTP_AUTHORIZATION=f"Bearer {tokens['access_token']}")
    assert response.status_code == 200
    assert "email" in response.json()


def test_userinfo_without_or_with_bad_token_is_401_with_www_authenticate(client, db):
    for header in ({}, {"HTTP_AUTHORIZATION": "Bearer nope"}, {"HTTP_AUTHORIZATION": "Basic xx"}):
        response = client.get("/oidc/me", **header)
        assert response.status_code == 401
        assert "Bearer" in response.get("WWW-Authenticate", "")


def test_userinfo_needs_the_openid_scope(logged_in, web_app):
    tokens = _tokens(logged_in, web_app, "read")
    response = logged_in.get("/oidc/me", HTTP_AUTHORIZATION=f"Bearer {tokens['access_token']}")
    assert response.status_code == 403
