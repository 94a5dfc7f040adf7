"""Who may do what in the console: every role × every console API endpoint and method × every
console admin page and admin action, with the expected status.

The cases are generated from the URL conf (the resolver of ``/console/api/`` and the admin's
URLs and actions for the console's models): an endpoint, page or action added without a rule
below fails ``test_..._has_a_rule`` and its own case. What each role may do is written here by
hand, from the roles' definition, not read back from ``console.permissions``.

A refused request changes nothing (not even the audit log); an allowed change writes its
audit event with the acting user.
"""

import json
from datetime import timedelta
from types import SimpleNamespace
from uuid import uuid4

import pytest
from django.contrib import admin
from django.contrib.admin.models import LogEntry
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone
from knox.models import AuthToken
from oauth2_provider.models import get_access_token_model, get_grant_model, get_id_token_model, get_refresh_token_model
from rest_framework.test import APIClient

from console import audit
from console.models import AuditEvent, Refusal
from oidc_provider import access_keys, keys, policy, registration
from oidc_provider.models import (
    AccessAccount, AccessKey, Application, Consent, GrantPolicy, InitialAccessToken, LoginSession, SigningKey,
)

from .factories import ApplicationFactory

AccessToken, RefreshToken = get_access_token_model(), get_refresh_token_model()
Grant, IDToken = get_grant_model(), get_id_token_model()

# -- who: the roles and what each may do (the spec, written out) --------------------------------

ROLES = ["superuser", "administrator", "manager", "auditor", "staff_no_perms", "non_staff", "anonymous"]
GROUPS = {"administrator": "Identity administrator", "manager": "Application manager", "auditor": "Auditor"}

EVERY_ACTION = {
    "console.enter",
    "application.view", "application.add", "application.change", "application.delete",
    "application.regenerate_secret", "tokens.revoke",
    "policy.view", "policy.change",
    "access_account.view", "access_account.add", "access_account.change",
    "access_key.view", "access_key.issue", "access_key.revoke", "access_key.rotate",
    "signing_key.view", "signing_key.rotate", "signing_key.retire",
    "audit.view", "consent.view", "token.view", "code.view", "session.view", "session.end",
    "registration_token.view", "registration_token.issue", "registration_token.revoke",
    "refusal.view",
}
# Applications and access accounts and keys; reads the policy; not the policy, keys or audit log.
MANAGER = {
    "console.enter",
    "application.view", "application.add", "application.change", "application.delete",
    "application.regenerate_secret", "tokens.revoke", "policy.view",
    "access_account.view", "access_account.add", "access_account.change",
    "access_key.view", "access_key.issue", "access_key.revoke", "access_key.rotate",
    "consent.view", "token.view", "session.view", "session.end",
    "registration_token.view", "registration_token.issue", "registration_token.revoke",
    # Why its applications' requests were refused (facts, never a secret).
    "refusal.view",
}
# Read-only, the audit log included; never a secret (no regenerate, no issue, no rotate).
AUDITOR = {
    "console.enter", "application.view", "policy.view", "access_account.view", "access_key.view",
    "signing_key.view", "audit.view", "consent.view", "token.view", "code.view", "session.view",
    "registration_token.view", "refusal.view",
}
CAN = {
    "superuser": EVERY_ACTION | {"superuser"},
    "administrator": EVERY_ACTION,
    "manager": MANAGER,
    "auditor": AUDITOR,
    "staff_no_perms": {"console.enter"},
    "non_staff": set(),
    "anonymous": set(),
}
NOBODY = "nobody"  # refused to everyone, superusers included (e.g. typing in a signing key)


def may(role, action):
    return action != NOBODY and action in CAN[role]


@pytest.fixture
def make_user(db):
    def make(role):
        if role == "anonymous":
            return None
        # No password: these users sign in with force_login, and hashing one per case is slow.
        user = get_user_model().objects.create(
            username=f"{role}-user", is_staff=role != "non_staff", is_superuser=role == "superuser"
        )
        if role in GROUPS:
            user.groups.add(Group.objects.get(name=GROUPS[role]))
        return user

    return make


# -- what: a little of everything the console manages ------------------------------------------


