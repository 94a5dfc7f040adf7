"""Dynamic client registration: RFC 7591 (register), RFC 7592 (read, update, delete), OpenID
Connect Dynamic Registration 1.0; off by default, behind initial access tokens an admin issues."""

import io
import json
import re
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from console.models import AuditEvent
from oidc_provider import policy, registration, secrets
from oidc_provider.models import Application, ClientRegistration, InitialAccessToken

from .helpers import basic_auth, consent, query_of, set_policy

WEB = {"client_name": "Partner portal", "redirect_uris": ["https://partner.example.com/cb"],
       "grant_types": ["authorization_code", "refresh_token"], "response_types": ["code"]}


@pytest.fixture
def registration_on(settings):
    settings.OIDC_PROVIDER = {**getattr(settings, "OIDC_PROVIDER", {}), "DYNAMIC_REGISTRATION": True}


@pytest.fixture
def initial_token(db):
    return registration.issue_initial_token(note="partner")[1]


def register(client, metadata, token):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
    return client.post("/oidc/register", json.dumps(metadata), content_type="application/json", **headers)


def configuration(client, method, body, token):
    uri = body["registration_client_uri"]
    path = uri[uri.index("/oidc/"):]
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
    if method == "put":
        return client.put(path, json.dumps(body.get("metadata", {})), content_type="application/json", **headers)
    return getattr(client, method)(path, **headers)


# -- on and off ------------------------------------------------------------------------------------


def test_registration_is_off_by_default_and_discovery_says_nothing_of_it(client, initial_token):
    """Discovery 3: registration_endpoint only where registration is offered."""
    assert register(client, WEB, initial_token).status_code == 404
    assert "registration_endpoint" not in client.get("/oidc/.well-known/openid-configuration").json()


def test_discovery_announces_the_registration_endpoint_when_it_is_on(client, db, registration_on):
    """OIDC Discovery 3: registration_endpoint."""
    meta = client.get("/oidc/.well-known/openid-configuration").json()
    assert meta["registration_endpoint"] == "http://127.0.0.1:8000/oidc/register"


# -- the initial access token ------------------------------------------------------------------------


def test_registering_needs_an_initial_access_token(client, db, registration_on):
    """RFC 7591 3: the endpoint MAY require an initial access token; this one does, as a Bearer (RFC 6750 3)."""
    response = register(client, WEB, None)
    assert response.status_code == 401 and response["WWW-Authenticate"] == "Bearer"
    assert response.json()["error"] == "invalid_request"
    assert not Application.objects.exists()


