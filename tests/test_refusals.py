"""Why was this refused? Each refused authorization or token request is recorded with the rule
that refused it, what it sent beside what is registered, and the fix: in the admin, the API
(``/console/api/refusals/``) and ``manage.py oidc_explain``. Never a secret, code or token."""

import json
from datetime import timedelta
from io import StringIO
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from console import refusals as console_refusals
from console.models import AuditEvent, Refusal
from oidc_provider import access_keys, policy
from oidc_provider.models import AccessAccount

from .factories import PASSWORD, ApplicationFactory
from .helpers import authorize, basic_auth, exchange, get_code, pkce_pair, query_of, set_policy

API = "/console/api/refusals/"


@pytest.fixture(autouse=True)
def _fresh_limits():
    # The rate window and the pruning clock are per process: each test starts with both clear.
    console_refusals.reset_limits()
    yield
    console_refusals.reset_limits()


def only_refusal(**filters):
    rows = list(Refusal.objects.filter(**filters))
    assert len(rows) == 1, [(r.rule, r.sent) for r in Refusal.objects.all()]
    return rows[0]


def stored(refusal):
    """Everything a record keeps, as one string."""
    return json.dumps(
        [refusal.client_id, refusal.error, refusal.description, refusal.rule, refusal.sent, refusal.registered,
         refusal.request_id], default=str)


def assert_kept_nowhere(*values):
    """None of ``values`` (secrets, codes, tokens, verifiers) in any record, the API's output or the CLI's."""
    values = [v for v in values if v]
    everything = " ".join(stored(r) for r in Refusal.objects.all())
    auditor = APIClient()
    auditor.force_login(make_auditor())
    everything += json.dumps(auditor.get(API).json())
    for client_id in {r.client_id for r in Refusal.objects.exclude(application=None)}:
        out = StringIO()
        call_command("oidc_explain", client_id, "--json", stdout=out)
        everything += out.getvalue()
    for value in values:
        assert value not in everything


def make_auditor():
    user, _created = get_user_model().objects.get_or_create(username="auditor-user", defaults={"is_staff": True})
    user.groups.add(Group.objects.get(name="Auditor"))
    return user


def explained(refusal):
    return console_refusals.explain(refusal)


# -- the authorization endpoint ------------------------------------------------------------------


def test_an_unregistered_redirect_uri_is_recorded_beside_the_registered_ones_with_what_differs(client, web_app):
    """RFC 6749 §3.1.2.3, §4.1.2.1: an unregistered redirect URI gets the error page, and the
    record shows the sent URI against each registered one (here: a trailing slash)."""
    response = authorize(client, web_app, redirect_uri="https://rp.example.com/callback/")
    assert response.status_code == 400 and "Location" not in response
    refusal = only_refusal()
    assert (refusal.endpoint, refusal.error, refusal.rule) == ("authorize", "invalid_request", "redirect_uri_not_registered")
    assert refusal.application == web_app and refusal.client_id == web_app.client_id
    assert refusal.sent["redirect_uri"] == "https://rp.example.com/callback/"
    assert refusal.registered["redirect_uris"] == ["https://rp.example.com/callback"]
    explanation = explained(refusal)
    assert explanation.fix.startswith("Send the registered https://rp.example.com/callback exactly from the client")
    assert "trailing slash" in explanation.fix and "if https://rp.example.com/callback/ is also your application's" in explanation.fix
    assert explanation.link == reverse("admin:oidc_provider_application_change", args=[web_app.pk]) + "#id_redirect_uris"


def test_a_redirect_uri_on_a_host_the_app_does_not_use_is_never_offered_for_registration(client, web_app):
    """Anyone can send an authorization request naming any client and any redirect URI (RFC 6749
    §10.6): the console must not advise registering an attacker's URI, nor link to doing so."""
    authorize(client, web_app, redirect_uri="https://attacker.example/cb")

    explanation = explained(only_refusal())

    assert "change nothing" in explanation.fix and "register it" in explanation.fix
    assert explanation.link is None