@pytest.fixture
def world(db):
    owner = get_user_model().objects.create(username="end-user")
    app = ApplicationFactory(name="Billing", application_type=policy.WEB)
    doomed = ApplicationFactory(name="Doomed", application_type=policy.WEB)
    account = AccessAccount.objects.create(name="billing", scopes=["read"])
    key, _sk = access_keys.issue(account)
    spare_account = AccessAccount.objects.create(name="reports", scopes=["read"])
    active = keys.ensure_active_key()
    upcoming = SigningKey.objects.get(status=SigningKey.NEXT)
    later = timezone.now() + timedelta(hours=1)
    access = AccessToken.objects.create(user=owner, application=app, token="matrix-access", expires=later, scope="openid")
    refresh = RefreshToken.objects.create(user=owner, application=app, token="matrix-refresh", access_token=access)
    grant = Grant.objects.create(
        user=owner, application=app, code="matrix-code", expires=later, redirect_uri=app.redirect_uris.split()[0], scope="openid"
    )
    id_token = IDToken.objects.create(user=owner, application=app, jti=uuid4(), expires=later, scope="openid")
    consent = Consent.objects.create(user=owner, application=app, scope="openid")
    login_session = LoginSession.objects.create(user=owner)
    registration_token, _token = registration.issue_initial_token(note="partner")
    event = audit.record(audit.APPLICATION_CREATED, actor_label="cli", target=app)
    api_token, _token = AuthToken.objects.create(user=owner)
    refusal = Refusal.objects.create(
        application=app, client_id=app.client_id, endpoint="authorize", error="invalid_request",
        rule="redirect_uri_not_registered", sent={"redirect_uri": "https://rp.example.com/callback/"},
        registered={"redirect_uris": app.redirect_uris.split()},
    )
    current = policy.state_of(policy.WEB, policy.PASSWORD)
    return SimpleNamespace(
        owner=owner, app=app, doomed=doomed, account=account, key=key, spare_account=spare_account,
        active=active, upcoming=upcoming, access=access, refresh=refresh, grant=grant, id_token=id_token,
        consent=consent, event=event, api_token=api_token, refusal=refusal, login_session=login_session, registration_token=registration_token,
        policy_pair=(policy.WEB, policy.PASSWORD),
        new_state=policy.FORBIDDEN if current != policy.FORBIDDEN else policy.ALLOWED,
    )


def snapshot():
    """Everything a console request could change."""
    return {
        "applications": sorted(Application.objects.values_list(
            "client_id", "name", "description", "client_secret", "redirect_uris", "grant_types", "skip_authorization",
            "application_type",
        )),
        "policy": sorted(GrantPolicy.objects.values_list("application_type", "grant", "state")),
        "accounts": sorted(AccessAccount.objects.values_list("name", "description", "scopes", "is_active")),
        "access_keys": sorted(AccessKey.objects.values_list("access_key", "secret_key", "revoked_at")),
        "signing_keys": sorted(SigningKey.objects.values_list("kid", "status")),
        "access_tokens": sorted(AccessToken.objects.values_list("pk", "expires")),
        "refresh_tokens": sorted(RefreshToken.objects.values_list("pk", "revoked")),
        "codes": sorted(Grant.objects.values_list("pk", flat=True)),
        "consents": sorted(Consent.objects.values_list("pk", flat=True)),
        "login_sessions": sorted(LoginSession.objects.values_list("pk", "ended_at")),
        "registration_tokens": sorted(InitialAccessToken.objects.values_list("pk", "revoked_at")),
        "api_tokens": sorted(AuthToken.objects.values_list("digest", flat=True)),
        "audit_events": AuditEvent.objects.count(),
        "refusals": sorted(Refusal.objects.values_list("pk", "rule")),
        "admin_log": LogEntry.objects.count(),
    }


def check(role, user, action, response, ok, before, mutating, *, refused_staff=(403,), anonymous=401, non_staff=403):
    """The response a role gets for a rule, and what the request did to the database."""
    after = snapshot()
    if may(role, action):
        expected = ok if isinstance(ok, tuple) else (ok,)
        assert response.status_code in expected, (role, action, response.status_code, response.content[:500])
        if mutating:
            assert after != before, f"{role} was allowed {action} but nothing changed"
            new_events = AuditEvent.objects.order_by("-id")[: after["audit_events"] - before["audit_events"]]
            assert any(e.actor_id == user.pk for e in new_events), f"{action} by {role} wrote no audit event with the actor"
        return
    if role == "anonymous":
        assert response.status_code == anonymous, (role, action, response.status_code)
    elif role == "non_staff":
        assert response.status_code == non_staff, (role, action, response.status_code)
    else:
        assert response.status_code in refused_staff, (role, action, response.status_code, response.content[:300])
    assert after == before, f"a refused request ({role}, {action}) changed something"


# -- the console REST API ----------------------------------------------------------------------------

API_PREFIX = "/console/api/"


def api_endpoints():
    """(URL name, method) for every view under /console/api/, from the resolver."""
    found = []

    def walk(patterns, prefix, namespace):
        for entry in patterns:
            route = prefix + str(entry.pattern)
            if isinstance(entry, URLResolver):
                ns = f"{namespace}:{entry.namespace}" if entry.namespace else namespace
                walk(entry.url_patterns, route, ns.strip(":"))
            elif isinstance(entry, URLPattern) and ("/" + route).startswith(API_PREFIX):
                callback = entry.callback
                if getattr(callback, "actions", None):  # a viewset
                    methods = set(callback.actions) | {"options"}
                else:
                    view_class = callback.view_class
                    methods = {m for m in view_class.http_method_names if m != "head" and hasattr(view_class, m)}
                methods.discard("head")  # answered like GET
                for method in sorted(methods):
                    found.append((f"{namespace}:{entry.name}", method))

    walk(get_resolver().url_patterns, "", "")
    return found


def url(name, **kwargs):
    return reverse(name, kwargs=kwargs or None)


def app_body(w, **extra):
    return {"name": "Added", "application_type": "web", "redirect_uris": ["https://added.example.com/cb"], **extra}


