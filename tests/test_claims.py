"""Claims per scope (OIDC Core 5.4) in userinfo and the ID token."""

from oidc_provider.claims import subject
from tests.helpers import basic_auth, exchange, get_code, verify_id_token


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


def test_an_access_token_in_the_userinfo_query_string_is_refused_and_a_form_body_accepted(logged_in, web_app):
    """RFC 6750 §2 and RFC 9700 §2.4: a bearer token travels in the Authorization header or a
    form body (§2.2), never in the URL, where logs, history and Referer headers keep it."""
    token = _tokens(logged_in, web_app, "openid email")["access_token"]
    for headers in ({}, {"HTTP_AUTHORIZATION": f"Bearer {token}"}):
        response = logged_in.get(f"/oidc/me?access_token={token}", **headers)
        assert response.status_code == 400
        assert response.json()["error"] == "invalid_request"
        assert 'error="invalid_request"' in response["WWW-Authenticate"]
        assert "Authorization header" in response.json()["error_description"]
    response = logged_in.post("/oidc/me", {"access_token": token})
    assert response.status_code == 200 and "email" in response.json()


def test_userinfo_without_or_with_bad_token_is_401_with_www_authenticate(client, db):
    """RFC 6750 §3: a 401 names the Bearer scheme; its body is the JSON error its type says."""
    for header in ({}, {"HTTP_AUTHORIZATION": "Bearer nope"}, {"HTTP_AUTHORIZATION": "Basic xx"}):
        response = client.get("/oidc/me", **header)
        assert response.status_code == 401
        assert "Bearer" in response.get("WWW-Authenticate", "")
        assert response["Content-Type"] == "application/json"
        assert response.json()["error"] == "invalid_token"


def test_userinfo_needs_the_openid_scope(logged_in, web_app):
    tokens = _tokens(logged_in, web_app, "read")
    response = logged_in.get("/oidc/me", HTTP_AUTHORIZATION=f"Bearer {tokens['access_token']}")
    assert response.status_code == 403


def test_a_token_made_before_the_user_had_a_sub_gets_one_at_userinfo_and_keeps_it(client, web_app, user):
    """A site that installs the provider over existing users and tokens: `sub` is made on first use."""
    import secrets
    from datetime import timedelta

    from django.utils import timezone
    from oauth2_provider.models import get_access_token_model

    from oidc_provider.models import Subject

    raw = secrets.token_urlsafe(30)
    get_access_token_model().objects.create(
        user=user, application=web_app, token=raw, scope="openid profile", expires=timezone.now() + timedelta(hours=1),
    )
    assert not Subject.objects.filter(user=user).exists()
    first = client.get("/oidc/me", HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert first.status_code == 200, first.content
    again = client.get("/oidc/me", HTTP_AUTHORIZATION=f"Bearer {raw}").json()
    assert first.json()["sub"] == again["sub"] == Subject.objects.get(user=user).value
    assert again["preferred_username"] == user.username
    # Introspection reads the token the same way and names the same subject.
    introspected = client.post(
        "/oidc/token/introspection", {"token": raw},
        HTTP_AUTHORIZATION=basic_auth(web_app.client_id, web_app.plaintext_secret),
    ).json()
    assert introspected["active"] is True and introspected["sub"] == again["sub"]
