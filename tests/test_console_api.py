"""The console REST API (/console/api/), through HTTP, and ``console_token``."""

import json
import re
from datetime import timedelta
from io import StringIO

import pytest
import yaml
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone
from knox.crypto import hash_token
from knox.models import AuthToken
from rest_framework.test import APIClient

from console import audit
from console.models import AuditEvent
from oidc_provider import keys, policy, secrets
from oidc_provider.models import AccessAccount, AccessKey, Application, GrantPolicy, SigningKey

from .factories import ApplicationFactory, UserFactory
from .helpers import basic_auth

pytestmark = pytest.mark.django_db

API = "/console/api/"
APPS = API + "applications/"
POLICY = API + "policy/"
ACCOUNTS = API + "access-accounts/"
AKS = API + "access-keys/"
SIGNING = API + "signing-keys/"
EVENTS = API + "audit-events/"
SCHEMA = API + "schema/"
DOCS = API + "docs/"
LIST_URLS = [API, APPS, POLICY, ACCOUNTS, AKS, SIGNING, EVENTS, SCHEMA]

REDIRECTS = {
    policy.WEB: ["https://rp.example.com/callback"],
    policy.SPA: ["http://127.0.0.1:5173/callback"],
    policy.NATIVE: ["com.example.app:/callback"],
    policy.SERVICE: [],
}


def token_client(user):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {AuthToken.objects.create(user=user)[1]}")
    return client


@pytest.fixture
def staff():
    # A superuser: these tests are about what the API does; who may do it is tests/test_console_permissions.py.
    return UserFactory(username="operator", is_staff=True, is_superuser=True)


@pytest.fixture
def api(staff):
    """A staff user's API token, the way scripts call the API."""
    return token_client(staff)


def token_request(client, client_id, secret, scope=None):
    data = {"grant_type": "client_credentials"}
    if scope:
        data["scope"] = scope
    return client.post("/oidc/token", data, HTTP_AUTHORIZATION=basic_auth(client_id, secret))


def create_app(api, app_type=policy.WEB, **fields):
    data = {"name": f"My {app_type}", "application_type": app_type, "redirect_uris": REDIRECTS[app_type], **fields}
    return api.post(APPS, data, format="json")


# -- who may call it ------------------------------------------------------------------


@pytest.mark.parametrize("url", LIST_URLS)
def test_anonymous_is_refused_with_401(url):
    response = APIClient().get(url)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"


def test_anonymous_cannot_create():
    response = APIClient().post(APPS, {"name": "x", "application_type": "web"}, format="json")
    assert response.status_code == 401 and not Application.objects.filter(name="x").exists()


@pytest.mark.parametrize("url", LIST_URLS)
def test_non_staff_session_is_refused_with_403(client, url):
    client.force_login(UserFactory())
    response = client.get(url)
    assert response.status_code == 403
    assert b"staff users only" in response.content


def test_non_staff_token_is_refused():
    response = token_client(UserFactory()).get(APPS)
    assert response.status_code == 403


def test_token_stops_working_when_its_user_is_no_longer_staff_or_inactive(api, staff):
    assert api.get(APPS).status_code == 200
    staff.is_staff = False
    staff.save()
    assert api.get(APPS).status_code == 403
    staff.is_staff, staff.is_active = True, False
    staff.save()
    assert api.get(APPS).status_code in (401, 403)


def test_staff_token_and_admin_session_both_work(api, admin_client):
    assert api.get(APPS).status_code == 200
    assert admin_client.get(APPS).status_code == 200


def test_root_lists_the_resources(admin_client):
    body = admin_client.get(API, HTTP_ACCEPT="application/json").json()
    for name in ("applications", "policy", "access-accounts", "access-keys", "signing-keys", "audit-events", "refusals"):
        assert body[name].endswith(f"/console/api/{name}/")
        assert admin_client.get(body[name], HTTP_ACCEPT="application/json").status_code == 200