# (URL name, method) -> (console action, path(w), body(w) or None, status when allowed, changes something).
# OPTIONS describes a resource without doing anything: it needs the right to read it.
API_RULES = {
    ("console:api-root", "get"): ("console.enter", lambda w: url("console:api-root"), None, 200, False),
    ("console:api-root", "options"): ("console.enter", lambda w: url("console:api-root"), None, 200, False),
    ("console:api-schema", "get"): ("console.enter", lambda w: url("console:api-schema"), None, 200, False),
    ("console:api-schema", "options"): ("console.enter", lambda w: url("console:api-schema"), None, 200, False),
    ("console:api-docs", "get"): ("console.enter", lambda w: url("console:api-docs"), None, 200, False),
    # applications
    ("console:api-applications-list", "get"): ("application.view", lambda w: url("console:api-applications-list"), None, 200, False),
    ("console:api-applications-list", "options"): ("application.view", lambda w: url("console:api-applications-list"), None, 200, False),
    ("console:api-applications-list", "post"): (
        "application.add", lambda w: url("console:api-applications-list"), app_body, 201, True),
    ("console:api-applications-detail", "get"): (
        "application.view", lambda w: url("console:api-applications-detail", client_id=w.app.client_id), None, 200, False),
    ("console:api-applications-detail", "options"): (
        "application.view", lambda w: url("console:api-applications-detail", client_id=w.app.client_id), None, 200, False),
    ("console:api-applications-detail", "put"): (
        "application.change", lambda w: url("console:api-applications-detail", client_id=w.app.client_id),
        lambda w: {"name": "Billing", "application_type": "web", "redirect_uris": ["https://evil.example.com/cb"]}, 200, True),
    ("console:api-applications-detail", "patch"): (
        "application.change", lambda w: url("console:api-applications-detail", client_id=w.app.client_id),
        lambda w: {"redirect_uris": ["https://evil.example.com/cb"], "skip_consent": True}, 200, True),
    ("console:api-applications-detail", "delete"): (
        "application.delete", lambda w: url("console:api-applications-detail", client_id=w.doomed.client_id), None, 204, True),
    ("console:api-applications-regenerate-secret", "post"): (
        "application.regenerate_secret",
        lambda w: url("console:api-applications-regenerate-secret", client_id=w.app.client_id), None, 200, True),
    ("console:api-applications-regenerate-secret", "options"): (
        "application.view",
        lambda w: url("console:api-applications-regenerate-secret", client_id=w.app.client_id), None, 200, False),
    # the grant policy
    ("console:api-policy-list", "get"): ("policy.view", lambda w: url("console:api-policy-list"), None, 200, False),
    ("console:api-policy-list", "options"): ("policy.view", lambda w: url("console:api-policy-list"), None, 200, False),
    ("console:api-policy-detail", "get"): (
        "policy.view", lambda w: url("console:api-policy-detail", application_type=w.policy_pair[0], grant=w.policy_pair[1]),
        None, 200, False),
    ("console:api-policy-detail", "options"): (
        "policy.view", lambda w: url("console:api-policy-detail", application_type=w.policy_pair[0], grant=w.policy_pair[1]),
        None, 200, False),
    ("console:api-policy-detail", "put"): (
        "policy.change", lambda w: url("console:api-policy-detail", application_type=w.policy_pair[0], grant=w.policy_pair[1]),
        lambda w: {"state": w.new_state}, 200, True),
    ("console:api-policy-detail", "patch"): (
        "policy.change", lambda w: url("console:api-policy-detail", application_type=w.policy_pair[0], grant=w.policy_pair[1]),
        lambda w: {"state": w.new_state}, 200, True),
    # access accounts
    ("console:api-access-accounts-list", "get"): (
        "access_account.view", lambda w: url("console:api-access-accounts-list"), None, 200, False),
    ("console:api-access-accounts-list", "options"): (
        "access_account.view", lambda w: url("console:api-access-accounts-list"), None, 200, False),
    ("console:api-access-accounts-list", "post"): (
        "access_account.add", lambda w: url("console:api-access-accounts-list"),
        lambda w: {"name": "new-account", "scopes": ["read"]}, 201, True),
    ("console:api-access-accounts-detail", "get"): (
        "access_account.view", lambda w: url("console:api-access-accounts-detail", pk=w.account.pk), None, 200, False),
    ("console:api-access-accounts-detail", "options"): (
        "access_account.view", lambda w: url("console:api-access-accounts-detail", pk=w.account.pk), None, 200, False),
    ("console:api-access-accounts-detail", "put"): (
        "access_account.change", lambda w: url("console:api-access-accounts-detail", pk=w.account.pk),
        lambda w: {"name": "billing", "description": "changed", "scopes": ["read", "write"], "active": True}, 200, True),
    ("console:api-access-accounts-detail", "patch"): (
        "access_account.change", lambda w: url("console:api-access-accounts-detail", pk=w.account.pk),
        lambda w: {"active": False}, 200, True),
    # access keys
    ("console:api-access-keys-list", "get"): ("access_key.view", lambda w: url("console:api-access-keys-list"), None, 200, False),
    ("console:api-access-keys-list", "options"): (
        "access_key.view", lambda w: url("console:api-access-keys-list"), None, 200, False),
    ("console:api-access-keys-list", "post"): (
        "access_key.issue", lambda w: url("console:api-access-keys-list"), lambda w: {"account": "billing"}, 201, True),
    ("console:api-access-keys-detail", "get"): (
        "access_key.view", lambda w: url("console:api-access-keys-detail", pk=w.key.pk), None, 200, False),
    ("console:api-access-keys-detail", "options"): (
        "access_key.view", lambda w: url("console:api-access-keys-detail", pk=w.key.pk), None, 200, False),
    ("console:api-access-keys-revoke", "post"): (
        "access_key.revoke", lambda w: url("console:api-access-keys-revoke", pk=w.key.pk), None, 200, True),
    ("console:api-access-keys-revoke", "options"): (
        "access_key.view", lambda w: url("console:api-access-keys-revoke", pk=w.key.pk), None, 200, False),
    ("console:api-access-keys-rotate", "post"): (
        "access_key.rotate", lambda w: url("console:api-access-keys-rotate", pk=w.key.pk), None, 201, True),
    ("console:api-access-keys-rotate", "options"): (
        "access_key.view", lambda w: url("console:api-access-keys-rotate", pk=w.key.pk), None, 200, False),
    # signing keys
    ("console:api-signing-keys-list", "get"): (
        "signing_key.view", lambda w: url("console:api-signing-keys-list"), None, 200, False),
    ("console:api-signing-keys-list", "options"): (
        "signing_key.view", lambda w: url("console:api-signing-keys-list"), None, 200, False),
    ("console:api-signing-keys-detail", "get"): (
        "signing_key.view", lambda w: url("console:api-signing-keys-detail", kid=w.active.kid), None, 200, False),
    ("console:api-signing-keys-detail", "options"): (
        "signing_key.view", lambda w: url("console:api-signing-keys-detail", kid=w.active.kid), None, 200, False),
    ("console:api-signing-keys-rotate", "post"): (
        "signing_key.rotate", lambda w: url("console:api-signing-keys-rotate"), None, 200, True),
    ("console:api-signing-keys-rotate", "options"): (
        "signing_key.view", lambda w: url("console:api-signing-keys-rotate"), None, 200, False),
    ("console:api-signing-keys-retire", "post"): (
        "signing_key.retire", lambda w: url("console:api-signing-keys-retire", kid=w.upcoming.kid), None, 200, True),
    ("console:api-signing-keys-retire", "options"): (
        "signing_key.view", lambda w: url("console:api-signing-keys-retire", kid=w.upcoming.kid), None, 200, False),
    # the audit log
    ("console:api-audit-events-list", "get"): ("audit.view", lambda w: url("console:api-audit-events-list"), None, 200, False),
    ("console:api-audit-events-list", "options"): (
        "audit.view", lambda w: url("console:api-audit-events-list"), None, 200, False),
    ("console:api-audit-events-detail", "get"): (
        "audit.view", lambda w: url("console:api-audit-events-detail", pk=w.event.pk), None, 200, False),
    ("console:api-audit-events-detail", "options"): (
        "audit.view", lambda w: url("console:api-audit-events-detail", pk=w.event.pk), None, 200, False),
    # refused requests
    ("console:api-refusals-list", "get"): ("refusal.view", lambda w: url("console:api-refusals-list"), None, 200, False),
    ("console:api-refusals-list", "options"): ("refusal.view", lambda w: url("console:api-refusals-list"), None, 200, False),
    ("console:api-refusals-detail", "get"): (
        "refusal.view", lambda w: url("console:api-refusals-detail", pk=w.refusal.pk), None, 200, False),
    ("console:api-refusals-detail", "options"): (
        "refusal.view", lambda w: url("console:api-refusals-detail", pk=w.refusal.pk), None, 200, False),
}

