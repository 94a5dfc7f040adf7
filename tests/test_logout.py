"""RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0)."""

from urllib.parse import parse_qs, urlsplit

from oidc_provider import keys
from tests.helpers import exchange, get_code


def _id_token(client, app):
    return exchange(client, app, get_code(client, app)["code"], secret=app.plaintext_secret).json()


def test_logout_with_hint_redirects_to_the_registered_uri_with_state(logged_in, web_app):
    tokens = _id_token(logged_in, web_app)
    response = logged_in.get(
        "/oidc/session/end",
        {"id_token_hint": tokens["id_token"], "post_logout_redirect_uri": "https://rp.example.com/logged-out", "state": "bye"},
    )
    assert response.status_code == 302
    location = urlsplit(response["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == "https://rp.example.com/logged-out"
    assert parse_qs(location.query)["state"] == ["bye"]
    assert "_auth_user_id" not in logged_in.session
    # The logging-out application's tokens are revoked.
    assert logged_in.get("/oidc/me", HTTP_AUTHORIZATION=f"Bearer {tokens['access_token']}").status_code == 401


def test_unregistered_post_logout_uri_ends_on_the_logged_out_page(logged_in, web_app):
    tokens = _id_token(logged_in, web_app)
    response = logged_in.get(
        "/oidc/session/end",
        {"id_token_hint": tokens["id_token"], "post_logout_redirect_uri": "https://evil.example.com/"},
    )
    assert response.status_code == 200
    assert "Location" not in response
    assert "_auth_user_id" not in logged_in.session


def test_logout_without_hint_asks_for_confirmation_with_csrf(user, web_app):
    from django.test import Client

    browser = Client(enforce_csrf_checks=True)
    browser.force_login(user)
    page = browser.get("/oidc/session/end")
    assert page.status_code == 200 and b"csrfmiddlewaretoken" in page.content
    assert browser.post("/oidc/session/end", {"allow": "true"}).status_code == 403  # no CSRF token
    assert "_auth_user_id" in browser.session


def test_logout_after_key_rotation_still_accepts_the_old_hint(logged_in, web_app):
    tokens = _id_token(logged_in, web_app)
    keys.rotate()
    response = logged_in.get(
        "/oidc/session/end",
        {"id_token_hint": tokens["id_token"], "post_logout_redirect_uri": "https://rp.example.com/logged-out"},
    )
    assert response.status_code == 302


def test_logout_with_unknown_client_id_is_not_a_server_error(logged_in, db):
    response = logged_in.get("/oidc/session/end", {"client_id": "nope", "post_logout_redirect_uri": "https://x.example/"})
    assert response.status_code < 500


def test_logout_with_garbage_hint_is_a_400(logged_in, db):
    response = logged_in.get("/oidc/session/end", {"id_token_hint": "not.a.jwt"})
    assert 400 <= response.status_code < 500


def test_a_hint_without_the_users_session_revokes_nothing(logged_in, web_app):
    """A leaked ID token is not a credential: logout without the user's session keeps their tokens."""
    from django.test import Client

    tokens = _id_token(logged_in, web_app)
    Client().get("/oidc/session/end", {"id_token_hint": tokens["id_token"], "post_logout_redirect_uri": "https://rp.example.com/logged-out"})
    assert logged_in.get("/oidc/me", HTTP_AUTHORIZATION=f"Bearer {tokens['access_token']}").status_code == 200
