"""The machine-to-machine endpoints skip the browser middleware (oidc_provider.middleware), and lose nothing by it."""

import pytest
from django.conf import settings as site_settings
from django.test import Client, override_settings
from django.urls import include, path

from oidc_provider import policy
from tests.factories import ApplicationFactory
from tests.helpers import authorize, basic_auth, query_of

ZH = {"HTTP_ACCEPT_LANGUAGE": "zh-Hans"}

# A site that mounts the provider elsewhere (ROOT_URLCONF = this module).
urlpatterns = [path("idp/", include("oidc_provider.urls"))]


@pytest.fixture
def service_app(db):
    return ApplicationFactory(application_type=policy.SERVICE, redirect_uris="", post_logout_redirect_uris="")


def _cc(client, app, **extra):
    return client.post("/oidc/token", {"grant_type": "client_credentials", "scope": "read"},
                       HTTP_AUTHORIZATION=basic_auth(app.client_id, app.plaintext_secret), **extra)


@pytest.mark.parametrize("path", ["/oidc/.well-known/openid-configuration", "/oidc/.well-known/jwks.json"])
def test_documents_keep_the_site_security_headers_and_set_no_cookie(client, db, path):
    response = client.get(path)
    assert response.status_code == 200
    # SecurityMiddleware sits above the short way and still answers for these responses.
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert not response.cookies


def test_token_response_sets_no_session_cookie_even_for_a_logged_in_browser(client, service_app, user):
    client.force_login(user)
    response = _cc(client, service_app)
    assert response.status_code == 200, response.content
    assert response["Cache-Control"] == "no-store"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert not response.cookies


def test_protocol_errors_stay_ascii_english_after_a_chinese_page_in_the_same_thread(client, db):
    # The hosted login page activates zh-Hans in this thread (LocaleMiddleware) ...
    page = client.get("/accounts/login/", **ZH)
    assert page.status_code == 200 and "登录" in page.content.decode()
    # ... and the token endpoint, which has no LocaleMiddleware, must not inherit it:
    # RFC 6749 §5.2 allows only ASCII in error_description.
    app = ApplicationFactory(application_type=policy.WEB, grant_types=["authorization_code"])
    response = _cc(client, app, **ZH)
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "unauthorized_client"
    assert body["error_description"].isascii(), body


def test_endpoints_work_unchanged_with_atomic_requests(service_app, settings):
    settings.DATABASES["default"]["ATOMIC_REQUESTS"] = True
    try:
        client = Client()  # its handler loads the middleware now, with the setting on
        token = _cc(client, service_app)
        assert token.status_code == 200, token.content
        introspection = client.post(
            "/oidc/token/introspection", {"token": token.json()["access_token"]},
            HTTP_AUTHORIZATION=basic_auth(service_app.client_id, service_app.plaintext_secret),
        )
        assert introspection.json()["active"] is True
    finally:
        settings.DATABASES["default"]["ATOMIC_REQUESTS"] = False


@override_settings(MIDDLEWARE=[m for m in site_settings.MIDDLEWARE if "ProtocolEndpoint" not in m])
def test_a_site_without_the_middleware_serves_the_same_answers(service_app):
    response = _cc(Client(), service_app)
    assert response.status_code == 200, response.content
    assert response.json()["token_type"] == "Bearer"
    assert Client().get("/oidc/.well-known/jwks.json").json()["keys"]


def test_a_new_urlconf_applies_to_the_protocol_endpoints_at_once(service_app):
    """The middleware remembers where the endpoints are; not past a change of URLconf."""
    client = Client()
    assert _cc(client, service_app).status_code == 200
    with override_settings(ROOT_URLCONF=__name__):
        assert _cc(client, service_app).status_code == 404
        moved = client.post("/idp/token", {"grant_type": "client_credentials", "scope": "read"},
                            HTTP_AUTHORIZATION=basic_auth(service_app.client_id, service_app.plaintext_secret))
        assert moved.status_code == 200, moved.content
    assert _cc(client, service_app).status_code == 200


@override_settings(MIDDLEWARE=[m for m in site_settings.MIDDLEWARE if "ProtocolEndpoint" not in m]
                   + ["django.contrib.auth.middleware.LoginRequiredMiddleware"])
def test_on_a_site_that_checks_csrf_and_requires_login_the_endpoints_stay_open_and_guarded(service_app):
    """A team's site: CsrfViewMiddleware enforced, LoginRequiredMiddleware on. The views are
    CSRF-exempt, need no login, and still refuse malformed input (MachineEndpoint)."""
    client = Client(enforce_csrf_checks=True)
    auth = basic_auth(service_app.client_id, service_app.plaintext_secret)
    token = _cc(client, service_app)
    assert token.status_code == 200, token.content
    access_token = token.json()["access_token"]
    introspection = client.post("/oidc/token/introspection", {"token": access_token}, HTTP_AUTHORIZATION=auth)
    assert introspection.status_code == 200 and introspection.json()["active"] is True
    # A client-credentials token has no user: userinfo answers (403, insufficient scope), not a login redirect.
    userinfo = client.get("/oidc/me", HTTP_AUTHORIZATION=f"Bearer {access_token}")
    assert userinfo.status_code == 403 and userinfo.json()["error"] == "insufficient_scope"
    revocation = client.post("/oidc/token/revocation", {"token": access_token}, HTTP_AUTHORIZATION=auth)
    assert revocation.status_code == 200
    assert client.post("/oidc/token/introspection", {"token": access_token}, HTTP_AUTHORIZATION=auth).json() == {"active": False}
    for endpoint in ("/oidc/token", "/oidc/token/introspection", "/oidc/token/revocation", "/oidc/me"):
        refused = client.post(endpoint, {"token": "a\x00b", "grant_type": "client_credentials"}, HTTP_AUTHORIZATION=auth)
        assert refused.status_code == 400, (endpoint, refused.content)
        assert refused.json()["error"] == "invalid_request" and "NUL" in refused.json()["error_description"]


@override_settings(MIDDLEWARE=[*site_settings.MIDDLEWARE, "django.contrib.auth.middleware.LoginRequiredMiddleware"])
def test_on_a_site_that_requires_login_authorize_answers_the_relying_party_itself(client, web_app):
    """LoginRequiredMiddleware would send /oidc/auth to the login page before the client is
    checked; prompt=none must come back to the relying party as login_required instead."""
    response = authorize(client, web_app, prompt="none")
    assert response.status_code == 302
    assert response["Location"].startswith(web_app.redirect_uris.split()[0])
    assert query_of(response)["error"] == "login_required"
    # A request without prompt=none goes to our hosted login page, which answers with its form.
    to_login = authorize(client, web_app)
    assert to_login.status_code == 302 and to_login["Location"].startswith("/accounts/login/")
    page = client.get(to_login["Location"])
    assert page.status_code == 200 and page["X-Frame-Options"] == "DENY"