API_ENDPOINTS = api_endpoints()


def test_every_console_api_endpoint_and_method_has_a_rule():
    """A new endpoint or method without a rule in this matrix fails here (and in its own cases)."""
    assert API_ENDPOINTS, "the resolver walk found no console API endpoint"
    missing = sorted(set(API_ENDPOINTS) - set(API_RULES))
    assert not missing, f"console API endpoints without a rule in the permission matrix: {missing}"
    stale = sorted(set(API_RULES) - set(API_ENDPOINTS))
    assert not stale, f"rules for endpoints that no longer exist: {stale}"


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("endpoint", API_ENDPOINTS, ids=lambda e: f"{e[1].upper()} {e[0].split(':')[1]}")
def test_console_api_answers_each_role_as_its_permissions_say(endpoint, role, make_user, world):
    """Every console API request acts with the user's permissions: allowed -> done and audited;
    a staff account without the permission -> 403; non-staff -> 403; anonymous -> 401; a refused
    request changes nothing."""
    assert endpoint in API_RULES, f"no rule for {endpoint}: add it to API_RULES"
    action, path, body, ok, mutating = API_RULES[endpoint]
    user = make_user(role)
    client = APIClient()
    if user is not None:
        client.force_login(user)
    before = snapshot()
    method = getattr(client, endpoint[1])
    response = method(path(world), body(world), format="json") if body else method(path(world))
    # The docs page sends a signed-out person to the login page instead of a bare 401.
    anonymous = 302 if endpoint[0] == "console:api-docs" and endpoint[1] == "get" else 401
    check(role, user, action, response, ok, before, mutating, anonymous=anonymous)