@pytest.mark.parametrize("sent, difference", [
    ("http://rp.example.com/callback", "scheme: http instead of https"),
    ("https://rp.example.com:8443/callback", "port: 8443 instead of default"),
    ("https://rp.example.com/other", "path: /other instead of /callback"),
    ("https://RP.example.com/callback", "letter case"),
])
def test_the_redirect_uri_comparison_names_what_differs(sent, difference):
    """RFC 6749 §3.1.2.3 compares redirect URIs exactly; the comparison says where they part."""
    (registered, differences), = console_refusals.redirect_uri_differences(sent, ["https://rp.example.com/callback"])
    assert registered == "https://rp.example.com/callback" and difference in differences


def test_an_unknown_client_is_recorded_without_an_application(client, db):
    """RFC 6749 §4.1.2.1: an unknown client_id gets the error page; its record names no application."""
    response = client.get("/oidc/auth", {"client_id": "no-such-app", "redirect_uri": "https://evil.example/cb",
                                         "response_type": "code", "scope": "openid"})
    assert response.status_code == 400
    refusal = only_refusal()
    assert (refusal.rule, refusal.application, refusal.client_id) == ("client_unknown", None, "no-suc…")
    assert "No application has the client_id “no-suc…”" in explained(refusal).fix
    assert explained(refusal).link == reverse("admin:oidc_provider_application_changelist")


def test_a_client_id_that_names_no_application_is_kept_by_its_first_characters_only(client, web_app):
    """A client that swaps its id and its secret sends the secret as client_id; every console
    role reads these records, so an unknown id is cut to its first characters."""
    response = client.post("/oidc/token", {"grant_type": "client_credentials"},
                           HTTP_AUTHORIZATION=basic_auth(web_app.plaintext_secret, web_app.client_id))

    assert response.status_code == 401
    refusal = only_refusal()
    assert refusal.client_id == web_app.plaintext_secret[:6] + "…"
    assert_kept_nowhere(web_app.plaintext_secret)
    assert not AuditEvent.objects.filter(actor_label__contains=web_app.plaintext_secret).exists()
    assert not AuditEvent.objects.filter(details__icontains=web_app.plaintext_secret).exists()


def test_a_response_type_the_policy_forbids_is_recorded_with_a_link_to_the_policy(logged_in, web_app):
    """Grant policy: implicit is forbidden for web applications; the fix points at the policy."""
    response = authorize(logged_in, web_app, response_type="token")
    assert response.status_code == 302
    refusal = only_refusal()
    assert (refusal.error, refusal.rule) == ("unsupported_response_type", "grant_forbidden_by_policy")
    assert refusal.sent["grant"] == "implicit" and refusal.registered["policy"] == "forbidden"
    assert refusal.registered["application_type"] == "web"
    assert explained(refusal).fix.startswith("The policy forbids implicit for web applications")
    assert explained(refusal).link == reverse("admin:oidc_provider_grantpolicy_matrix")


def test_a_public_client_without_pkce_is_recorded_as_pkce_missing(logged_in, spa_app):
    """RFC 7636 §4.4.1, RFC 9700 §2.1.1: a public client must send a code_challenge."""
    response = authorize(logged_in, spa_app)
    assert query_of(response)["error"] == "invalid_request"
    refusal = only_refusal()
    assert refusal.rule == "pkce_missing" and refusal.sent["code_challenge"] == "missing"
    assert refusal.registered == {"application_type": "spa", "pkce": "required (S256)"}
    assert "Send a code_challenge (S256)" in explained(refusal).fix and explained(refusal).link is None


def test_a_plain_pkce_method_is_recorded(logged_in, spa_app):
    """RFC 9700 §2.1.1: only S256."""
    authorize(logged_in, spa_app, code_challenge="a" * 43, code_challenge_method="plain")
    refusal = only_refusal()
    assert refusal.rule == "pkce_method_not_s256" and refusal.sent["code_challenge_method"] == "plain"


def test_a_scope_beyond_what_the_client_may_ask_is_recorded(logged_in, web_app):
    """RFC 6749 §3.3, §4.1.2.1: invalid_scope names the scopes not allowed."""
    authorize(logged_in, web_app, scope="openid launch_missiles")
    refusal = only_refusal()
    assert refusal.rule == "scope_not_allowed" and refusal.sent["not_allowed"] == ["launch_missiles"]
    assert "openid" in refusal.registered["scopes"] and "launch_missiles" in explained(refusal).fix