def test_session_post_without_csrf_token_is_refused(staff):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(staff)
    data = {"name": "Forged", "application_type": "web", "redirect_uris": REDIRECTS["web"]}

    response = client.post(APPS, data, format="json")

    assert response.status_code == 403 and "CSRF" in response.json()["detail"]
    assert not Application.objects.filter(name="Forged").exists()

    # The same request with the session's CSRF token goes through (the browsable API page sets the cookie).
    assert client.get(API, HTTP_ACCEPT="text/html").status_code == 200
    csrf = client.cookies["csrftoken"].value
    assert client.post(APPS, data, format="json", HTTP_X_CSRFTOKEN=csrf).status_code == 201


# -- applications ---------------------------------------------------------------------


@pytest.mark.parametrize("app_type", policy.APPLICATION_TYPES)
def test_create_application_per_type_shows_the_secret_once(api, app_type):
    response = create_app(api, app_type)

    assert response.status_code == 201, response.content
    body = response.json()
    app = Application.objects.get(client_id=body["client_id"])
    assert body["application_type"] == app_type
    assert body["grant_types"] == policy.recommended_grants(app_type) == app.grant_types
    assert body["redirect_uris"] == REDIRECTS[app_type]
    if app_type in (policy.WEB, policy.SERVICE):
        assert secrets.verify(body["client_secret"], app.client_secret)
    else:
        assert body["client_secret"] is None and app.client_secret == ""

    detail = api.get(f"{APPS}{app.client_id}/").json()
    listed = api.get(APPS).json()
    assert "client_secret" not in detail and all("client_secret" not in a for a in listed)
    if app.client_secret:
        for response in (api.get(f"{APPS}{app.client_id}/"), api.get(APPS)):
            assert body["client_secret"] not in response.content.decode()
            assert app.client_secret not in response.content.decode()