@pytest.mark.parametrize("role", ["manager", "auditor", "staff_no_perms"])
def test_an_api_token_carries_exactly_its_users_permissions(role, make_user, world):
    """A token acts as its user: the same 403 as the session for what the role may not do."""
    user = make_user(role)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {AuthToken.objects.create(user=user)[1]}")
    before = snapshot()
    response = client.post(url("console:api-signing-keys-rotate"))
    assert response.status_code == 403 and snapshot() == before
    assert client.get(url("console:api-applications-list")).status_code == (200 if role != "staff_no_perms" else 403)


def test_staff_without_permissions_cannot_take_over_an_application(make_user, world):
    """The reported takeover: a staff account with no permissions replaces the redirect URIs,
    regenerates and reads the secret, issues an AK/SK, loosens the policy. All refused."""
    client = APIClient()
    client.force_login(make_user("staff_no_perms"))
    before = snapshot()
    detail = url("console:api-applications-detail", client_id=world.app.client_id)
    responses = [
        client.patch(detail, {"redirect_uris": ["https://attacker.example/cb"]}, format="json"),
        client.post(url("console:api-applications-regenerate-secret", client_id=world.app.client_id)),
        client.post(url("console:api-access-keys-list"), {"account": "billing"}, format="json"),
        client.post(url("console:api-applications-list"), app_body(world, skip_consent=True), format="json"),
        client.put(url("console:api-policy-detail", application_type="spa", grant="password"), {"state": "allowed"}, format="json"),
    ]
    assert [r.status_code for r in responses] == [403] * 5
    assert all("client_secret" not in r.json() and "secret_key" not in r.json() for r in responses)
    assert snapshot() == before


def test_the_auditor_never_sees_a_secret(make_user, world):
    """Auditor: read-only and never a secret; what it can list carries no secret or digest."""
    client = APIClient()
    client.force_login(make_user("auditor"))
    body = json.dumps([
        client.get(url(name)).json()
        for name in ("console:api-applications-list", "console:api-access-keys-list", "console:api-signing-keys-list")
    ])
    assert world.app.client_secret not in body and world.key.secret_key not in body
    assert "BEGIN" not in body and "client_secret" not in body and "secret_key" not in body


@pytest.mark.parametrize("role, shown", [("manager", True), ("auditor", False), ("staff_no_perms", None)])
def test_an_access_account_page_links_to_key_actions_only_for_who_may_take_them(role, shown, make_user, world, client):
    """Least privilege in the pages too: the Rotate and Revoke links of a key pair appear only
    to a role holding both permissions (the auditor reads the account without them)."""
    client.force_login(make_user(role))
    response = client.get(reverse("admin:oidc_provider_accessaccount_change", args=[world.account.pk]))
    if shown is None:
        assert response.status_code == 403
        return
    assert response.status_code == 200
    rotate = reverse("admin:oidc_provider_accesskey_rotate", args=[world.key.pk])
    revoke = reverse("admin:oidc_provider_accesskey_revoke", args=[world.key.pk])
    body = response.content.decode()
    assert (rotate in body and revoke in body) is shown
    assert (rotate in body or revoke in body) is shown


# -- the admin: pages ------------------------------------------------------------------------------

# Models whose admin is part of the console.
CONSOLE_APPS = ("oidc_provider", "oauth2_provider", "console", "knox")


def admin_pages():
    """Every named admin URL of the console's models (changelists, forms, the console's own pages)."""
    names = []
    for model, model_admin in admin.site._registry.items():
        if model._meta.app_label in CONSOLE_APPS:
            names += [p.name for p in model_admin.get_urls() if getattr(p, "name", None)]
    return sorted(names)


def app_form(w, **extra):
    return {
        "name": "Added", "description": "", "application_type": policy.WEB,
        "grant_types": [policy.AUTHORIZATION_CODE, policy.REFRESH_TOKEN],
        "redirect_uris": "https://added.example.com/cb", "post_logout_redirect_uris": "", "allowed_origins": "",
        "_save": "Save", **extra,
    }


def account_form(w, **extra):
    return {
        "name": "added-account", "description": "", "scopes": ["read"], "is_active": "on", "issue_key": "",
        "keys-TOTAL_FORMS": "0", "keys-INITIAL_FORMS": "0", "keys-MIN_NUM_FORMS": "0", "keys-MAX_NUM_FORMS": "0",
        "_save": "Save", **extra,
    }


def matrix_form(w):
    data = {}
    for (t, g), state in policy.current_policy().items():
        data[f"{t}__{g}"] = data[f"was__{t}__{g}"] = state
    data[f"{w.policy_pair[0]}__{w.policy_pair[1]}"] = w.new_state
    data["confirm"] = "1"
    return data


def model_pages(prefix, obj, view, add=NOBODY, change=NOBODY, delete=NOBODY, add_form=None, change_form=None, doomed=None):
    """The five pages Django's admin gives every model, with who may use each."""
    doomed = doomed or obj
    rules = {
        f"{prefix}_changelist": [("get", view, lambda w: (), None, 200, False)],
        f"{prefix}_add": [("get", add, lambda w: (), None, 200, False)],
        f"{prefix}_history": [("get", view, lambda w: (obj(w).pk,), None, 200, False)],
        f"{prefix}_delete": [("get", delete, lambda w: (doomed(w).pk,), None, 200, False)],
        f"{prefix}_change": [
            ("get", view, lambda w: (obj(w).pk,), None, 200, False),
            ("post", change, lambda w: (obj(w).pk,), change_form or (lambda w: {}), 302, True),
        ],
    }
    if add_form is not None:
        rules[f"{prefix}_add"].append(("post", add, lambda w: (), add_form, 302, True))
    if delete != NOBODY:
        rules[f"{prefix}_delete"].append(("post", delete, lambda w: (doomed(w).pk,), lambda w: {"post": "yes"}, 302, True))
    return rules