def test_prompt_none_without_a_login_is_recorded_as_login_required(client, web_app):
    """OIDC Core 3.1.2.6: login_required when prompt=none and nobody is logged in."""
    response = authorize(client, web_app, prompt="none")
    assert query_of(response)["error"] == "login_required"
    refusal = only_refusal()
    assert refusal.rule == "login_required" and refusal.sent["prompt"] == "none"


def test_consent_denied_is_recorded_audited_with_the_user_as_actor_and_described(logged_in, web_app, user):
    """RFC 6749 §4.1.2.1: access_denied with a real error_description (never an empty one); the
    denial is audited with the user who chose Deny as the actor."""
    page = authorize(logged_in, web_app)
    data = {f.name: f.value() or "" for f in page.context["form"]}
    data.pop("allow", None)
    data.update({"consent_form": "1"})
    response = logged_in.post("/oidc/auth", data)
    assert response.status_code == 302
    raw = parse_qs(urlsplit(response["Location"]).query, keep_blank_values=True)
    assert raw["error"] == ["access_denied"] and raw["state"] == ["xyz"]
    assert raw["error_description"] == ["The user declined to authorize this client."]
    refusal = only_refusal()
    assert (refusal.rule, refusal.error, refusal.application) == ("consent_denied", "access_denied", web_app)
    assert "csrfmiddlewaretoken" not in stored(refusal)
    event = AuditEvent.objects.get(action="consent.denied")
    assert event.actor == user and event.target_id == str(web_app.pk) and event.details["client_id"] == web_app.client_id


def test_an_error_redirect_without_a_description_carries_no_empty_error_description(logged_in, web_app):
    """RFC 6749 §4.1.2.1: error_description is OPTIONAL; it is left out rather than sent empty."""
    from oidc_provider.views.authorize import AuthorizeView

    view = AuthorizeView()
    view.request, view.response_mode = logged_in.get("/").wsgi_request, None
    response = view.redirect_error(web_app, {"redirect_uri": "https://rp.example.com/callback", "response_type": "code"},
                                   "access_denied", "")
    assert "error_description" not in response["Location"]


def test_a_refused_grant_is_audited_with_no_actor_and_the_application_as_target(logged_in, web_app, user):
    """An authorization request names a client anyone may name: the audit event's actor is the
    anonymous requester, the application its target."""
    authorize(logged_in, web_app, response_type="token")
    event = AuditEvent.objects.get(action="grant.refused")
    assert event.actor is None and event.actor_label == "anonymous"
    assert (event.target_type, event.target_id) == ("oidc_provider.application", str(web_app.pk))
    assert event.details["client_id"] == web_app.client_id


# -- the token endpoint --------------------------------------------------------------------------


def test_a_grant_the_app_does_not_hold_is_recorded_with_the_fix_to_turn_it_on(client, db):
    """RFC 6749 §5.2 unauthorized_client: the fix turns the grant on for this application."""
    app = ApplicationFactory(application_type=policy.WEB, grant_types=["authorization_code"])
    response = client.post("/oidc/token", {"grant_type": "refresh_token", "refresh_token": "whatever"},
                           HTTP_AUTHORIZATION=basic_auth(app.client_id, app.plaintext_secret))
    assert response.json()["error"] == "unauthorized_client"
    refusal = only_refusal()
    assert (refusal.endpoint, refusal.rule, refusal.application) == ("token", "grant_not_enabled", app)
    assert refusal.sent["grant_type"] == "refresh_token" and refusal.registered["grant_types"] == ["authorization_code"]
    assert explained(refusal).fix == "Turn on refresh_token for this application."
    assert explained(refusal).link.endswith("#id_grant_types")
    assert_kept_nowhere("whatever", app.plaintext_secret)


