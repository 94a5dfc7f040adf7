"""The authorization endpoint's refusals (RFC 6749 §4.1.2.1, OIDC Core 3.1.2.6)."""

import pytest

from oidc_provider import policy
from tests.factories import ApplicationFactory
from tests.helpers import authorize, consent, fragment_of, pkce_pair, query_of, set_policy


@pytest.mark.parametrize("logged", [False, True])
def test_unknown_client_gets_an_error_page_never_a_redirect(client, user, db, logged):
    """An unknown client gets a 400 page, before any login page: never a redirect to an unchecked URI."""
    if logged:
        client.force_login(user)
    response = client.get(
        "/oidc/auth",
        {"client_id": "nope", "redirect_uri": "https://evil.example/cb", "response_type": "code", "scope": "openid"},
    )
    assert response.status_code == 400
    assert "Location" not in response


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "https://evil.example.com/callback",
        "https://rp.example.com/callback/extra",  # added path
        "https://rp.example.com/callback?x=1",  # added query
        "https://rp.example.com/callbac",
        "http://rp.example.com/callback",  # scheme downgrade
        "https://RP.example.com/callback",
    ],
)
def test_unregistered_redirect_uri_gets_an_error_page_before_login(client, web_app, redirect_uri):
    """oidcc-ensure-registered-redirect-uri: exact matching, error page, no redirect, no login page."""
    response = authorize(client, web_app, redirect_uri=redirect_uri)
    assert response.status_code == 400
    assert "Location" not in response


def test_missing_client_id_gets_an_error_page(client, db):
    response = client.get("/oidc/auth", {"response_type": "code", "redirect_uri": "https://rp.example.com/callback"})
    assert response.status_code == 400


def test_anonymous_user_is_sent_to_the_login_page_after_the_client_checks(client, web_app):
    response = authorize(client, web_app)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=")


def test_spa_without_pkce_is_refused(logged_in, spa_app):
    """RFC 7636 §4.4.1: PKCE required for public clients."""
    response = authorize(logged_in, spa_app)
    assert response.status_code == 302
    params = query_of(response)
    assert params["error"] == "invalid_request"
    assert params["state"] == "xyz"


@pytest.mark.parametrize("method", ["plain", None])
def test_pkce_plain_is_refused(logged_in, spa_app, method):
    """RFC 9700 §2.1.1: only S256 (a missing method means plain)."""
    response = authorize(logged_in, spa_app, code_challenge="a" * 43, code_challenge_method=method)
    assert response.status_code == 302
    assert query_of(response)["error"] == "invalid_request"


def test_response_type_the_app_does_not_hold_is_unsupported(logged_in, web_app):
    """A response type the app may not use under the policy gets unsupported_response_type, redirected."""
    response = authorize(logged_in, web_app, response_type="token")
    assert response.status_code == 302
    params = fragment_of(response) or query_of(response)
    assert params["error"] == "unsupported_response_type"
    assert params["state"] == "xyz"


def test_policy_change_applies_to_the_next_authorization_request(logged_in, web_app):
    set_policy(policy.WEB, policy.AUTHORIZATION_CODE, policy.FORBIDDEN)
    response = authorize(logged_in, web_app)
    assert response.status_code == 302
    assert query_of(response)["error"] == "unsupported_response_type"


def test_consent_denied_sends_access_denied(logged_in, web_app):
    response = authorize(logged_in, web_app)
    form = response.context["form"]
    data = {f.name: f.value() or "" for f in form}
    data.pop("allow", None)
    data.update({"consent_form": "1", "deny": "1"})
    response = logged_in.post("/oidc/auth", data)
    assert response.status_code == 302
    params = query_of(response)
    assert params["error"] == "access_denied"
    assert params["state"] == "xyz"


def test_consent_form_needs_csrf(user, web_app):
    from django.test import Client

    browser = Client(enforce_csrf_checks=True)
    browser.force_login(user)
    page = authorize(browser, web_app)
    data = {f.name: f.value() or "" for f in page.context["form"]}
    data.update({"consent_form": "1", "allow": "1"})
    assert browser.post("/oidc/auth", data).status_code == 403