A = "oidc_provider_application"
K = "oidc_provider_accesskey"
# URL name -> [(method, console action, args(w), body(w) or None, status when allowed, changes something)]
ADMIN_RULES = {
    **model_pages(
        A, lambda w: w.app, "application.view", "application.add", "application.change", "application.delete",
        add_form=app_form, change_form=lambda w: app_form(w, name="Billing", redirect_uris="https://evil.example.com/cb"),
        doomed=lambda w: w.doomed,
    ),
    f"{A}_flow": [
        ("get", "application.add", lambda w: (), None, 200, False),
        # No answers: nothing to create (400), but only after the permission check.
        ("post", "application.add", lambda w: (), lambda w: {}, 400, False),
    ],
    f"{A}_credentials": [("get", "application.view", lambda w: (w.app.pk,), None, 200, False)],
    f"{A}_regenerate_secret": [
        ("get", "application.regenerate_secret", lambda w: (w.app.pk,), None, 200, False),
        ("post", "application.regenerate_secret", lambda w: (w.app.pk,), lambda w: {}, 302, True),
    ],
    f"{A}_revoke_tokens": [
        ("get", "tokens.revoke", lambda w: (w.app.pk,), None, 200, False),
        ("post", "tokens.revoke", lambda w: (w.app.pk,), lambda w: {"forget_consents": "1"}, 302, True),
    ],
    **model_pages(
        "oidc_provider_grantpolicy", lambda w: GrantPolicy.objects.get(application_type=w.policy_pair[0], grant=w.policy_pair[1]),
        "policy.view", change="policy.change", change_form=lambda w: {"state": w.new_state, "_save": "Save"},
    ),
    "oidc_provider_grantpolicy_matrix": [
        ("get", "policy.view", lambda w: (), None, 200, False),
        ("post", "policy.change", lambda w: (), matrix_form, 302, True),
    ],
    **model_pages("oidc_provider_signingkey", lambda w: w.active, "signing_key.view"),
    **model_pages(
        "oidc_provider_accessaccount", lambda w: w.spare_account, "access_account.view", "access_account.add",
        "access_account.change", add_form=account_form,
        change_form=lambda w: account_form(w, name="reports", description="changed"),
    ),
    "oidc_provider_accessaccount_issue_key": [
        ("get", "access_key.issue", lambda w: (w.account.pk,), None, 405, False),
        ("post", "access_key.issue", lambda w: (w.account.pk,), lambda w: {}, 302, True),
    ],
    **model_pages(K, lambda w: w.key, "access_key.view"),
    f"{K}_issued": [("get", "access_key.view", lambda w: (), None, 200, False)],
    f"{K}_revoke": [
        ("get", "access_key.revoke", lambda w: (w.key.pk,), None, 200, False),
        ("post", "access_key.revoke", lambda w: (w.key.pk,), lambda w: {}, 302, True),
    ],
    f"{K}_rotate": [
        ("get", "access_key.rotate", lambda w: (w.key.pk,), None, 200, False),
        ("post", "access_key.rotate", lambda w: (w.key.pk,), lambda w: {}, 302, True),
    ],
    **model_pages("oidc_provider_consent", lambda w: w.consent, "consent.view"),
    **model_pages("oidc_provider_loginsession", lambda w: w.login_session, "session.view"),
    **{
        **model_pages("oidc_provider_initialaccesstoken", lambda w: w.registration_token, "registration_token.view",
                      add="registration_token.issue"),
        # Issued on the page itself: the token is shown once, never carried by a redirect.
        "oidc_provider_initialaccesstoken_add": [
            ("get", "registration_token.issue", lambda w: (), None, 200, False),
            ("post", "registration_token.issue", lambda w: (), lambda w: {"note": "ci", "hours": "2"}, 200, True),
        ],
    },
    **model_pages("oauth2_provider_accesstoken", lambda w: w.access, "token.view"),
    **model_pages("oauth2_provider_refreshtoken", lambda w: w.refresh, "token.view"),
    **model_pages("oauth2_provider_grant", lambda w: w.grant, "code.view"),
    **model_pages("oauth2_provider_idtoken", lambda w: w.id_token, "code.view"),
    **model_pages("console_auditevent", lambda w: w.event, "audit.view"),
    "console_auditevent_export": [("get", "audit.view", lambda w: (), None, 200, False)],
    **model_pages("console_refusal", lambda w: w.refusal, "refusal.view"),
    **model_pages("knox_authtoken", lambda w: w.api_token, "superuser", delete="superuser"),
}

ADMIN_PAGES = admin_pages()


def test_every_console_admin_page_has_a_rule():
    """A new admin page of a console model without a rule fails here (and in its own cases)."""
    assert ADMIN_PAGES
    missing = sorted(set(ADMIN_PAGES) - set(ADMIN_RULES))
    assert not missing, f"console admin pages without a rule in the permission matrix: {missing}"
    stale = sorted(set(ADMIN_RULES) - set(ADMIN_PAGES))
    assert not stale, f"rules for admin pages that no longer exist: {stale}"