def test_a_grant_the_policy_forbids_at_the_token_endpoint_is_recorded(client, db):
    """Grant policy, enforced at the moment of the request: the fix points at the policy."""
    app = ApplicationFactory(application_type=policy.SERVICE, grant_types=["client_credentials"])
    set_policy(policy.SERVICE, policy.CLIENT_CREDENTIALS, policy.FORBIDDEN)
    client.post("/oidc/token", {"grant_type": "client_credentials"}, HTTP_AUTHORIZATION=basic_auth(app.client_id, app.plaintext_secret))
    refusal = only_refusal()
    assert refusal.rule == "grant_forbidden_by_policy" and refusal.registered["policy"] == "forbidden"
    assert explained(refusal).link == reverse("admin:oidc_provider_grantpolicy_matrix")


@pytest.mark.parametrize("secret, rule, fact", [("wrong-secret-value", "client_secret_wrong", "wrong"),
                                                 (None, "client_secret_missing", "missing")])
def test_a_wrong_or_missing_client_secret_is_recorded_as_a_fact_never_the_secret(client, web_app, secret, rule, fact):
    """RFC 6749 §2.3.1, §5.2 invalid_client: the record says the secret was wrong, never what it was."""
    data = {"grant_type": "authorization_code", "code": "some-code-value", "redirect_uri": "https://rp.example.com/callback"}
    if secret:
        response = client.post("/oidc/token", data, HTTP_AUTHORIZATION=basic_auth(web_app.client_id, secret))
    else:
        response = client.post("/oidc/token", {**data, "client_id": web_app.client_id})
    assert response.status_code == 401
    refusal = only_refusal()
    assert (refusal.rule, refusal.error, refusal.sent["client_secret"]) == (rule, "invalid_client", fact)
    assert refusal.registered["client_secret"] == "set"
    if rule == "client_secret_wrong":
        assert explained(refusal).link == reverse("admin:oidc_provider_application_regenerate_secret", args=[web_app.pk])
    assert_kept_nowhere("wrong-secret-value", "some-code-value", web_app.plaintext_secret)


def test_an_unknown_client_at_the_token_endpoint_is_recorded(client, db):
    client.post("/oidc/token", {"grant_type": "client_credentials"}, HTTP_AUTHORIZATION=basic_auth("ghost", "s3cr3t-value"))
    refusal = only_refusal()
    assert (refusal.rule, refusal.client_id, refusal.application) == ("client_unknown", "ghost", None)
    assert "s3cr3t-value" not in stored(refusal)


def test_a_replayed_code_is_recorded_and_no_code_or_token_is_kept(logged_in, web_app):
    """RFC 6749 §4.1.2: a code is single-use; its replay is recorded as a fact ("already used")."""
    code = get_code(logged_in, web_app)["code"]
    first = exchange(logged_in, web_app, code, secret=web_app.plaintext_secret).json()
    assert not Refusal.objects.exists()
    response = exchange(logged_in, web_app, code, secret=web_app.plaintext_secret)
    assert response.json()["error"] == "invalid_grant"
    refusal = only_refusal()
    assert (refusal.rule, refusal.sent["code"]) == ("code_replayed", "already used")
    assert "exchange each code exactly once" in explained(refusal).fix
    assert_kept_nowhere(code, first["access_token"], first["refresh_token"], first["id_token"], web_app.plaintext_secret)


def test_an_unknown_code_is_recorded_as_invalid_or_expired(client, web_app):
    exchange(client, web_app, "made-up-code", secret=web_app.plaintext_secret)
    refusal = only_refusal()
    assert refusal.rule == "code_invalid_or_expired" and refusal.sent["code"] == "unknown"
    assert_kept_nowhere("made-up-code")


def test_a_wrong_code_verifier_is_recorded_as_pkce_mismatch_without_the_verifier(logged_in, spa_app):
    """RFC 7636 §4.6: the verifier must hash to the challenge; the record keeps neither."""
    verifier, challenge = pkce_pair()
    code = get_code(logged_in, spa_app, code_challenge=challenge, code_challenge_method="S256")["code"]
    wrong, _challenge = pkce_pair()
    response = exchange(logged_in, spa_app, code, code_verifier=wrong)
    assert response.json()["error"] == "invalid_grant"
    refusal = only_refusal()
    assert (refusal.rule, refusal.sent["code_verifier"]) == ("pkce_mismatch", "does not match")
    assert_kept_nowhere(wrong, verifier, challenge, code)


