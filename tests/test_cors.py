"""CORS for browser applications at the token, userinfo and revocation endpoints (Fetch
standard, CORS protocol), and the origins an application allows."""

import json
from io import StringIO

import pytest
from django.core.management import call_command

from oidc_provider import policy
from oidc_provider.models import Application
from tests.helpers import get_code, pkce_pair

SPA_ORIGIN = "https://spa.example.com"
ENDPOINTS = [("/oidc/token", "POST"), ("/oidc/me", "GET"), ("/oidc/token/revocation", "POST")]


def preflight(client, path, origin, method):
    return client.options(path, HTTP_ORIGIN=origin, HTTP_ACCESS_CONTROL_REQUEST_METHOD=method,
                          HTTP_ACCESS_CONTROL_REQUEST_HEADERS="authorization, content-type")


def create_app(*args):
    out = StringIO()
    call_command("oidc_app", "create", "--json", *args, stdout=out)
    return json.loads(out.getvalue())


@pytest.mark.parametrize("path, method", ENDPOINTS)
def test_a_preflight_from_an_origin_an_application_allows_is_answered(client, spa_app, path, method):
    """Fetch standard, CORS-preflight fetch: the answer names the origin, the method and the
    headers a browser app sends (Authorization for userinfo, Content-Type for the forms)."""
    spa_app.allowed_origins = SPA_ORIGIN
    spa_app.save()
    response = preflight(client, path, SPA_ORIGIN, method)
    assert response.status_code == 204
    assert response["Access-Control-Allow-Origin"] == SPA_ORIGIN
    assert method in response["Access-Control-Allow-Methods"]
    assert {"authorization", "content-type"} <= {h.strip().lower() for h in response["Access-Control-Allow-Headers"].split(",")}
    assert int(response["Access-Control-Max-Age"]) > 0
    assert "Origin" in response["Vary"]


@pytest.mark.parametrize("path, method", ENDPOINTS)
def test_a_preflight_from_an_origin_no_application_allows_gets_no_cors_headers(client, spa_app, path, method):
    """Fetch standard: without Access-Control-Allow-Origin the browser refuses the request."""
    spa_app.allowed_origins = SPA_ORIGIN
    spa_app.save()
    for origin in ("https://evil.example.com", "https://spa.example.com.evil.example", "https://spa.example"):
        response = preflight(client, path, origin, method)
        assert "Access-Control-Allow-Origin" not in response, origin
        assert "Access-Control-Allow-Methods" not in response


def test_an_spa_redeems_its_code_from_its_own_origin(logged_in, spa_app):
    """RFC 6749 §3.2 from a browser: the token response may be read by the SPA's origin only."""
    spa_app.allowed_origins = SPA_ORIGIN
    spa_app.save()
    verifier, challenge = pkce_pair()
    code = get_code(logged_in, spa_app, code_challenge=challenge, code_challenge_method="S256")["code"]
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": spa_app.redirect_uris.split()[0],
            "client_id": spa_app.client_id, "code_verifier": verifier}
    response = logged_in.post("/oidc/token", data, HTTP_ORIGIN=SPA_ORIGIN)
    assert response.status_code == 200, response.content
    assert response["Access-Control-Allow-Origin"] == SPA_ORIGIN


def test_a_revocation_from_the_clients_origin_is_readable_there_and_not_elsewhere(client, spa_app):
    """RFC 7009 §2 from a browser: the client's registered origin may read the answer."""
    spa_app.allowed_origins = SPA_ORIGIN
    spa_app.save()
    data = {"token": "not-a-token", "client_id": spa_app.client_id}
    response = client.post("/oidc/token/revocation", data, HTTP_ORIGIN=SPA_ORIGIN)
    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == SPA_ORIGIN
    response = client.post("/oidc/token/revocation", data, HTTP_ORIGIN="https://evil.example.com")
    assert "Access-Control-Allow-Origin" not in response


@pytest.mark.parametrize("application_type", [policy.SPA, policy.NATIVE])
def test_a_browser_or_native_app_made_with_the_cli_allows_its_redirect_uris_origins(db, application_type):
    """Without --allowed-origin, an SPA's (and a native app's) origins are those of its
    http(s) redirect URIs, each once; a custom scheme has no web origin."""
    uris = ["https://spa.example.com/cb", "https://spa.example.com/silent", "http://127.0.0.1:5173/cb"]
    if application_type == policy.NATIVE:
        uris.append("com.example.app:/callback")
    data = create_app("--name", "Browser", "--type", application_type, *[a for u in uris for a in ("--redirect-uri", u)])
    assert data["allowed_origins"] == ["https://spa.example.com", "http://127.0.0.1:5173"]
    assert Application.objects.get(client_id=data["client_id"]).allowed_origins == "https://spa.example.com http://127.0.0.1:5173"


def test_allowed_origins_given_to_the_cli_replace_the_default(db):
    data = create_app("--name", "Browser", "--type", policy.SPA, "--redirect-uri", "https://spa.example.com/cb",
                      "--allowed-origin", "https://app.example.com", "--allowed-origin", "https://beta.example.com")
    assert data["allowed_origins"] == ["https://app.example.com", "https://beta.example.com"]


def test_a_web_application_allows_no_origin_unless_told(db):
    """A web app redeems its code from its server, not from a browser."""
    data = create_app("--name", "Server", "--type", policy.WEB, "--redirect-uri", "https://rp.example.com/cb")
    assert data["allowed_origins"] == []


def test_an_allowed_origin_that_is_not_an_origin_is_refused_by_the_cli(db):
    from django.core.management import CommandError

    for origin in ("https://spa.example.com/path", "http://spa.example.com", "spa.example.com"):
        with pytest.raises(CommandError, match="allowed_origins"):
            create_app("--name", "Browser", "--type", policy.SPA, "--redirect-uri", "https://spa.example.com/cb",
                       "--allowed-origin", origin)
    assert not Application.objects.exists()


def test_an_spa_made_with_the_console_flow_chooser_allows_its_redirect_uris_origin(admin_client):
    """The console creates through the same operation as the CLI, so the same default holds."""
    from tests.test_console_admin import FLOW_URL, SPA_ANSWERS

    response = admin_client.post(FLOW_URL, {**SPA_ANSWERS, "name": "Shop front", "redirect_uris": "https://shop.example.com/cb"},
                                 follow=True)
    assert Application.objects.get(name="Shop front").allowed_origins == "https://shop.example.com"
    page = response.content.decode()
    assert "Allowed origins (CORS)" in page and "<code>https://shop.example.com</code>" in page


def test_the_credentials_page_names_the_allowed_origins_in_chinese(admin_client):
    from tests.test_console_admin import FLOW_URL, SPA_ANSWERS

    admin_client.cookies["django_language"] = "zh-hans"
    response = admin_client.post(FLOW_URL, {**SPA_ANSWERS, "name": "Shop front", "redirect_uris": "https://shop.example.com/cb"},
                                 follow=True)
    assert "允许的来源（CORS）" in response.content.decode()
