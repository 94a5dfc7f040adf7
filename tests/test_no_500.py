"""Input that once made the provider answer 500, found from outside; each now gets a clear 4xx
(or, at the authorization endpoint once the client and its redirect URI are verified, the
OAuth error sent back to that redirect URI, RFC 6749 4.1.2.1) that names the parameter, and
changes nothing.

Rule: malformed input of any kind gets a 4xx with a clear message, never a 500, and changes
nothing. A database connection the server ended is replaced and the request still answered.
"""

import json

import pytest
from django.db import connection
from django.test import Client

from oidc_provider import keys

from .factories import ApplicationFactory, UserFactory
from .fuzzing import changes, console_api_credentials, snapshot
from .helpers import REDIRECT_URI, authorize, exchange, pkce_pair, query_of
from .live import live_provider  # noqa: F401

SERVER_ERRORS_RAISE = {"raise_request_exception": True}


@pytest.fixture
def world(db):
    keys.ensure_active_key()
    user = UserFactory(username="alice")
    app = ApplicationFactory(grant_types=["authorization_code", "refresh_token"], skip_authorization=True)
    client = Client(**SERVER_ERRORS_RAISE)
    client.force_login(user)
    return {"user": user, "app": app, "client": client, "before": snapshot()}


def assert_unchanged(world):
    assert changes(world["before"], snapshot()) == {}


# -- the token endpoint -------------------------------------------------------------------------