def test_a_missing_code_verifier_is_recorded_as_pkce_missing(logged_in, spa_app):
    """RFC 7636 §4.5: a code issued with a challenge needs the code_verifier."""
    _verifier, challenge = pkce_pair()
    code = get_code(logged_in, spa_app, code_challenge=challenge, code_challenge_method="S256")["code"]
    exchange(logged_in, spa_app, code)
    refusal = only_refusal()
    assert refusal.rule == "pkce_missing" and refusal.endpoint == "token" and refusal.sent["code_verifier"] == "missing"


def test_a_replayed_refresh_token_is_recorded(logged_in, web_app):
    """RFC 9700 §4.14.2: a rotated refresh token presented again is a replay."""
    tokens = exchange(logged_in, web_app, get_code(logged_in, web_app)["code"], secret=web_app.plaintext_secret).json()
    auth = basic_auth(web_app.client_id, web_app.plaintext_secret)
    rotated = logged_in.post("/oidc/token", {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
                             HTTP_AUTHORIZATION=auth)
    assert rotated.status_code == 200 and not Refusal.objects.exists()
    logged_in.post("/oidc/token", {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}, HTTP_AUTHORIZATION=auth)
    refusal = only_refusal()
    assert refusal.rule == "refresh_token_replayed" and refusal.sent["refresh_token"] == "already used"
    assert_kept_nowhere(tokens["refresh_token"], rotated.json()["refresh_token"], rotated.json()["access_token"])


def test_a_scope_beyond_the_access_account_is_recorded_with_a_link_to_the_account(client, db):
    """AK/SK: a token only for scopes among the account's resource permissions (invalid_scope)."""
    account = AccessAccount.objects.create(name="billing", scopes=["read"])
    key, sk = access_keys.issue(account)
    response = client.post("/oidc/token", {"grant_type": "client_credentials", "scope": "read write"},
                           HTTP_AUTHORIZATION=basic_auth(key.access_key, sk))
    assert response.json()["error"] == "invalid_scope"
    refusal = only_refusal()
    assert refusal.rule == "scope_not_allowed" and refusal.sent == {"scope": ["read", "write"], "not_allowed": ["write"], "grant_type": "client_credentials"}
    assert refusal.registered == {"account": "billing", "scopes": ["read"]}
    assert explained(refusal).fix == "Add write to the resource permissions of the access account billing, or stop asking for it."
    assert explained(refusal).link == reverse("admin:oidc_provider_accessaccount_change", args=[account.pk])
    assert_kept_nowhere(sk)


def test_a_wrong_password_grant_is_recorded_without_the_password(client, user, db):
    """RFC 6749 §4.3.2: invalid_grant; the record never holds the password."""
    app = ApplicationFactory(application_type=policy.WEB, grant_types=["authorization_code", "password"])
    client.post("/oidc/token", {"grant_type": "password", "username": user.username, "password": "not-the-password"},
                HTTP_AUTHORIZATION=basic_auth(app.client_id, app.plaintext_secret))
    refusal = only_refusal()
    assert refusal.rule == "user_credentials_wrong"
    assert_kept_nowhere("not-the-password", PASSWORD)


def test_a_browser_origin_the_app_does_not_list_is_recorded_with_the_fix_to_add_it(logged_in, spa_app):
    """CORS: an SPA's exchange from an origin its application does not list is answered, but the
    browser keeps the answer from it: the fix adds the origin."""
    verifier, challenge = pkce_pair()
    code = get_code(logged_in, spa_app, code_challenge=challenge, code_challenge_method="S256")["code"]
    response = logged_in.post(
        "/oidc/token",
        {"grant_type": "authorization_code", "code": code, "redirect_uri": "https://spa.example.com/cb",
         "client_id": spa_app.client_id, "code_verifier": verifier},
        HTTP_ORIGIN="http://localhost:3000",
    )
    assert response.status_code == 200 and "Access-Control-Allow-Origin" not in response
    refusal = only_refusal()
    assert (refusal.rule, refusal.error, refusal.sent["origin"]) == ("cors_origin_not_allowed", "", "http://localhost:3000")
    assert explained(refusal).fix.startswith("If http://localhost:3000 is your application's own address, add it")
    assert explained(refusal).link.endswith("#id_allowed_origins")
    assert_kept_nowhere(code, verifier, response.json()["access_token"])


def test_an_error_from_an_origin_the_app_does_not_list_shows_the_origin_beside_the_rule(client, spa_app):
    client.post("/oidc/token", {"grant_type": "authorization_code", "code": "x", "client_id": spa_app.client_id,
                                "redirect_uri": "https://spa.example.com/cb"}, HTTP_ORIGIN="http://localhost:3000")
    refusal = only_refusal()
    assert refusal.rule == "code_invalid_or_expired" and refusal.sent["origin"] == "http://localhost:3000"
    assert refusal.registered["allowed_origins"] == spa_app.allowed_origins.split()


# -- what is not recorded, and the bounds --------------------------------------------------------


def test_successful_requests_write_no_record(logged_in, web_app, db):
    """Success costs nothing: a code flow, a refresh and client credentials write no refusal."""
    tokens = exchange(logged_in, web_app, get_code(logged_in, web_app)["code"], secret=web_app.plaintext_secret).json()
    logged_in.post("/oidc/token", {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
                   HTTP_AUTHORIZATION=basic_auth(web_app.client_id, web_app.plaintext_secret))
    service = ApplicationFactory(application_type=policy.SERVICE)
    response = logged_in.post("/oidc/token", {"grant_type": "client_credentials"},
                              HTTP_AUTHORIZATION=basic_auth(service.client_id, service.plaintext_secret))
    assert response.status_code == 200
    assert not Refusal.objects.exists()


@override_settings(CONSOLE_REFUSAL_RETENTION_DAYS=7, CONSOLE_REFUSALS_MAX_ROWS=5)
def test_records_past_retention_are_pruned_and_the_size_bound_holds(client, web_app):
    def refused():
        client.post("/oidc/token", {"grant_type": "client_credentials"}, HTTP_AUTHORIZATION=basic_auth("ghost", "x"))

    old = timezone.now() - timedelta(days=8)
    Refusal.objects.bulk_create([Refusal(at=old, endpoint="token", rule="client_unknown") for _ in range(3)])
    Refusal.objects.bulk_create([Refusal(endpoint="token", rule="client_unknown") for _ in range(4)])
    refused()
    assert Refusal.objects.count() == 5
    assert not Refusal.objects.filter(at__lt=timezone.now() - timedelta(days=7)).exists()
    refused()
    refused()
    console_refusals.reset_limits()  # a minute later
    refused()
    assert Refusal.objects.count() == 5 and Refusal.objects.filter(client_id="ghost").count() == 4  # the newest kept


def test_pruning_runs_at_most_once_a_minute_per_process(client, db):
    with override_settings(CONSOLE_REFUSALS_MAX_ROWS=1):
        for _ in range(3):
            client.post("/oidc/token", {"grant_type": "client_credentials"}, HTTP_AUTHORIZATION=basic_auth("ghost", "x"))
        # Pruned after the first write only: the bound is kept up within a minute, not on every write.
        assert Refusal.objects.count() == 3
        assert console_refusals.prune() == 2 and Refusal.objects.count() == 1


@override_settings(CONSOLE_REFUSALS_PER_MINUTE=3)
def test_a_flood_of_bad_requests_is_not_a_flood_of_writes(client, db):
    for _ in range(10):
        response = client.post("/oidc/token", {"grant_type": "client_credentials"}, HTTP_AUTHORIZATION=basic_auth("ghost", "x"))
        assert response.status_code == 401
    assert Refusal.objects.count() == 3


@pytest.mark.parametrize("params", [
    {"client_id": "\x00"},
    {"client_id": "x" * 5000, "redirect_uri": "https://a.example/cb"},
    {"client_id": ["a", "b"]},
    {"response_type": "code"},
])
def test_malformed_authorization_requests_are_recorded_without_a_server_error(client, db, params):
    """Malformed input: 4xx, never 500; a record, if any, keeps printable bounded text only."""
    response = client.get("/oidc/auth", params)
    assert response.status_code < 500
    for refusal in Refusal.objects.all():
        assert "\x00" not in stored(refusal) and len(refusal.client_id) <= 200


@pytest.mark.parametrize("data", [
    {"grant_type": "\x00\xff"},
    {"grant_type": "authorization_code", "code": "\x00", "client_id": "\x00"},
    {"grant_type": "refresh_token", "refresh_token": "x" * 5000},
    {},
])
def test_malformed_token_requests_never_give_a_server_error(client, web_app, data):
    response = client.post("/oidc/token", data, HTTP_AUTHORIZATION=basic_auth(web_app.client_id, web_app.plaintext_secret))
    assert response.status_code < 500
    for refusal in Refusal.objects.all():
        assert "\x00" not in stored(refusal)


def test_a_record_with_unexpected_contents_is_still_explained(db):
    """A record whose facts are not what the rule expects (an older version, a hand-made row)
    still renders, with "?" for what is missing."""
    refusal = Refusal.objects.create(endpoint="token", rule="grant_not_enabled", sent=["odd"], registered="odd")
    assert explained(refusal).fix == "Turn on — for this application."
    assert explained(Refusal.objects.create(endpoint="token", rule="no_such_rule", description="x")).fix == "Correct the request: x"


# -- where the admin reads them ------------------------------------------------------------------


def test_the_admin_shows_a_refusal_with_sent_beside_registered_the_fix_and_its_link(admin_client, client, web_app):
    authorize(client, web_app, redirect_uri="http://rp.example.com/callback")
    refusal = only_refusal()
    page = admin_client.get(reverse("admin:console_refusal_change", args=[refusal.pk]))
    assert page.status_code == 200
    body = page.content.decode()
    assert "redirect_uri_not_registered" in body and "scheme: http instead of https" in body
    assert "http://rp.example.com/callback" in body and "https://rp.example.com/callback" in body
    assert reverse("admin:oidc_provider_application_change", args=[web_app.pk]) + "#id_redirect_uris" in body
    listing = admin_client.get(reverse("admin:console_refusal_changelist"), {"rule": "redirect_uri_not_registered"})
    assert listing.status_code == 200 and web_app.client_id in listing.content.decode()
    searched = admin_client.get(reverse("admin:console_refusal_changelist"), {"q": web_app.client_id})
    assert searched.status_code == 200 and "redirect_uri_not_registered" in searched.content.decode()
    assert admin_client.post(reverse("admin:console_refusal_change", args=[refusal.pk]), {}).status_code == 403
    assert admin_client.get(reverse("admin:console_refusal_add")).status_code == 403


def test_the_application_page_shows_its_recent_refusals_and_links_to_the_filtered_list(admin_client, client, web_app):
    authorize(client, web_app, redirect_uri="https://rp.example.com/callback/")
    body = admin_client.get(reverse("admin:oidc_provider_application_change", args=[web_app.pk])).content.decode()
    assert 'id="console-refusals"' in body and "redirect_uri_not_registered" in body
    assert f"{reverse('admin:console_refusal_changelist')}?application__id__exact={web_app.pk}" in body
    filtered = admin_client.get(reverse("admin:console_refusal_changelist"), {"application__id__exact": web_app.pk})
    assert filtered.status_code == 200


def test_the_admin_speaks_chinese_too(admin_client, client, web_app):
    authorize(client, web_app, response_type="token")
    refusal = only_refusal()
    page = admin_client.get(reverse("admin:console_refusal_change", args=[refusal.pk]), HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert "授权策略禁止 web 类型的应用使用 implicit" in page.content.decode()


# -- the API and the CLI ------------------------------------------------------------------------


def test_the_api_gives_each_refusal_in_the_contracts_shape_to_an_auditor(client, web_app):
    client.post("/oidc/token", {"grant_type": "refresh_token", "refresh_token": "rt-value"},
                HTTP_AUTHORIZATION=basic_auth(web_app.client_id, "wrong-secret-value"))
    api = APIClient()
    api.force_login(make_auditor())
    response = api.get(API, {"client_id": web_app.client_id})
    assert response.status_code == 200
    item, = response.json()["results"]
    assert {"at", "client_id", "endpoint", "error", "rule", "sent", "registered", "fix"} <= set(item)
    assert (item["client_id"], item["endpoint"], item["error"], item["rule"]) == (
        web_app.client_id, "token", "invalid_client", "client_secret_wrong")
    assert item["sent"]["client_secret"] == "wrong" and item["fix"].startswith("Put the application's current client secret")
    assert api.get(f"{API}{item['id']}/").json()["rule"] == "client_secret_wrong"
    assert api.get(API, {"rule": "client_unknown"}).json()["count"] == 0
    assert api.get(API, {"since": "not a date"}).status_code == 400
    assert api.post(API, {}, format="json").status_code == 405
    assert_kept_nowhere("rt-value", "wrong-secret-value", web_app.plaintext_secret)


def test_the_api_refuses_a_staff_user_without_the_permission(client, web_app):
    authorize(client, web_app, redirect_uri="https://rp.example.com/callback/")
    api = APIClient()
    api.force_login(get_user_model().objects.create(username="staff-no-perms", is_staff=True))
    assert api.get(API).status_code == 403
    assert APIClient().get(API).status_code == 401


def test_oidc_explain_prints_the_applications_refusals_and_their_fixes(client, web_app):
    authorize(client, web_app, redirect_uri="https://rp.example.com/callback/")
    out = StringIO()
    call_command("oidc_explain", web_app.client_id, stdout=out)
    text = out.getvalue()
    sent_line = next(line for line in text.splitlines() if line.startswith("  sent:"))
    assert "rule: redirect_uri_not_registered" in text and "redirect_uri=https://rp.example.com/callback/" in sent_line
    assert "registered: redirect_uris=https://rp.example.com/callback" in text and "trailing slash" in text
    out = StringIO()
    call_command("oidc_explain", web_app.client_id, "--json", stdout=out)
    data = json.loads(out.getvalue())
    assert data["client_id"] == web_app.client_id
    item, = data["refusals"]
    assert {"at", "client_id", "endpoint", "error", "rule", "sent", "registered", "fix"} <= set(item)
    assert item["rule"] == "redirect_uri_not_registered"


def test_oidc_explain_says_so_when_nothing_was_refused(web_app):
    out = StringIO()
    call_command("oidc_explain", web_app.client_id, stdout=out)
    assert "No refused request" in out.getvalue()


@pytest.mark.parametrize("client_id", ["no-such-app", "\x00bad", ""])
def test_oidc_explain_refuses_an_unknown_client_id(db, client_id):
    with pytest.raises(CommandError, match="No application has client_id"):
        call_command("oidc_explain", client_id, stdout=StringIO())


def test_policy_change_is_explained_in_the_record_of_the_moment(logged_in, db):
    """The record keeps the policy as it stood when the request was refused."""
    app = ApplicationFactory(application_type=policy.SPA, grant_types=["authorization_code", "implicit"],
                             redirect_uris="https://spa.example.com/cb")
    set_policy(policy.SPA, policy.IMPLICIT, policy.FORBIDDEN)
    authorize(logged_in, app, response_type="token")
    refusal = only_refusal()
    assert refusal.rule == "grant_forbidden_by_policy"
    assert explained(refusal).fix.startswith("The policy forbids implicit for spa applications")


@pytest.mark.parametrize("value", ["7", -1, None, 1.5])
def test_a_bad_retention_setting_is_reported_and_refusals_are_still_answered(client, db, value):
    """``manage.py check`` names the setting; meanwhile the default holds and nothing fails."""
    from console.checks import check_refusal_limits

    with override_settings(CONSOLE_REFUSAL_RETENTION_DAYS=value):
        errors = check_refusal_limits(None)
        assert [e.id for e in errors] == ["console.E002"] and "CONSOLE_REFUSAL_RETENTION_DAYS" in errors[0].msg
        response = client.post("/oidc/token", {"grant_type": "client_credentials"}, HTTP_AUTHORIZATION=basic_auth("ghost", "x"))
        assert response.status_code == 401 and Refusal.objects.count() == 1


def test_oidc_explain_refuses_a_bad_limit(web_app):
    with pytest.raises(CommandError, match="--limit"):
        call_command("oidc_explain", web_app.client_id, "--limit", "0", stdout=StringIO())
