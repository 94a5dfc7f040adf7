"""Authorization code flow, with and without PKCE (RFC 6749 §4.1, RFC 7636, OIDC Core 3.1)."""

from oidc_provider.claims import subject
from oidc_provider import policy
from tests.factories import ApplicationFactory
from tests.helpers import authorize, consent, exchange, get_code, pkce_pair, query_of, verify_id_token


def test_code_flow_issues_access_id_and_refresh_tokens_with_client_secret_basic(logged_in, web_app, user):
    """OIDCC-3.1.3.3: a successful token response carries access, ID and (may refresh) refresh tokens."""
    params = get_code(logged_in, web_app, state="st-1")
    assert params["state"] == "st-1"
    response = exchange(logged_in, web_app, params["code"], secret=web_app.plaintext_secret)
    assert response.status_code == 200, response.content
    assert response["Cache-Control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["access_token"] and body["refresh_token"] and body["id_token"]
    claims = verify_id_token(logged_in, body["id_token"], web_app.client_id)
    assert claims["sub"] == subject(user)
    assert claims["aud"] == web_app.client_id
    assert claims["azp"] == web_app.client_id
    assert claims["nonce"] == "n-0S6_WzA2Mj"
    assert claims["iss"] == "http://127.0.0.1:8000/oidc"
    assert claims["exp"] > claims["iat"]
    assert isinstance(claims["auth_time"], int)
    assert "at_hash" in claims


def test_code_flow_with_client_secret_post(logged_in, web_app):
    """OIDCC client_secret_post: credentials in the form body are accepted."""
    code = get_code(logged_in, web_app)["code"]
    response = exchange(logged_in, web_app, code, client_id=web_app.client_id, client_secret=web_app.plaintext_secret)
    assert response.status_code == 200, response.content
    assert "id_token" in response.json()


def test_id_token_header_names_a_kid_published_in_jwks(logged_in, web_app):
    """OIDCC-10.1 / EnsureIdTokenContainsKid: RS256 and a kid the JWKS publishes."""
    import jwt

    body = exchange(logged_in, web_app, get_code(logged_in, web_app)["code"], secret=web_app.plaintext_secret).json()
    header = jwt.get_unverified_header(body["id_token"])
    assert header["alg"] == "RS256"
    kids = [k["kid"] for k in logged_in.get("/oidc/.well-known/jwks.json").json()["keys"]]
    assert header["kid"] in kids


def test_spa_code_flow_with_pkce_s256_and_no_secret(logged_in, spa_app):
    """RFC 7636 §4.6: a public client proves possession with the verifier."""
    verifier, challenge = pkce_pair()
    code = get_code(logged_in, spa_app, code_challenge=challenge, code_challenge_method="S256")["code"]
    response = exchange(logged_in, spa_app, code, code_verifier=verifier)
    assert response.status_code == 200, response.content
    body = response.json()
    verify_id_token(logged_in, body["id_token"], spa_app.client_id)
    # spa may not refresh under the default policy.
    assert "refresh_token" not in body


def test_web_app_may_use_pkce_too(logged_in, web_app):
    verifier, challenge = pkce_pair()
    code = get_code(logged_in, web_app, code_challenge=challenge, code_challenge_method="S256")["code"]
    response = exchange(logged_in, web_app, code, secret=web_app.plaintext_secret, code_verifier=verifier)
    assert response.status_code == 200, response.content


def test_web_app_pkce_challenge_binds_the_code(logged_in, web_app):
    """A web app that sent a challenge must send the matching verifier."""
    _verifier, challenge = pkce_pair()
    code = get_code(logged_in, web_app, code_challenge=challenge, code_challenge_method="S256")["code"]
    response = exchange(logged_in, web_app, code, secret=web_app.plaintext_secret, code_verifier="x" * 50)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


def test_a_code_issued_without_a_challenge_is_refused_when_a_verifier_is_sent(logged_in, web_app):
    """RFC 9700 §2.1.1: a token request with code_verifier is accepted only if the authorization
    request carried code_challenge (PKCE downgrade)."""
    code = get_code(logged_in, web_app)["code"]
    response = exchange(logged_in, web_app, code, secret=web_app.plaintext_secret, code_verifier="a" * 50)
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "invalid_grant"
    assert "code_challenge" in body["error_description"]
    assert "access_token" not in body


def test_native_app_with_loopback_redirect_on_any_port(logged_in, db):
    """RFC 8252 §7.3: a native app's loopback redirect may use any port."""
    app = ApplicationFactory(application_type=policy.NATIVE, redirect_uris="http://127.0.0.1/callback")
    verifier, challenge = pkce_pair()
    response = authorize(
        logged_in, app, redirect_uri="http://127.0.0.1:53123/callback", code_challenge=challenge, code_challenge_method="S256"
    )
    response = consent(logged_in, response)
    assert response["Location"].startswith("http://127.0.0.1:53123/callback?")
    code = query_of(response)["code"]
    token = exchange(logged_in, app, code, redirect_uri="http://127.0.0.1:53123/callback", code_verifier=verifier)
    assert token.status_code == 200, token.content


def test_authorization_request_by_post_is_accepted_without_csrf(client, user, web_app):
    """OIDCC-3.1.2.1: the authorization endpoint accepts form-encoded POST from the RP's page."""
    from django.test import Client

    browser = Client(enforce_csrf_checks=True)
    browser.force_login(user)
    web_app.skip_authorization = True
    web_app.save()
    response = browser.post(
        "/oidc/auth",
        {
            "client_id": web_app.client_id,
            "redirect_uri": "https://rp.example.com/callback",
            "response_type": "code",
            "scope": "openid",
            "state": "posted",
        },
    )
    assert response.status_code == 302, response.content[:300]
    params = query_of(response)
    assert params["state"] == "posted" and params["code"]


def test_skip_consent_application_redirects_at_once(logged_in, web_app):
    web_app.skip_authorization = True
    web_app.save()
    response = authorize(logged_in, web_app)
    assert response.status_code == 302
    assert "code" in query_of(response)


def test_consent_is_remembered_for_the_same_scopes(logged_in, web_app):
    get_code(logged_in, web_app, scope="openid profile")
    response = authorize(logged_in, web_app, scope="openid")
    assert response.status_code == 302 and "code" in query_of(response)
    # A wider request asks again.
    assert authorize(logged_in, web_app, scope="openid email").status_code == 200


def test_unknown_parameters_are_ignored(logged_in, web_app):
    """oidcc-ensure-request-with-unknown-parameter-succeeds (RFC 6749 §3.1)."""
    assert "code" in get_code(logged_in, web_app, extra="foobar", display="page", ui_locales="en")


def test_response_type_words_in_any_order_name_the_same_type(logged_in, web_app):
    web_app.grant_types = ["authorization_code", "hybrid"]
    web_app.save()
    params = get_code(logged_in, web_app, response_type="id_token code")
    assert "code" in params and "id_token" in params