def test_create_application_with_explicit_fields(api):
    response = create_app(
        api, policy.WEB, grant_types=["refresh_token", "authorization_code", "authorization_code"], skip_consent=True,
        post_logout_redirect_uris=["https://rp.example.com/bye"], allowed_origins=["https://rp.example.com"],
        description="Billing backend", is_resource_server=True,
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["grant_types"] == ["authorization_code", "refresh_token"]
    assert body["skip_consent"] is True and body["is_resource_server"] is True
    app = Application.objects.get(client_id=body["client_id"])
    assert app.skip_authorization and app.post_logout_redirect_uris == "https://rp.example.com/bye"
    assert app.allowed_origins == "https://rp.example.com"


def test_forbidden_grant_is_refused_on_grant_types(api):
    response = create_app(api, policy.SPA, grant_types=["authorization_code", "client_credentials"])

    assert response.status_code == 400
    message = " ".join(response.json()["grant_types"])
    assert "client_credentials" in message and "forbidden" in message and "web" in message
    assert not Application.objects.filter(name="My spa").exists()


def test_unknown_grant_and_type_are_refused_with_the_known_names(api):
    response = create_app(api, policy.WEB, grant_types=["magic"])
    assert response.status_code == 400 and "authorization_code" in response.json()["grant_types"][0]
    response = api.post(APPS, {"name": "x", "application_type": "desktop"}, format="json")
    assert response.status_code == 400 and "native" in response.json()["application_type"][0]


def test_http_redirect_on_a_public_host_is_refused(api):
    response = create_app(api, policy.WEB, redirect_uris=["http://rp.example.com/callback"])

    assert response.status_code == 400
    assert "loopback" in response.json()["redirect_uris"][0]


def test_an_application_with_several_long_redirect_uris_is_saved(api):
    """Up to 50 URIs of any ordinary length: the limit counts URIs, not the characters of all of them."""
    uris = [f"https://app-{i}.customer.example.com/auth/oidc/callback" for i in range(5)]
    origins = [f"https://app-{i}.customer.example.com" for i in range(5)]

    response = create_app(api, policy.WEB, redirect_uris=uris, post_logout_redirect_uris=uris)
    spa = create_app(api, policy.SPA, redirect_uris=uris, allowed_origins=origins)

    assert response.status_code == 201, response.content
    assert response.json()["redirect_uris"] == uris and response.json()["post_logout_redirect_uris"] == uris
    assert spa.status_code == 201 and spa.json()["allowed_origins"] == origins
    client_id = response.json()["client_id"]
    assert api.patch(f"{APPS}{client_id}/", {"redirect_uris": uris[:2]}, format="json").json()["redirect_uris"] == uris[:2]


def test_more_than_50_redirect_uris_are_refused_with_the_count(api):
    uris = [f"https://rp.example.com/cb/{i}" for i in range(51)]

    response = create_app(api, policy.WEB, redirect_uris=uris)

    assert response.status_code == 400 and "at most 50" in response.json()["redirect_uris"][0]
    assert not Application.objects.exists()


@pytest.mark.parametrize(
    "fields, field",
    [
        ({"redirect_uris": "https://rp.example.com/cb"}, "redirect_uris"),  # a string, not a list
        ({"redirect_uris": ["https://a.example.com/cb https://b.example.com/cb"]}, "redirect_uris"),
        ({"grant_types": "authorization_code"}, "grant_types"),
        ({"name": "   "}, "name"),
        ({"allowed_origins": ["https://rp.example.com/path"]}, "allowed_origins"),
        ({"skip_consent": "perhaps"}, "skip_consent"),
    ],
)
def test_malformed_application_fields_are_400_on_the_field(api, fields, field):
    response = create_app(api, policy.WEB, **fields)
    assert response.status_code == 400 and field in response.json(), response.content
    assert not Application.objects.exists()


def test_missing_fields_and_non_json_are_400(api):
    response = api.post(APPS, {}, format="json")
    assert response.status_code == 400 and {"name", "application_type"} <= set(response.json())
    response = api.post(APPS, b"\xff\xfe{", content_type="application/json")
    assert response.status_code == 400


def test_update_application_is_validated_like_create(api):
    app = ApplicationFactory(application_type=policy.WEB, grant_types=["authorization_code", "refresh_token"])
    url = f"{APPS}{app.client_id}/"

    response = api.patch(url, {"name": "Renamed", "redirect_uris": ["https://new.example.com/cb"]}, format="json")
    assert response.status_code == 200 and response.json()["name"] == "Renamed"
    assert "client_secret" not in response.json()
    app.refresh_from_db()
    assert app.redirect_uris == "https://new.example.com/cb"

    # A type that forbids a grant the application holds.
    response = api.patch(url, {"application_type": "service"}, format="json")
    assert response.status_code == 400 and "authorization_code" in " ".join(response.json()["grant_types"])
    app.refresh_from_db()
    assert app.application_type == policy.WEB and app.name == "Renamed"

    response = api.patch(url, {"redirect_uris": ["http://evil.example.com/cb"]}, format="json")
    assert response.status_code == 400 and "redirect_uris" in response.json()


def test_public_application_made_confidential_shows_its_new_secret_once(api):
    app = ApplicationFactory(application_type=policy.SPA, redirect_uris="https://spa.example.com/cb")
    response = api.patch(f"{APPS}{app.client_id}/", {"application_type": "web"}, format="json")

    assert response.status_code == 200, response.content
    app.refresh_from_db()
    assert secrets.verify(response.json()["client_secret"], app.client_secret)


def test_regenerate_secret_replaces_the_old_one(api):
    app = ApplicationFactory(application_type=policy.WEB)
    old_secret, old_digest = app.plaintext_secret, app.client_secret

    response = api.post(f"{APPS}{app.client_id}/regenerate-secret/")

    assert response.status_code == 200
    new_secret = response.json()["client_secret"]
    app.refresh_from_db()
    assert secrets.verify(new_secret, app.client_secret)
    assert not secrets.verify(old_secret, app.client_secret) and app.client_secret != old_digest
    event = AuditEvent.objects.get(action=audit.APPLICATION_SECRET_REGENERATED)
    assert event.actor_label == "operator" and new_secret not in json.dumps(event.details)


def test_regenerate_secret_of_a_public_application_is_refused(api):
    app = ApplicationFactory(application_type=policy.NATIVE, redirect_uris="com.example.app:/cb")
    response = api.post(f"{APPS}{app.client_id}/regenerate-secret/")
    assert response.status_code == 400 and "PKCE" in response.json()["detail"]


def test_delete_application(api):
    app = ApplicationFactory()
    assert api.delete(f"{APPS}{app.client_id}/").status_code == 204
    assert not Application.objects.filter(pk=app.pk).exists()
    assert AuditEvent.objects.filter(action=audit.APPLICATION_DELETED, target_label=app.name).exists()
    assert api.get(f"{APPS}{app.client_id}/").status_code == 404


def test_an_access_accounts_application_cannot_be_deleted_on_its_own(api):
    account = AccessAccount.objects.create(name="billing", scopes=["read"])
    response = api.delete(f"{APPS}{account.application.client_id}/")
    assert response.status_code == 409 and "billing" in response.json()["detail"]
    assert Application.objects.filter(pk=account.application_id).exists()


def test_application_changes_are_audited_without_secrets(api):
    body = create_app(api, policy.WEB).json()
    api.patch(f"{APPS}{body['client_id']}/", {"description": "x"}, format="json")

    created = AuditEvent.objects.get(action=audit.APPLICATION_CREATED)
    changed = AuditEvent.objects.get(action=audit.APPLICATION_CHANGED)
    assert created.actor_label == changed.actor_label == "operator"
    assert created.target_id == str(Application.objects.get(client_id=body["client_id"]).pk)
    assert changed.details["changed"] == {"description": "x"}
    assert body["client_secret"] not in json.dumps(created.details)


# -- grant policy ---------------------------------------------------------------------


def test_policy_lists_24_entries_with_the_contract_defaults(api):
    entries = api.get(POLICY).json()

    assert len(entries) == 24
    assert [(e["application_type"], e["grant"]) for e in entries] == [
        (t, g) for t in policy.APPLICATION_TYPES for g in policy.GRANTS
    ]
    states = {(e["application_type"], e["grant"]): e["state"] for e in entries}
    assert states == policy.DEFAULT_POLICY
    # Spot checks of the documented defaults (web, spa, native, service across).
    assert states[("spa", "implicit")] == "allowed"
    assert states[("service", "client_credentials")] == "recommended"
    assert states[("native", "refresh_token")] == "recommended"
    assert states[("web", "implicit")] == "forbidden"


def test_forbidding_a_grant_warns_about_holders_and_takes_effect_at_once(api, client):
    app = ApplicationFactory(application_type=policy.SERVICE, redirect_uris="", post_logout_redirect_uris="")
    assert token_request(client, app.client_id, app.plaintext_secret, "read").status_code == 200

    response = api.patch(f"{POLICY}service/client_credentials/", {"state": "forbidden"}, format="json")

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["state"] == "forbidden" and body["previous_state"] == "recommended"
    assert body["applications_holding_grant"] == [{"client_id": app.client_id, "name": app.name}]
    assert app.client_id in body["warning"]
    assert GrantPolicy.objects.get(application_type="service", grant="client_credentials").state == "forbidden"
    assert api.get(f"{POLICY}service/client_credentials/").json()["state"] == "forbidden"

    refused = token_request(client, app.client_id, app.plaintext_secret, "read")
    assert refused.status_code in (400, 401) and refused.json()["error"] == "unauthorized_client"
    event = AuditEvent.objects.get(action=audit.POLICY_CHANGED)
    assert event.actor_label == "operator" and event.details["state"] == "forbidden"

    # And back.
    response = api.put(f"{POLICY}service/client_credentials/", {"state": "recommended"}, format="json")
    assert response.status_code == 200 and response.json()["warning"] is None
    assert token_request(client, app.client_id, app.plaintext_secret, "read").status_code == 200


def test_policy_update_refuses_bad_input(api):
    response = api.patch(f"{POLICY}web/password/", {"state": "maybe"}, format="json")
    assert response.status_code == 400 and "forbidden" in response.json()["state"][0]
    assert api.patch(f"{POLICY}web/password/", {}, format="json").status_code == 400
    response = api.patch(f"{POLICY}desktop/password/", {"state": "allowed"}, format="json")
    assert response.status_code == 404 and "native" in response.json()["detail"]
    assert api.patch(f"{POLICY}web/telepathy/", {"state": "allowed"}, format="json").status_code == 404
    assert not AuditEvent.objects.filter(action=audit.POLICY_CHANGED).exists()


# -- access accounts and keys ---------------------------------------------------------


def test_create_access_account(api):
    response = api.post(ACCOUNTS, {"name": "billing", "description": "Nightly jobs", "scopes": ["read"]}, format="json")

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["name"] == "billing" and body["scopes"] == ["read"] and body["active"] is True and body["active_keys"] == 0
    account = AccessAccount.objects.get(name="billing")
    assert account.application.application_type == policy.SERVICE
    assert AuditEvent.objects.filter(action=audit.ACCESS_ACCOUNT_CREATED, target_label="billing").exists()
    assert api.get(f"{ACCOUNTS}{account.pk}/").json()["name"] == "billing"


@pytest.mark.parametrize("scopes", [["openid"], ["nonexistent"], "read", [["read"]]])
def test_access_account_with_a_bad_scope_is_refused(api, scopes):
    response = api.post(ACCOUNTS, {"name": "billing", "scopes": scopes}, format="json")
    assert response.status_code == 400 and "scopes" in response.json()
    assert not AccessAccount.objects.exists()


def test_access_account_names_are_unique(api):
    AccessAccount.objects.create(name="billing")
    response = api.post(ACCOUNTS, {"name": "billing"}, format="json")
    assert response.status_code == 400 and "name" in response.json()


def test_update_access_account(api):
    account = AccessAccount.objects.create(name="billing", scopes=["read"])
    response = api.patch(f"{ACCOUNTS}{account.pk}/", {"scopes": ["read", "write"], "active": False}, format="json")
    assert response.status_code == 200
    account.refresh_from_db()
    assert account.scopes == ["read", "write"] and not account.is_active
    event = AuditEvent.objects.get(action=audit.ACCESS_ACCOUNT_CHANGED)
    assert event.details["changed"] == {"scopes": ["read", "write"], "active": False}
    assert api.delete(f"{ACCOUNTS}{account.pk}/").status_code == 405


def test_access_key_sk_is_shown_once_and_gets_a_token(api, client):
    account = AccessAccount.objects.create(name="billing", scopes=["read"])

    response = api.post(AKS, {"account": "billing"}, format="json")

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["account"] == "billing" and body["active"] is True and body["scopes"] == ["read"]
    key = AccessKey.objects.get(access_key=body["access_key"])
    assert secrets.verify(body["secret_key"], key.secret_key)

    for shown in (api.get(f"{AKS}{key.pk}/"), api.get(AKS)):
        text = shown.content.decode()
        assert body["secret_key"] not in text and key.secret_key not in text and "secret_key" not in text

    tokens = token_request(client, body["access_key"], body["secret_key"], "read")
    assert tokens.status_code == 200, tokens.content
    assert tokens.json()["scope"] == "read"
    assert token_request(client, body["access_key"], body["secret_key"], "write").json()["error"] == "invalid_scope"
    assert api.get(f"{ACCOUNTS}{account.pk}/").json()["active_keys"] == 1
    event = AuditEvent.objects.get(action=audit.ACCESS_KEY_ISSUED)
    assert body["secret_key"] not in json.dumps(event.details)


def test_access_key_by_account_id_and_list_filter(api):
    billing = AccessAccount.objects.create(name="billing", scopes=["read"])
    AccessAccount.objects.create(name="reports", scopes=["read"])
    assert api.post(AKS, {"account": billing.pk}, format="json").status_code == 201
    assert api.post(AKS, {"account": "reports"}, format="json").status_code == 201

    assert [k["account"] for k in api.get(AKS, {"account": "billing"}).json()] == ["billing"]
    assert [k["account"] for k in api.get(AKS, {"account": str(billing.pk)}).json()] == ["billing"]
    assert api.get(AKS, {"account": "nobody"}).json() == []
    assert len(api.get(AKS).json()) == 2


@pytest.mark.parametrize("account", ["nobody", 999, None, ["billing"], True])
def test_access_key_for_an_unknown_account_is_refused(api, account):
    AccessAccount.objects.create(name="billing")
    response = api.post(AKS, {"account": account}, format="json")
    assert response.status_code == 400 and "account" in response.json()
    assert not AccessKey.objects.exists()


def test_access_key_for_an_inactive_account_is_refused(api):
    AccessAccount.objects.create(name="billing", is_active=False)
    response = api.post(AKS, {"account": "billing"}, format="json")
    assert response.status_code == 400 and "inactive" in response.json()["account"][0]


def test_revoked_access_key_gets_invalid_client(api, client):
    AccessAccount.objects.create(name="billing", scopes=["read"])
    body = api.post(AKS, {"account": "billing"}, format="json").json()
    assert token_request(client, body["access_key"], body["secret_key"], "read").status_code == 200

    response = api.post(f"{AKS}{body['id']}/revoke/")

    assert response.status_code == 200 and response.json()["active"] is False and response.json()["revoked_at"]
    refused = token_request(client, body["access_key"], body["secret_key"], "read")
    assert refused.status_code == 401 and refused.json()["error"] == "invalid_client"
    assert AuditEvent.objects.filter(action=audit.ACCESS_KEY_REVOKED, target_id=str(body["id"])).count() == 1
    # Revoking again changes nothing and records nothing.
    assert api.post(f"{AKS}{body['id']}/revoke/").status_code == 200
    assert AuditEvent.objects.filter(action=audit.ACCESS_KEY_REVOKED).count() == 1


def test_rotate_access_key(api, client):
    AccessAccount.objects.create(name="billing", scopes=["read"])
    old = api.post(AKS, {"account": "billing"}, format="json").json()
    other = api.post(AKS, {"account": "billing"}, format="json").json()

    response = api.post(f"{AKS}{old['id']}/rotate/")

    assert response.status_code == 201
    new = response.json()
    assert new["access_key"] != old["access_key"] and new["revoked_access_key"] == old["access_key"]
    assert token_request(client, new["access_key"], new["secret_key"], "read").status_code == 200
    assert token_request(client, old["access_key"], old["secret_key"], "read").json()["error"] == "invalid_client"
    assert token_request(client, other["access_key"], other["secret_key"], "read").status_code == 200
    assert AuditEvent.objects.get(action=audit.ACCESS_KEY_ROTATED).details["previous"] == old["access_key"]
    # A revoked pair cannot be rotated.
    response = api.post(f"{AKS}{old['id']}/rotate/")
    assert response.status_code == 400 and "already revoked" in response.json()["detail"]


def test_access_keys_cannot_be_edited_or_deleted(api):
    AccessAccount.objects.create(name="billing", scopes=["read"])
    key = api.post(AKS, {"account": "billing"}, format="json").json()
    assert api.patch(f"{AKS}{key['id']}/", {"account": "x"}, format="json").status_code == 405
    assert api.delete(f"{AKS}{key['id']}/").status_code == 405


# -- signing keys ---------------------------------------------------------------------


def test_signing_keys_never_show_the_private_key(api):
    keys.ensure_active_key()
    keys.rotate()
    for response in (api.get(SIGNING), api.get(f"{SIGNING}{keys.active_key().kid}/")):
        assert response.status_code == 200
        assert "PRIVATE KEY" not in response.content.decode() and "private_key" not in response.content.decode()
    listed = api.get(SIGNING).json()
    assert {k["status"] for k in listed} == {"active", "inactive", "next"}
    assert set(listed[0]) == {"kid", "algorithm", "status", "created_at", "activated_at", "retired_at"}


def test_rotate_and_retire_signing_keys(api):
    old = keys.ensure_active_key()

    response = api.post(f"{SIGNING}rotate/")

    assert response.status_code == 200
    new = response.json()
    assert new["status"] == "active" and new["kid"] != old.kid
    assert SigningKey.objects.get(kid=old.kid).status == SigningKey.INACTIVE
    assert SigningKey.objects.filter(status=SigningKey.ACTIVE).get().kid == new["kid"]

    refused = api.post(f"{SIGNING}{new['kid']}/retire/")
    assert refused.status_code == 400 and "rotate first" in refused.json()["detail"]
    assert SigningKey.objects.get(kid=new["kid"]).status == SigningKey.ACTIVE

    retired = api.post(f"{SIGNING}{old.kid}/retire/")
    assert retired.status_code == 200 and retired.json()["status"] == "retired"
    assert old.kid not in {k["kid"] for k in APIClient().get("/oidc/.well-known/jwks.json").json()["keys"]}
    assert api.post(f"{SIGNING}{old.kid}/retire/").status_code == 400

    by_operator = AuditEvent.objects.filter(actor_label="operator", action__startswith="signing_key.")
    assert {e.action for e in by_operator} == {audit.SIGNING_KEY_ROTATED, audit.SIGNING_KEY_RETIRED}
    assert api.post(f"{SIGNING}unknown-kid/retire/").status_code == 404


# -- audit events ---------------------------------------------------------------------


def test_audit_events_show_api_changes_and_filter(api):
    before = timezone.now() - timedelta(seconds=1)
    client_id = create_app(api, policy.WEB).json()["client_id"]
    api.patch(f"{APPS}{client_id}/", {"name": "Renamed"}, format="json")
    api.patch(f"{POLICY}web/password/", {"state": "forbidden"}, format="json")
    audit.record(audit.LOGIN_FAILED, actor_label="mallory")

    body = api.get(EVENTS).json()

    assert body["count"] == 4 and len(body["results"]) == 4
    assert [e["action"] for e in body["results"]] == [
        audit.LOGIN_FAILED, audit.POLICY_CHANGED, audit.APPLICATION_CHANGED, audit.APPLICATION_CREATED,
    ]
    created = body["results"][-1]
    assert created["actor_label"] == "operator" and created["target_label"] == "My web"

    def actions(**params):
        return [e["action"] for e in api.get(EVENTS, params).json()["results"]]

    assert actions(action="application.created") == [audit.APPLICATION_CREATED]
    assert actions(action="application.") == [audit.APPLICATION_CHANGED, audit.APPLICATION_CREATED]
    assert actions(actor="mallory") == [audit.LOGIN_FAILED]
    assert len(actions(actor=str(created["actor"]))) == 3
    assert len(actions(since=before.isoformat())) == 4
    assert actions(since=(timezone.now() + timedelta(hours=1)).isoformat()) == []
    assert actions(until=before.isoformat()) == []
    assert len(actions(since=before.date().isoformat())) == 4

    response = api.get(EVENTS, {"since": "yesterday"})
    assert response.status_code == 400 and "ISO 8601" in response.json()["since"][0]
    assert api.get(EVENTS, {"until": "2024-13-45T00:00:00"}).status_code == 400

    one = api.get(f"{EVENTS}{created['id']}/").json()
    assert one["action"] == audit.APPLICATION_CREATED


def test_audit_events_are_read_only_and_paginated(api):
    AuditEvent.objects.bulk_create([AuditEvent(action="login.failed", actor_label=f"u{i}") for i in range(60)])
    first = api.get(EVENTS).json()
    assert first["count"] == 60 and len(first["results"]) == 50 and first["next"]
    assert len(api.get(first["next"]).json()["results"]) == 10
    assert api.post(EVENTS, {"action": "x"}, format="json").status_code == 405
    event_id = first["results"][0]["id"]
    assert api.delete(f"{EVENTS}{event_id}/").status_code == 405


# -- schema and docs ------------------------------------------------------------------


def test_schema_is_openapi_3_listing_the_paths(api):
    response = api.get(SCHEMA, {"format": "json"})
    assert response.status_code == 200
    schema = json.loads(response.content)
    assert schema["openapi"].startswith("3.")
    for path in (
        "/console/api/applications/", "/console/api/applications/{client_id}/regenerate-secret/",
        "/console/api/policy/", "/console/api/policy/{application_type}/{grant}/",
        "/console/api/access-accounts/", "/console/api/access-keys/{id}/rotate/",
        "/console/api/signing-keys/rotate/", "/console/api/signing-keys/{kid}/retire/", "/console/api/audit-events/",
    ):
        assert path in schema["paths"], path
    # Only this API: not the site's demo resource API.
    assert all(p.startswith("/console/api/") for p in schema["paths"])
    assert "client_secret" in schema["components"]["schemas"]["ApplicationSecret"]["properties"]
    assert "client_secret" not in schema["components"]["schemas"]["Application"]["properties"]

    as_yaml = yaml.safe_load(api.get(SCHEMA).content)
    assert as_yaml["paths"].keys() == schema["paths"].keys()


def test_docs_page_loads_its_assets_from_our_own_static(admin_client, client):
    response = admin_client.get(DOCS)

    assert response.status_code == 200
    html = response.content.decode()
    assets = re.findall(r'(?:src|href)="(/static/drf_spectacular_sidecar/[^"]+)"', html)
    assert any(a.endswith("swagger-ui-bundle.js") for a in assets)
    assert any(a.endswith(".css") for a in assets)
    assert "cdn" not in html.lower() and "https://" not in html
    for asset in assets:
        assert client.get(asset).status_code == 200, asset


def test_docs_page_is_for_staff_only(client):
    response = client.get(DOCS)
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
    client.force_login(UserFactory())
    assert client.get(DOCS).status_code == 403


# -- console_token --------------------------------------------------------------------


def run_token(*args):
    out, err = StringIO(), StringIO()
    call_command("console_token", "create", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_console_token_creates_a_working_token(staff):
    out, _ = run_token("--user", "operator", "--json")

    data = json.loads(out)
    assert data["user"] == "operator" and AuthToken.objects.get(user=staff).digest == hash_token(data["token"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {data['token']}")
    assert client.get(APPS).status_code == 200
    event = AuditEvent.objects.get(action=audit.API_TOKEN_CREATED)
    assert event.actor_label == "cli" and event.target_label == "operator"
    assert data["token"] not in json.dumps(event.details)


def test_console_token_replaces_an_existing_token(staff):
    first = json.loads(run_token("--user", "operator", "--json")[0])["token"]
    out, err = run_token("--user", "operator", "--json")

    second = json.loads(out)["token"]
    assert second != first and "replaced" in err
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {first}")
    assert client.get(APPS).status_code == 401


def test_console_token_text_output(staff):
    out, _ = run_token("--user", "operator")
    token = re.search(r"Token for operator: (\S+)", out).group(1)
    assert AuthToken.objects.get(user=staff).digest == hash_token(token)


@pytest.mark.parametrize(
    "user_kwargs, message",
    [(None, "No user"), ({"is_staff": False}, "not staff"), ({"is_staff": True, "is_active": False}, "inactive")],
)
def test_console_token_refuses_unknown_non_staff_and_inactive_users(user_kwargs, message):
    if user_kwargs is not None:
        UserFactory(username="someone", **user_kwargs)
    with pytest.raises(CommandError, match=message):
        run_token("--user", "someone", "--json")
    assert not AuthToken.objects.exists() and not AuditEvent.objects.exists()