def test_a_latin1_byte_in_the_authorization_header_is_a_400_naming_the_header(world):
    """RFC 7617: Basic credentials are base64, ASCII only; the server decodes raw bytes as Latin-1."""
    response = Client(**SERVER_ERRORS_RAISE).post(
        "/oidc/token", {"grant_type": "client_credentials"}, HTTP_AUTHORIZATION="Basic \xe9t\xe9"
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert "Authorization header" in response.json()["error_description"]
    assert response["Cache-Control"] == "no-store"
    assert_unchanged(world)


def test_the_device_code_grant_without_authentication_is_an_unsupported_grant_type(world):
    """RFC 6749 5.2: the provider offers no device grant (RFC 8628), so grant_type names one it does not support."""
    response = Client(**SERVER_ERRORS_RAISE).post(
        "/oidc/token", {"grant_type": "urn:ietf:params:oauth:grant-type:device_code"}
    )
    assert response.status_code == 400
    assert response.json()["error"] == "unsupported_grant_type"
    assert response["Cache-Control"] == "no-store"
    assert_unchanged(world)


# -- the authorization endpoint -------------------------------------------------------------------


@pytest.mark.parametrize("claims", ["{", '{"id_token": ', "x" * 20, "[" * 3000 + "]" * 3000])
def test_a_malformed_claims_parameter_is_invalid_request_naming_claims(world, claims):
    """OIDC Core 5.5: claims is a JSON object; a value that is not JSON is invalid_request,
    sent to the checked redirect URI."""
    response = authorize(world["client"], world["app"], claims=claims)
    assert response.status_code == 302
    assert query_of(response)["error"] == "invalid_request"
    assert "claims" in query_of(response)["error_description"]
    assert_unchanged(world)


def test_a_resource_that_is_not_an_absolute_uri_is_refused_naming_resource(world):
    """RFC 8707 2: a resource indicator is an absolute URI; otherwise invalid_target, to the client."""
    response = authorize(world["client"], world["app"], resource="not a uri")
    assert response.status_code == 302 and response["Location"].startswith(REDIRECT_URI)
    error = query_of(response)
    assert error["error"] == "invalid_target" and "resource" in error["error_description"]
    assert error["state"] == "xyz"
    assert_unchanged(world)


def test_a_logged_in_users_code_keeps_the_resource_indicators_it_was_asked_for(world):
    """RFC 8707 2.1: the resources asked for at the authorization endpoint bind the code and its token."""
    from oauth2_provider.models import get_access_token_model, get_grant_model

    response = world["client"].get("/oidc/auth", {
        "client_id": world["app"].client_id, "redirect_uri": REDIRECT_URI, "response_type": "code", "scope": "openid",
        "resource": ["https://api.example.com/", "https://files.example.com/"],
    })
    assert response.status_code == 302 and "code" in query_of(response), response.content[:300]
    assert get_grant_model().objects.get().resource == ["https://api.example.com/", "https://files.example.com/"]
    token = exchange(Client(), world["app"], query_of(response)["code"], secret=world["app"].plaintext_secret)
    assert token.status_code == 200, token.content
    assert get_access_token_model().objects.get().resource == ["https://api.example.com/", "https://files.example.com/"]


def test_resource_indicators_go_through_the_consent_page(world):
    from oauth2_provider.models import get_grant_model

    from .helpers import consent

    world["app"].skip_authorization = False
    world["app"].save()
    response = authorize(world["client"], world["app"], resource="https://api.example.com/")
    assert response.status_code == 200
    response = consent(world["client"], response)
    assert "code" in query_of(response)
    assert get_grant_model().objects.get().resource == ["https://api.example.com/"]


@pytest.mark.parametrize("challenge", ["c" * 129, "c" * 42, "c" * 42 + "!", "é" * 43])
def test_a_code_challenge_outside_rfc_7636_is_invalid_request_naming_code_challenge(world, challenge):
    """RFC 7636 4.2 and 4.4.1: code_challenge is 43-128 unreserved characters; otherwise invalid_request."""
    response = authorize(world["client"], world["app"], code_challenge=challenge, code_challenge_method="S256")
    assert response.status_code == 302 and response["Location"].startswith(REDIRECT_URI)
    error = query_of(response)
    assert error["error"] == "invalid_request" and "code_challenge" in error["error_description"]
    assert_unchanged(world)


def test_a_code_challenge_of_43_and_of_128_characters_is_accepted(world):
    for challenge in (pkce_pair()[1], "a-._~" * 25 + "abc"):
        response = authorize(world["client"], world["app"], code_challenge=challenge, code_challenge_method="S256")
        assert "code" in query_of(response), (len(challenge), response["Location"])


def test_a_nonce_longer_than_its_column_is_invalid_request_naming_nonce(world):
    """The nonce travels with the code (OIDC Core 3.1.2.1); a value it cannot hold is refused, not truncated."""
    response = authorize(world["client"], world["app"], nonce="n" * 256)
    assert response.status_code == 302
    error = query_of(response)
    assert error["error"] == "invalid_request" and "nonce" in error["error_description"]
    assert_unchanged(world)
    assert "code" in query_of(authorize(world["client"], world["app"], nonce="n" * 255))


def test_a_tampered_consent_form_is_a_400_page_naming_the_parameter(world):
    world["app"].skip_authorization = False
    world["app"].save()
    client = Client(enforce_csrf_checks=False, **SERVER_ERRORS_RAISE)
    client.force_login(world["user"])
    page = authorize(client, world["app"])
    form = {name: field.value() or "" for name, field in ((f.name, f) for f in page.context["form"])}
    before = snapshot()
    for field, value in [("nonce", "n" * 300), ("code_challenge", "c" * 200), ("resource", "nope")]:
        response = client.post("/oidc/auth", {**form, field: value, "consent_form": "1", "allow": "1"})
        assert response.status_code == 400, field
        assert field.encode() in response.content
    assert changes(before, snapshot()) == {}


# -- the console API ---------------------------------------------------------------------------------


@pytest.fixture
def api(world):
    admin = UserFactory(username="root", is_staff=True, is_superuser=True)
    client = Client(**SERVER_ERRORS_RAISE)
    headers = console_api_credentials(admin)
    world["before"] = snapshot()
    return lambda method, path, body=None: client.generic(
        method, path, json.dumps(body) if body is not None and not isinstance(body, (str, bytes)) else (body or ""),
        content_type="application/json", **headers,
    )


def test_options_on_a_policy_entry_describes_it(world, api):
    response = api("OPTIONS", "/console/api/policy/web/implicit/")
    assert response.status_code == 200
    assert "PUT" in response.json()["actions"]


def test_options_on_an_unknown_policy_entry_offers_no_change(world, api):
    """DRF's metadata describes the view and leaves out the PUT it could not make (no such entry)."""
    response = api("OPTIONS", "/console/api/policy/web/telepathy/")
    assert response.status_code == 200
    assert "PUT" not in response.json().get("actions", {})


@pytest.mark.parametrize("body, field", [
    ({"name": "a\x00b", "application_type": "web"}, "name"),
    ({"name": "ok", "application_type": "web", "redirect_uris": ["https://a.example.com/\x00"]}, "redirect_uris.0"),
    ({"name": "ok", "application_type": "web", "a\x00": 1}, "a\\u0000"),
    ('"\\u0000"', None),
])
def test_a_nul_character_in_a_console_api_body_is_a_400_naming_the_field(world, api, body, field):
    response = api("POST", "/console/api/applications/", body)
    assert response.status_code == 400
    detail = response.json()["detail"]
    assert "NUL character" in detail
    assert f"'{field}'" in detail if field else detail.startswith("The body")
    assert_unchanged(world)


@pytest.mark.parametrize("path", ["/console/api/applications/a%00b/", "/console/api/audit-events/?action=%00"])
def test_a_nul_character_in_a_console_api_url_is_a_400(world, api, path):
    response = api("GET", path)
    assert response.status_code == 400
    assert "NUL" in response.json()["detail"]


@pytest.mark.parametrize("method, path", [("POST", "/console/api/applications/"),
                                          ("PATCH", "/console/api/policy/web/implicit/"),
                                          ("POST", "/console/api/access-accounts/")])
def test_json_nested_10000_deep_is_a_400(world, api, method, path):
    response = api(method, path, "[" * 10000 + "]" * 10000)
    assert response.status_code == 400
    assert "nested too deeply" in response.json()["detail"]
    assert_unchanged(world)


# -- a database connection the server ended ---------------------------------------------------------

postgresql_only = pytest.mark.skipif(connection.vendor != "postgresql", reason="pg_terminate_backend is PostgreSQL's")


def _terminate(pid):
    """End one backend, as an operator or a failover does, and wait until it is gone."""
    import psycopg

    from .test_postgresql_connections import admin_connection

    with admin_connection() as admin:
        assert admin.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone()[0] is True
        for _ in range(100):  # the backend exits asynchronously
            if not admin.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone():
                return
            admin.execute("SELECT pg_sleep(0.02)")
    raise psycopg.OperationalError(f"backend {pid} still there")


def _backend_pid():
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


@postgresql_only
def test_a_console_api_read_after_the_server_ended_the_connection_answers(transactional_db):
    """The request's health check finds the connection gone and opens a new one: 200, not 500."""
    admin = UserFactory(username="root", is_staff=True, is_superuser=True)
    headers = console_api_credentials(admin)
    client = Client(**SERVER_ERRORS_RAISE)
    pid = _backend_pid()
    connection.health_check_done = False  # what a request's start does; the test client leaves it out
    _terminate(pid)
    response = client.get("/console/api/applications/", **headers)
    assert response.status_code == 200
    assert _backend_pid() != pid


@postgresql_only
def test_the_authorization_endpoint_answers_after_the_server_ended_its_connection(transactional_db):
    """Its first statement is the configuration's version, read as the health check itself."""
    keys.ensure_active_key()
    app = ApplicationFactory(skip_authorization=True)
    client = Client(**SERVER_ERRORS_RAISE)
    client.force_login(UserFactory())
    pid = _backend_pid()
    connection.health_check_done = False
    _terminate(pid)
    response = authorize(client, app)
    assert response.status_code == 302 and "code" in query_of(response)


@postgresql_only
def test_the_live_server_answers_every_endpoint_right_after_its_connections_were_ended(live_provider):  # noqa: F811
    """pg_terminate_backend on every connection of the live server, then requests at once."""
    import psycopg
    import requests

    server = live_provider
    app = server.create_app("ended", "service", grants=["client_credentials"])
    paths = ["/oidc/.well-known/jwks.json", "/accounts/login/", "/oidc/auth?client_id=x", "/console/api/"]
    token = {"grant_type": "client_credentials", "client_id": app["client_id"], "client_secret": app["client_secret"]}

    def round_of_requests():
        statuses = [requests.get(server.url(p), timeout=15).status_code for p in paths]
        statuses.append(requests.post(server.url("/oidc/token"), data=token, timeout=15).status_code)
        return statuses

    for _ in range(20):  # every worker thread opens its connection
        round_of_requests()
    for _ in range(3):
        with psycopg.connect(server.postgres.admin_conninfo, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                          "WHERE datname = %s AND pid <> pg_backend_pid()", (server.postgres.name,))
        statuses = [s for _ in range(4) for s in round_of_requests()]
        assert all(s < 500 for s in statuses), (statuses, server.log())