def test_bad_max_age_is_invalid_request(logged_in, web_app):
    response = authorize(logged_in, web_app, max_age="soon")
    assert query_of(response)["error"] == "invalid_request"


def test_hybrid_missing_nonce_error_travels_in_the_fragment(logged_in, db):
    """Multiple Response Types §5: errors go where the response would have gone."""
    app = ApplicationFactory(application_type=policy.WEB, grant_types=["authorization_code", "hybrid"])
    response = authorize(logged_in, app, response_type="code id_token", nonce=None)
    assert response.status_code == 302
    assert "#" in response["Location"]
    assert fragment_of(response)["error"] == "invalid_request"


def test_garbage_parameters_never_cause_a_server_error(logged_in, web_app):
    for params in (
        {"client_id": "\x00"},
        {"client_id": web_app.client_id, "redirect_uri": "\x00\xff"},
        {"client_id": web_app.client_id, "redirect_uri": "https://rp.example.com/callback", "response_type": "\x00"},
        {"client_id": web_app.client_id, "redirect_uri": "https://rp.example.com/callback", "response_type": "code", "scope": "x" * 10000},
        {"client_id": web_app.client_id, "redirect_uri": "https://rp.example.com/callback", "response_type": "code", "prompt": "none login"},
        {"client_id": web_app.client_id, "redirect_uri": "https://rp.example.com/callback", "response_type": "code", "id_token_hint": "a.b.c"},
        {"client_id": ["a", "b"]},
    ):
        response = logged_in.get("/oidc/auth", params)
        assert response.status_code < 500, params


def test_unknown_scope_is_invalid_scope(logged_in, web_app):
    response = authorize(logged_in, web_app, scope="openid launch_missiles")
    assert response.status_code == 302
    assert query_of(response)["error"] == "invalid_scope"


def test_pkce_challenge_survives_the_consent_page(logged_in, spa_app):
    verifier, challenge = pkce_pair()
    response = consent(logged_in, authorize(logged_in, spa_app, code_challenge=challenge, code_challenge_method="S256"))
    assert "code" in query_of(response)


@pytest.mark.parametrize("parameter, error", [("request", "request_not_supported"),
                                              ("request_uri", "request_uri_not_supported")])
def test_a_request_object_is_refused_by_name_never_ignored(logged_in, web_app, parameter, error):
    """OIDC Core 6.1 and 6.2: an OP that does not support request objects answers
    request_not_supported / request_uri_not_supported, to the redirect URI with the state."""
    value = "eyJhbGciOiJub25lIn0.eyJzY29wZSI6Im9wZW5pZCBlbWFpbCJ9." if parameter == "request" else "https://rp.example.com/r"
    response = authorize(logged_in, web_app, **{parameter: value})
    assert response.status_code == 302
    params = query_of(response)
    assert params["error"] == error and parameter in params["error_description"]
    assert params["state"] == "xyz" and "code" not in params
    discovery = logged_in.get("/oidc/.well-known/openid-configuration").json()
    assert discovery[f"{parameter}_parameter_supported"] is False


def test_a_redirect_uri_that_cannot_be_read_is_an_error_page_for_a_native_app(client, db):
    """RFC 6749 4.1.2.1: a redirect URI that is not a URL (a broken IPv6 host) is refused with
    the error page, never a server error, also where loopback ports may vary (RFC 8252 7.3)."""
    from tests.factories import ApplicationFactory

    from oidc_provider import policy

    app = ApplicationFactory(application_type=policy.NATIVE, redirect_uris="http://127.0.0.1/cb")
    response = client.get("/oidc/auth", {"client_id": app.client_id, "redirect_uri": "http://[::1/cb",
                                         "response_type": "code", "scope": "openid"})
    assert response.status_code == 400