ADMIN_CASES = [(name, i) for name in ADMIN_PAGES for i in range(len(ADMIN_RULES.get(name, [None])))]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("case", ADMIN_CASES, ids=lambda c: f"{c[0]}-{c[1]}")
def test_console_admin_pages_answer_each_role_as_its_permissions_say(case, role, make_user, world, client):
    """Every console page: allowed -> its page or its change, audited; a staff account without
    the permission -> 403 and nothing changed; non-staff and anonymous -> the admin login."""
    name, index = case
    assert name in ADMIN_RULES, f"no rule for admin page {name}: add it to ADMIN_RULES"
    method, action, args, body, ok, mutating = ADMIN_RULES[name][index]
    user = make_user(role)
    if user is not None:
        client.force_login(user)
    before = snapshot()
    path = reverse(f"admin:{name}", args=args(world))
    response = client.post(path, body(world)) if method == "post" else client.get(path)
    check(role, user, action, response, ok, before, mutating, anonymous=302, non_staff=302)
    if role in ("anonymous", "non_staff"):
        assert response["Location"].startswith(reverse("admin:login"))


# -- the admin: actions on the changelists ------------------------------------------------------------


def admin_actions():
    found = []
    for model, model_admin in admin.site._registry.items():
        if model._meta.app_label in CONSOLE_APPS:
            for _func, action_name, _description in model_admin._get_base_actions():
                found.append((model._meta.label_lower, action_name))
    return sorted(found)


# (model, action) -> (console action, the selected object(w), status when allowed)
ACTION_RULES = {
    ("oidc_provider.application", "delete_selected"): ("application.delete", lambda w: w.doomed, 302),
    ("oidc_provider.application", "regenerate_secret"): ("application.regenerate_secret", lambda w: w.app, 200),  # the new secrets on a page of their own
    ("oidc_provider.application", "revoke_all_tokens"): ("tokens.revoke", lambda w: w.app, 302),
    ("oidc_provider.signingkey", "rotate_keys"): ("signing_key.rotate", lambda w: w.active, 302),
    ("oidc_provider.signingkey", "retire_keys"): ("signing_key.retire", lambda w: w.upcoming, 302),
    ("oidc_provider.accessaccount", "issue_key_pairs"): ("access_key.issue", lambda w: w.account, 302),
    ("oidc_provider.accesskey", "revoke_pairs"): ("access_key.revoke", lambda w: w.key, 302),
    ("oidc_provider.accesskey", "rotate_pairs"): ("access_key.rotate", lambda w: w.key, 302),
    ("oauth2_provider.accesstoken", "revoke_tokens"): ("tokens.revoke", lambda w: w.access, 302),
    ("oauth2_provider.accesstoken", "revoke_all_of_users"): ("tokens.revoke", lambda w: w.access, 302),
    ("oauth2_provider.accesstoken", "revoke_all_of_applications"): ("tokens.revoke", lambda w: w.access, 302),
    ("oauth2_provider.refreshtoken", "revoke_tokens"): ("tokens.revoke", lambda w: w.refresh, 302),
    ("oauth2_provider.refreshtoken", "revoke_all_of_users"): ("tokens.revoke", lambda w: w.refresh, 302),
    ("oauth2_provider.refreshtoken", "revoke_all_of_applications"): ("tokens.revoke", lambda w: w.refresh, 302),
    ("oidc_provider.consent", "revoke_consents"): ("tokens.revoke", lambda w: w.consent, 302),
    ("oidc_provider.loginsession", "end_sessions"): ("session.end", lambda w: w.login_session, 302),
    ("oidc_provider.initialaccesstoken", "revoke_tokens"): ("registration_token.revoke", lambda w: w.registration_token, 302),
    ("console.auditevent", "export_csv"): ("audit.view", lambda w: w.event, 200),
    ("knox.authtoken", "delete_selected"): ("superuser", lambda w: w.api_token, 302),
    # Deleting rows by hand would skip the audited revoke actions: refused on every other list.
    ("oidc_provider.grantpolicy", "delete_selected"): (NOBODY, lambda w: GrantPolicy.objects.first(), 302),
    ("oidc_provider.signingkey", "delete_selected"): (NOBODY, lambda w: w.upcoming, 302),
    ("oidc_provider.accessaccount", "delete_selected"): (NOBODY, lambda w: w.spare_account, 302),
    ("oidc_provider.accesskey", "delete_selected"): (NOBODY, lambda w: w.key, 302),
    ("oidc_provider.consent", "delete_selected"): (NOBODY, lambda w: w.consent, 302),
    ("oidc_provider.loginsession", "delete_selected"): (NOBODY, lambda w: w.login_session, 302),
    ("oidc_provider.initialaccesstoken", "delete_selected"): (NOBODY, lambda w: w.registration_token, 302),
    ("oauth2_provider.accesstoken", "delete_selected"): (NOBODY, lambda w: w.access, 302),
    ("oauth2_provider.refreshtoken", "delete_selected"): (NOBODY, lambda w: w.refresh, 302),
    ("oauth2_provider.grant", "delete_selected"): (NOBODY, lambda w: w.grant, 302),
    ("oauth2_provider.idtoken", "delete_selected"): (NOBODY, lambda w: w.id_token, 302),
    ("console.auditevent", "delete_selected"): (NOBODY, lambda w: w.event, 302),
    ("console.refusal", "delete_selected"): (NOBODY, lambda w: w.refusal, 302),
}
# What a model's changelist needs (a refused action on a visible list comes back to the list).
CHANGELIST_VIEW = {
    "oidc_provider.application": "application.view", "oidc_provider.signingkey": "signing_key.view",
    "oidc_provider.accessaccount": "access_account.view", "oidc_provider.accesskey": "access_key.view",
    "oauth2_provider.accesstoken": "token.view", "oauth2_provider.refreshtoken": "token.view",
    "oidc_provider.consent": "consent.view", "oidc_provider.loginsession": "session.view",
    "oidc_provider.initialaccesstoken": "registration_token.view",
    "console.auditevent": "audit.view", "console.refusal": "refusal.view", "knox.authtoken": "superuser",
    "oidc_provider.grantpolicy": "policy.view", "oauth2_provider.grant": "code.view", "oauth2_provider.idtoken": "code.view",
}
ADMIN_ACTIONS = admin_actions()


