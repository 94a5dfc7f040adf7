"""Claims per scope (OIDC Core 5.4) in userinfo and the ID token."""

import json

import pytest

from oidc_provider.claims import subject
from tests.helpers import authorize, basic_auth, exchange, get_code, query_of, verify_id_token


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


# -- the claims request parameter (OIDC Core 5.5) ------------------------------------------------


def test_a_claims_request_puts_the_asked_claims_in_the_id_token_of_a_code_flow(logged_in, web_app, user):
    """OIDC Core 5.5: claims asked for in the id_token member are returned in the ID token,
    also when it comes from the token endpoint, and they survive the consent page."""
    request = json.dumps({"id_token": {"email": {"essential": True}, "name": None}})
    code = get_code(logged_in, web_app, scope="openid email profile", claims=request)["code"]
    tokens = exchange(logged_in, web_app, code, secret=web_app.plaintext_secret).json()
    claims = verify_id_token(logged_in, tokens["id_token"], web_app.client_id)
    assert claims["email"] == user.email
    assert claims["name"] == "Ada Lovelace"
    assert "given_name" not in claims  # asked for nothing else


def test_a_claims_request_never_releases_a_claim_beyond_the_granted_scopes(logged_in, web_app, user):
    """OIDC Core 5.5 and 5.4: a claims request picks among the claims the user consented to
    (by scope); email without the email scope is not released, in the ID token or at userinfo."""
    request = json.dumps({"id_token": {"email": {"essential": True}}, "userinfo": {"email": {"essential": True}}})
    code = get_code(logged_in, web_app, scope="openid profile", claims=request)["code"]
    tokens = exchange(logged_in, web_app, code, secret=web_app.plaintext_secret).json()
    assert "email" not in verify_id_token(logged_in, tokens["id_token"], web_app.client_id)
    info = logged_in.get("/oidc/me", HTTP_AUTHORIZATION=f"Bearer {tokens['access_token']}").json()
    assert "email" not in info and info["name"] == "Ada Lovelace"


def test_a_claims_request_for_another_users_sub_is_refused_with_login_required(logged_in, web_app, user):
    """OIDC Core 5.5.1: with sub asked for with a value, only that user gets a positive response."""
    request = json.dumps({"id_token": {"sub": {"value": "someone-else"}}})
    response = authorize(logged_in, web_app, claims=request)
    assert response.status_code == 302
    params = query_of(response)
    assert params["error"] == "login_required" and "sub" in params["error_description"]
    assert "code" not in params


def test_a_claims_request_for_the_users_own_sub_is_served(logged_in, web_app, user):
    """OIDC Core 5.5.1: the sub value of the logged-in user gets the usual response."""
    request = json.dumps({"id_token": {"sub": {"value": subject(user)}}})
    assert "code" in get_code(logged_in, web_app, claims=request)


@pytest.mark.parametrize("request_value, named", [
    ("{", "not JSON"),
    ('["email"]', "JSON object"),
    ('{"id_token": ["email"]}', "claims.id_token"),
    ('{"userinfo": {"email": true}}', "claims.userinfo.email"),
    ('{"id_token": {"email": {"essential": "yes"}}}', "essential"),
    ('{"id_token": {"email": {"values": "a"}}}', "values"),
    ("[" * 1999 + "]" * 1999, "JSON"),
    ('{"id_token": {"' + "x" * 4000 + '": null}}', "longer"),
])
def test_a_malformed_claims_request_goes_back_to_the_client_as_invalid_request(logged_in, web_app, request_value, named):
    """OIDC Core 5.5 and 3.1.2.6: a claims parameter that is not a claims request object is
    invalid_request, sent to the (checked) redirect URI with state and iss, saying what is wrong."""
    response = authorize(logged_in, web_app, claims=request_value)
    assert response.status_code == 302
    assert response["Location"].startswith(web_app.redirect_uris.split()[0])
    params = query_of(response)
    assert params["error"] == "invalid_request"
    assert named in params["error_description"]
    assert params["state"] == "xyz" and params["iss"]


def test_a_malformed_claims_request_with_an_unregistered_redirect_uri_is_an_error_page(logged_in, web_app):
    """OIDC Core 3.1.2.6 / RFC 6749 4.1.2.1: never redirect to a URI that was not checked."""
    response = authorize(logged_in, web_app, claims="{", redirect_uri="https://evil.example/cb")
    assert response.status_code == 400
    assert "Location" not in response


def test_unknown_members_of_a_claims_request_are_ignored(logged_in, web_app):
    """OIDC Core 5.5: members that are not understood are ignored."""
    assert "code" in get_code(logged_in, web_app, claims='{"id_token": {"auth_time": {"essential": true}}, "x-other": 1}')


def test_discovery_says_the_claims_parameter_is_supported(client, db):
    """OIDC Discovery 3: claims_parameter_supported matches what the provider does."""
    meta = client.get("/oidc/.well-known/openid-configuration").json()
    assert meta["claims_parameter_supported"] is True
    assert "select_account" in meta["prompt_values_supported"]