@pytest.mark.parametrize("state", ["unknown", "expired", "revoked"])
def test_an_unknown_expired_or_revoked_initial_access_token_is_refused(client, db, registration_on, state):
    """RFC 6750 3.1: invalid_token, with the challenge; nothing registered."""
    row, token = registration.issue_initial_token()
    if state == "unknown":
        token = "not-" + token
    elif state == "expired":
        InitialAccessToken.objects.filter(pk=row.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    else:
        registration.revoke_initial_token(row)
    response = register(client, WEB, token)
    assert response.status_code == 401 and response.json()["error"] == "invalid_token"
    assert 'error="invalid_token"' in response["WWW-Authenticate"]
    assert not Application.objects.exists()


def test_initial_access_tokens_are_kept_as_digests_and_issued_once_by_the_cli(db):
    """The token is printed once; the database holds its keyed digest only."""
    out = io.StringIO()
    call_command("oidc_registration_token", "create", "--expires-in", "600", "--json", stdout=out, stderr=io.StringIO())
    data = json.loads(out.getvalue())
    row = InitialAccessToken.objects.get()
    assert row.digest == secrets.digest(data["token"]) and data["token"] not in row.digest
    assert abs((row.expires_at - timezone.now()).total_seconds() - 600) < 5
    with pytest.raises(CommandError, match="positive"):
        call_command("oidc_registration_token", "create", "--expires-in", "0", stdout=io.StringIO())


# -- registering ---------------------------------------------------------------------------------------


def test_a_web_client_registers_and_signs_a_user_in_with_what_it_got(client, user, initial_token, registration_on):
    """RFC 7591 3.2.1: 201 with client_id, client_secret, client_secret_expires_at, the
    registration access token and URI and the registered metadata; the client then works."""
    response = register(client, WEB, initial_token)
    assert response.status_code == 201, response.content
    assert response["Cache-Control"] == "no-store"
    body = response.json()
    assert body["client_secret_expires_at"] == 0 and body["client_id_issued_at"] > 0
    assert body["grant_types"] == ["authorization_code", "refresh_token"] and body["response_types"] == ["code"]
    assert body["redirect_uris"] == WEB["redirect_uris"] and body["client_name"] == "Partner portal"
    assert body["registration_client_uri"] == f"http://127.0.0.1:8000/oidc/register/{body['client_id']}"
    app = Application.objects.get(client_id=body["client_id"])
    assert app.application_type == policy.WEB and app.grant_types == ["authorization_code", "refresh_token"]
    stored = ClientRegistration.objects.get(application=app)
    assert stored.access_token_digest == secrets.digest(body["registration_access_token"])

    client.force_login(user)
    page = client.get("/oidc/auth", {"client_id": body["client_id"], "redirect_uri": WEB["redirect_uris"][0],
                                     "response_type": "code", "scope": "openid", "state": "s"})
    code = query_of(consent(client, page))["code"]
    tokens = client.post("/oidc/token", {"grant_type": "authorization_code", "code": code,
                                         "redirect_uri": WEB["redirect_uris"][0]},
                         HTTP_AUTHORIZATION=basic_auth(body["client_id"], body["client_secret"]))
    assert tokens.status_code == 200 and "refresh_token" in tokens.json()
    event = AuditEvent.objects.get(action="registration.registered")
    assert event.target_id == str(app.pk) and event.details["initial_access_token"] == "partner"


@pytest.mark.parametrize("metadata, application_type", [
    ({"token_endpoint_auth_method": "none", "redirect_uris": ["https://spa.example.com/cb"]}, policy.SPA),
    ({"token_endpoint_auth_method": "none", "application_type": "native",
      "redirect_uris": ["com.example.app:/cb"]}, policy.NATIVE),
    ({"grant_types": ["client_credentials"], "response_types": []}, policy.SERVICE),
])
def test_each_kind_of_client_lands_in_its_application_type(client, initial_token, registration_on, metadata,
                                                            application_type):
    """OIDC Dynamic Registration 2 (application_type) and RFC 7591 2 (token_endpoint_auth_method):
    public browser and native clients, and machine clients, get the provider's types."""
    response = register(client, metadata, initial_token)
    assert response.status_code == 201, response.content
    app = Application.objects.get(client_id=response.json()["client_id"])
    assert app.application_type == application_type
    assert ("client_secret" in response.json()) == (application_type == policy.SERVICE)


def test_a_grant_the_policy_forbids_is_refused_naming_the_policy(client, initial_token, registration_on):
    """RFC 7591 3.2.2: invalid_client_metadata; the grant policy governs registered clients too."""
    set_policy(policy.WEB, policy.IMPLICIT, policy.FORBIDDEN)
    response = register(client, {**WEB, "grant_types": ["implicit"], "response_types": ["id_token"]}, initial_token)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_client_metadata"
    assert "grant policy" in response.json()["error_description"]
    assert not Application.objects.exists()


@pytest.mark.parametrize("redirect_uri", ["http://partner.example.com/cb", "https://partner.example.com/cb#x",
                                          "javascript:alert(1)"])
def test_a_bad_redirect_uri_is_invalid_redirect_uri(client, initial_token, registration_on, redirect_uri):
    """RFC 7591 3.2.2: invalid_redirect_uri; the same rules as an admin's applications."""
    response = register(client, {**WEB, "redirect_uris": [redirect_uri]}, initial_token)
    assert response.status_code == 400 and response.json()["error"] == "invalid_redirect_uri"
    assert not Application.objects.exists()


@pytest.mark.parametrize("body, named", [
    ("not json", "JSON"),
    ("[1, 2]", "JSON object"),
    (json.dumps({**WEB, "grant_types": "authorization_code"}), "grant_types"),
    (json.dumps({**WEB, "grant_types": ["urn:ietf:params:oauth:grant-type:device_code"]}), "Unsupported grant type"),
    (json.dumps({**WEB, "response_types": ["id_token"]}), "implicit"),
    (json.dumps({**WEB, "response_types": ["code"], "grant_types": ["implicit"]}), "authorization_code"),
    (json.dumps({**WEB, "token_endpoint_auth_method": "private_key_jwt"}), "token_endpoint_auth_method"),
    (json.dumps({**WEB, "subject_type": "pairwise"}), "subject_type"),
    (json.dumps({**WEB, "id_token_signed_response_alg": "HS256"}), "id_token_signed_response_alg"),
    (json.dumps({**WEB, "application_type": "desktop"}), "application_type"),
    (json.dumps({**WEB, "backchannel_logout_uri": "http://partner.example.com/bc"}), "backchannel_logout_uri"),
    # The provider would POST there itself: no loopback or private address for a registered client.
    (json.dumps({**WEB, "backchannel_logout_uri": "http://127.0.0.1:8000/admin/"}), "public host"),
    (json.dumps({**WEB, "backchannel_logout_uri": "https://10.0.0.5/bc"}), "public host"),
    (json.dumps({**WEB, "backchannel_logout_uri": "https://169.254.169.254/latest"}), "public host"),
    (json.dumps({**WEB, "backchannel_logout_uri": "https://[::1]/bc"}), "public host"),
    (json.dumps({**WEB, "backchannel_logout_uri": "http://localhost/bc"}), "public host"),
])
def test_malformed_or_unsupported_metadata_is_invalid_client_metadata(client, initial_token, registration_on, body,
                                                                       named):
    """RFC 7591 2.1 and 3.2.2: each error says which field is wrong; nothing is registered."""
    response = client.post("/oidc/register", body, content_type="application/json",
                           HTTP_AUTHORIZATION=f"Bearer {initial_token}")
    assert response.status_code == 400, response.content
    assert response.json()["error"] == "invalid_client_metadata"
    assert named in response.json()["error_description"]
    assert not Application.objects.exists()


# -- RFC 7592: the client configuration endpoint ---------------------------------------------------------


@pytest.fixture
def registered(client, initial_token, registration_on):
    body = register(client, {**WEB, "backchannel_logout_uri": "https://partner.example.com/bc"}, initial_token).json()
    return body


def test_a_client_reads_its_registration_with_its_registration_access_token(client, registered):
    """RFC 7592 2.1: the current metadata, the secret not repeated."""
    response = configuration(client, "get", registered, registered["registration_access_token"])
    assert response.status_code == 200
    body = response.json()
    assert body["client_id"] == registered["client_id"] and "client_secret" not in body
    assert body["backchannel_logout_uri"] == "https://partner.example.com/bc"
    assert body["backchannel_logout_session_required"] is True


@pytest.mark.parametrize("token", [None, "wrong", "other-client"])
def test_a_registration_is_read_only_with_its_own_registration_access_token(client, registered, initial_token, token):
    """RFC 7592 3: 401 invalid_token for a missing, wrong or other client's token, never
    saying whether the client exists."""
    if token == "other-client":
        token = register(client, WEB, initial_token).json()["registration_access_token"]
    for method in ("get", "delete"):
        response = configuration(client, method, registered, token)
        assert response.status_code == 401
    assert Application.objects.filter(client_id=registered["client_id"]).exists()


def test_a_client_replaces_its_metadata_and_keeps_its_type(client, registered):
    """RFC 7592 2.2: PUT replaces every field; the kind of client cannot change."""
    token = registered["registration_access_token"]
    new = {**WEB, "client_id": registered["client_id"], "redirect_uris": ["https://partner.example.com/new-cb"]}
    response = configuration(client, "put", {**registered, "metadata": new}, token)
    assert response.status_code == 200, response.content
    app = Application.objects.get(client_id=registered["client_id"])
    assert app.redirect_uris == "https://partner.example.com/new-cb" and app.backchannel_logout_uri == ""
    public = {**new, "token_endpoint_auth_method": "none"}
    refused = configuration(client, "put", {**registered, "metadata": public}, token)
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_client_metadata"
    assert AuditEvent.objects.filter(action="registration.updated").count() == 1


def test_a_client_deletes_its_registration_and_its_token_stops_working(client, registered):
    """RFC 7592 2.3: 204; afterwards the registration access token is invalid."""
    token = registered["registration_access_token"]
    assert configuration(client, "delete", registered, token).status_code == 204
    assert not Application.objects.filter(client_id=registered["client_id"]).exists()
    assert configuration(client, "get", registered, token).status_code == 401
    assert AuditEvent.objects.filter(action="registration.deleted").count() == 1


# -- the console ---------------------------------------------------------------------------------------


def test_an_admin_issues_a_registration_token_in_the_console_and_sees_it_once(client, db, registration_on):
    """The token is on the page that issued it, and nowhere after; it registers a client."""
    admin = get_user_model().objects.create(username="root", is_staff=True, is_superuser=True)
    client.force_login(admin)
    page = client.post("/admin/oidc_provider/initialaccesstoken/add/", {"note": "partner", "hours": "2"})
    assert page.status_code == 200 and "no-store" in page["Cache-Control"]
    token = re.search(r'<pre id="registration-token"[^>]*>([A-Za-z0-9_-]{40,})</pre>', page.content.decode()).group(1)
    listing = client.get("/admin/oidc_provider/initialaccesstoken/").content.decode()
    assert "partner" in listing and token not in listing
    assert AuditEvent.objects.get(action="registration_token.issued").actor == admin
    client.logout()
    assert register(client, WEB, token).status_code == 201


def test_the_page_that_shows_a_registration_token_speaks_chinese(client, db):
    """The console's new page in Simplified Chinese."""
    admin = get_user_model().objects.create(username="root", is_staff=True, is_superuser=True)
    client.force_login(admin)
    page = client.post("/admin/oidc_provider/initialaccesstoken/add/", {"note": "partner", "hours": "2"},
                       HTTP_ACCEPT_LANGUAGE="zh-Hans").content.decode()
    assert "请立即复制注册令牌" in page and "系统只保存它的摘要" in page and "未开启" in page


# -- found in review ---------------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["127.1", "2130706433", "0x7f000001", "0177.0.0.1"])
def test_a_loopback_address_however_written_is_not_a_back_channel_logout_uri(client, initial_token, registration_on,
                                                                              host):
    """The provider would POST there itself: 127.1 and the other spellings all reach 127.0.0.1."""
    response = register(client, {**WEB, "backchannel_logout_uri": f"https://{host}/bc"}, initial_token)
    assert response.status_code == 400 and "public host" in response.json()["error_description"]


@pytest.mark.parametrize("field, value, error", [
    ("redirect_uris", ["https://[::1/cb"], "invalid_redirect_uri"),
    ("post_logout_redirect_uris", ["https://[::1/out"], "invalid_redirect_uri"),
    ("backchannel_logout_uri", "https://[::1/bc", "invalid_client_metadata"),
    ("frontchannel_logout_uri", "https://[::1/fc", "invalid_client_metadata"),
])
def test_a_uri_that_cannot_be_read_is_refused_not_a_server_error(client, initial_token, registration_on, field, value,
                                                                  error):
    response = register(client, {**WEB, field: value}, initial_token)
    assert response.status_code == 400 and response.json()["error"] == error


@pytest.mark.parametrize("body", ["[]", '"x"', "1"])
def test_an_update_that_is_not_a_json_object_is_invalid_client_metadata(client, registered, body):
    path = registered["registration_client_uri"][registered["registration_client_uri"].index("/oidc/"):]
    response = client.put(path, body, content_type="application/json",
                          HTTP_AUTHORIZATION=f"Bearer {registered['registration_access_token']}")
    assert response.status_code == 400 and response.json()["error"] == "invalid_client_metadata"


def test_an_update_keeps_an_spas_allowed_origins(client, initial_token, registration_on):
    """An SPA's CORS origins default to its redirect URIs' on update as on registration."""
    spa = {"token_endpoint_auth_method": "none", "redirect_uris": ["https://spa.example.com/cb"]}
    body = register(client, spa, initial_token).json()
    path = body["registration_client_uri"][body["registration_client_uri"].index("/oidc/"):]
    updated = client.put(path, json.dumps({**spa, "client_id": body["client_id"]}), content_type="application/json",
                         HTTP_AUTHORIZATION=f"Bearer {body['registration_access_token']}")
    assert updated.status_code == 200, updated.content
    assert Application.objects.get(client_id=body["client_id"]).allowed_origins == "https://spa.example.com"