def test_every_console_admin_action_has_a_rule():
    missing = sorted(set(ADMIN_ACTIONS) - set(ACTION_RULES))
    assert not missing, f"console admin actions without a rule in the permission matrix: {missing}"


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("target", ADMIN_ACTIONS, ids=lambda t: f"{t[0]}.{t[1]}")
def test_console_admin_actions_obey_the_same_permissions(target, role, make_user, world, client):
    """A changelist action runs only for a role holding its permission; for the others the
    list comes back (or 403 without even the right to see it) and nothing changed."""
    assert target in ACTION_RULES, f"no rule for admin action {target}: add it to ACTION_RULES"
    action, selected, ok = ACTION_RULES[target]
    label, action_name = target
    user = make_user(role)
    if user is not None:
        client.force_login(user)
    before = snapshot()
    app_label, model_name = label.split(".")
    path = reverse(f"admin:{app_label}_{model_name}_changelist")
    data = {"action": action_name, "_selected_action": [selected(world).pk], "index": "0"}
    if action_name == "delete_selected":
        data["post"] = "yes"
    response = client.post(path, data)
    mutating = action_name != "export_csv"
    # Refused on a list the user may see: the list again (200, or 302 back to it), unchanged.
    refused_staff = (200, 302) if may(role, CHANGELIST_VIEW[label]) else (403,)
    check(role, user, action, response, ok, before, mutating, refused_staff=refused_staff, anonymous=302, non_staff=302)


# -- the admin's first page and the API tokens page -------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
def test_dashboard_and_token_page_are_for_staff(role, make_user, world, client):
    """Every staff account reaches the dashboard and its own tokens page; others go to the login."""
    user = make_user(role)
    if user is not None:
        client.force_login(user)
    before = snapshot()
    for path in (reverse("admin:index"), reverse("console:api-tokens")):
        response = client.get(path)
        if role in ("anonymous", "non_staff"):
            assert response.status_code == 302 and response["Location"].startswith(reverse("admin:login"))
        else:
            assert response.status_code == 200
    response = client.post(reverse("console:api-tokens"), {"action": "create", "days": "7"})
    if role in ("anonymous", "non_staff"):
        assert response.status_code == 302 and snapshot() == before
    else:
        assert response.status_code == 200 and AuthToken.objects.filter(user=user).count() == 1


# -- the shipped roles ----------------------------------------------------------------------------------


def test_the_three_roles_are_shipped_by_migration(db):
    """Identity administrator, Application manager and Auditor exist after migrate, with permissions."""
    for name in GROUPS.values():
        assert Group.objects.get(name=name).permissions.exists()


def test_console_roles_remakes_the_roles_and_keeps_members(db, make_user):
    """``console_roles sync`` resets a role someone edited, keeps its members; running it twice is harmless."""
    from io import StringIO

    from django.core.management import call_command

    auditor = make_user("auditor")
    group = Group.objects.get(name="Auditor")
    group.permissions.clear()
    out = StringIO()
    call_command("console_roles", "sync", "--json", stdout=out)
    call_command("console_roles", "sync", stdout=StringIO())
    roles = json.loads(out.getvalue())["roles"]
    assert "console.view_auditevent" in roles["Auditor"]
    assert not any(p.startswith("auth.") for p in roles["Identity administrator"])
    assert all(p.split(".")[1].startswith("view_") for p in roles["Auditor"])
    assert auditor.groups.filter(name="Auditor").exists() and group.permissions.count() == len(roles["Auditor"])


def test_an_application_with_tokens_can_still_be_deleted_in_the_admin(make_user, world, client):
    """Tokens cannot be deleted by hand, yet an application's tokens and consents go with it."""
    client.force_login(make_user("administrator"))
    response = client.post(reverse("admin:oidc_provider_application_delete", args=(world.app.pk,)), {"post": "yes"})
    assert response.status_code == 302 and not Application.objects.filter(pk=world.app.pk).exists()
    assert not AccessToken.objects.filter(pk=world.access.pk).exists() and not Consent.objects.exists()
    assert AuditEvent.objects.get(action=audit.APPLICATION_DELETED).actor.username == "administrator-user"
