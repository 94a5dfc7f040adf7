"""The console's own admin pages, through HTTP: flow chooser, the page after creating, the policy
matrix, access accounts and key pairs, tokens and consents, the audit log and the dashboard."""

import csv
import io
import re
from datetime import timedelta

import pytest
from django.utils import timezone
from oauth2_provider.models import get_access_token_model, get_refresh_token_model

from console import audit
from console.models import AuditEvent, DailyTokenCount
from oidc_provider import policy, secrets
from oidc_provider.models import AccessAccount, AccessKey, Application, Consent, GrantPolicy

from .factories import ApplicationFactory, UserFactory
from .helpers import basic_auth, exchange, get_code

pytestmark = pytest.mark.django_db

APPS_URL = "/admin/oidc_provider/application/"
FLOW_URL = APPS_URL + "flow/"
MATRIX_URL = "/admin/oidc_provider/grantpolicy/matrix/"
ACCOUNTS_URL = "/admin/oidc_provider/accessaccount/"
KEYS_URL = "/admin/oidc_provider/accesskey/"
ISSUED_URL = KEYS_URL + "issued/"
AUDIT_URL = "/admin/console/auditevent/"
TOKENS_URL = "/admin/oauth2_provider/accesstoken/"
CONSENTS_URL = "/admin/oidc_provider/consent/"

SERVICE_ANSWERS = {"backend": "yes", "public_code": "no", "end_users": "no"}
WEB_ANSWERS = {"backend": "yes", "public_code": "no", "end_users": "yes", "own_both": "no"}
SPA_ANSWERS = {"backend": "no", "client_kind": "spa", "web_crypto": "yes"}
OLD_SPA_ANSWERS = {"backend": "no", "client_kind": "spa", "web_crypto": "no"}
NATIVE_OWN_ANSWERS = {"backend": "no", "client_kind": "native", "own_both": "yes"}


def pre(response, element_id):
    """The text of a copy field (<pre id=...>) on a page, unescaped; None when absent."""
    import html

    match = re.search(r'<pre id="%s"[^>]*>(.*?)</pre>' % re.escape(element_id), response.content.decode(), re.S)
    return html.unescape(match.group(1)) if match else None


def messages_of(response):
    return [str(m) for m in response.context["messages"]]


def events(action):
    return list(AuditEvent.objects.filter(action=action).order_by("id"))


# -- which flow do I need? ------------------------------------------------------------------


def test_flow_chooser_asks_one_question_after_another_without_script(admin_client):
    first = admin_client.get(FLOW_URL)
    assert first.status_code == 200
    content = first.content.decode()
    assert "Does it have a backend?" in content
    assert 'type="radio" name="backend"' in content
    assert "Is its code publicly accessible?" not in content
    assert "<script" not in content.split('id="content-main"')[1].split("</form>")[0]

    second = admin_client.get(FLOW_URL, {"backend": "yes"}).content.decode()
    assert "Is its code publicly accessible?" in second
    assert 'name="backend" value="yes" checked' in second

    third = admin_client.get(FLOW_URL, {"backend": "no"}).content.decode()
    assert "single-page application or a native application" in third

    spa = admin_client.get(FLOW_URL, {"backend": "no", "client_kind": "spa"}).content.decode()
    assert "Does the browser support Web Crypto?" in spa

    web = admin_client.get(FLOW_URL, {"backend": "yes", "public_code": "no"}).content.decode()
    assert "Are there end users?" in web
    own = admin_client.get(FLOW_URL, {"backend": "yes", "public_code": "no", "end_users": "yes"}).content.decode()
    assert "Do you own both the app and the resources?" in own


@pytest.mark.parametrize(
    "answers, type_label, grant",
    [
        (SERVICE_ANSWERS, "Service (machine to machine)", "client_credentials"),
        (WEB_ANSWERS, "Web application (with a backend)", "authorization_code"),
        (SPA_ANSWERS, "Single-page application", "authorization_code"),
        (OLD_SPA_ANSWERS, "Single-page application", "implicit"),
        (NATIVE_OWN_ANSWERS, "Native or mobile application", "authorization_code"),
    ],
)
def test_flow_chooser_answers_lead_to_the_right_type(admin_client, answers, type_label, grant):
    response = admin_client.get(FLOW_URL, answers)
    assert response.status_code == 200
    recommendation = response.context["recommendation"]
    assert str(dict(policy.APPLICATION_TYPE_CHOICES)[recommendation.application_type]) == type_label
    assert grant in recommendation.grants
    content = response.content.decode()
    assert f"Recommended: {type_label}" in content
    assert f"<code>{grant}</code>" in content
    # The reasons, the create form (CSRF) and the flow's picture.
    assert str(recommendation.reasons[0])[:40] in content.replace("&#x27;", "'")
    assert "csrfmiddlewaretoken" in content
    assert '<svg xmlns="http://www.w3.org/2000/svg" class="console-diagram"' in content


def test_flow_chooser_creates_a_service_app_and_shows_the_secret_once(admin_client, client):
    data = {**SERVICE_ANSWERS, "name": "Nightly billing job"}
    response = admin_client.post(FLOW_URL, data, follow=True)
    assert response.status_code == 200
    app = Application.objects.get(name="Nightly billing job")
    assert app.application_type == policy.SERVICE
    assert app.grant_types == [policy.CLIENT_CREDENTIALS]
    assert response.redirect_chain[-1][0] == f"{APPS_URL}{app.pk}/credentials/"

    secret = pre(response, "client-secret")
    assert secret and secrets.verify(secret, app.client_secret)
    assert pre(response, "client-id") == app.client_id
    assert pre(response, "issuer") == "http://127.0.0.1:8000/oidc"
    assert pre(response, "discovery-url") == "http://127.0.0.1:8000/oidc/.well-known/openid-configuration"
    curl = pre(response, "snippet-client_credentials")
    assert curl == f"curl -u {app.client_id}:{secret} -d grant_type=client_credentials -d scope=read http://127.0.0.1:8000/oidc/token"

    # The snippet works as printed.
    token = client.post(
        "/oidc/token", {"grant_type": "client_credentials", "scope": "read"}, HTTP_AUTHORIZATION=basic_auth(app.client_id, secret)
    )
    assert token.status_code == 200, token.content

    # Shown once: a reload has no secret, and says what to do.
    again = admin_client.get(f"{APPS_URL}{app.pk}/credentials/")
    assert again.status_code == 200
    assert secret not in again.content.decode()
    assert pre(again, "client-secret") is None
    assert "no longer shown; regenerate it if lost" in again.content.decode()
    assert "&lt;CLIENT_SECRET&gt;" in again.content.decode()
    assert "http://127.0.0.1:8000/oidc/.well-known/openid-configuration" in again.content.decode()

    created = events(audit.APPLICATION_CREATED)
    assert len(created) == 1 and created[0].target_id == str(app.pk) and created[0].details["application_type"] == "service"
    assert secret not in str(created[0].details)


def test_flow_chooser_creates_an_spa_with_pkce_snippets_and_no_secret(admin_client):
    data = {**SPA_ANSWERS, "name": "Shop front", "redirect_uris": "https://shop.example.com/cb"}
    response = admin_client.post(FLOW_URL, data, follow=True)
    app = Application.objects.get(name="Shop front")
    assert app.application_type == policy.SPA and app.grant_types == [policy.AUTHORIZATION_CODE]
    assert app.client_secret == ""
    assert pre(response, "client-secret") is None
    url = pre(response, "snippet-authorize_url")
    assert url.startswith("http://127.0.0.1:8000/oidc/auth?response_type=code&client_id=" + app.client_id)
    assert "code_challenge=<CODE_CHALLENGE>&code_challenge_method=S256" in url
    assert "redirect_uri=https://shop.example.com/cb" in url
    token_call = pre(response, "snippet-token_curl")
    assert "grant_type=authorization_code" in token_call and "code_verifier=$CODE_VERIFIER" in token_call
    assert f"client_id={app.client_id}" in token_call


def test_flow_chooser_offers_password_when_you_own_both(admin_client):
    page = admin_client.get(FLOW_URL, NATIVE_OWN_ANSWERS).content.decode()
    assert 'name="extra_grants" value="password"' in page
    data = {**NATIVE_OWN_ANSWERS, "name": "Phone app", "redirect_uris": "com.example.app:/cb", "extra_grants": ["password"]}
    response = admin_client.post(FLOW_URL, data)
    assert response.status_code == 302
    app = Application.objects.get(name="Phone app")
    assert app.application_type == policy.NATIVE
    assert app.grant_types == [policy.AUTHORIZATION_CODE, policy.REFRESH_TOKEN, policy.PASSWORD]


def test_flow_chooser_refuses_bad_redirect_uris_and_creates_nothing(admin_client):
    data = {**WEB_ANSWERS, "name": "Billing", "redirect_uris": "http://billing.example.com/cb"}
    response = admin_client.post(FLOW_URL, data)
    assert response.status_code == 400
    assert "non-loopback" in " ".join(response.context["create_form"].errors["redirect_uris"])
    assert not Application.objects.filter(name="Billing").exists()

    missing = admin_client.post(FLOW_URL, {**WEB_ANSWERS, "name": "Billing"})
    assert missing.status_code == 400 and "redirect_uris" in missing.context["create_form"].errors


def test_flow_chooser_says_when_the_policy_forbids_the_answer(admin_client):
    GrantPolicy.objects.filter(application_type=policy.SPA, grant=policy.IMPLICIT).update(state=policy.FORBIDDEN)
    page = admin_client.get(FLOW_URL, OLD_SPA_ANSWERS).content.decode()
    assert "The grant policy currently forbids implicit" in page
    response = admin_client.post(FLOW_URL, {**OLD_SPA_ANSWERS, "name": "Old", "redirect_uris": "https://old.example.com/cb"})
    assert response.status_code == 400
    assert "forbidden" in " ".join(response.context["create_form"].non_field_errors())
    assert not Application.objects.filter(name="Old").exists()


def test_flow_chooser_post_with_incomplete_answers_creates_nothing(admin_client):
    response = admin_client.post(FLOW_URL, {"backend": "yes", "name": "Half"})
    assert response.status_code == 400
    assert not Application.objects.filter(name="Half").exists()


def test_flow_chooser_is_linked_from_the_list_and_the_index(admin_client):
    assert FLOW_URL in admin_client.get(APPS_URL).content.decode()
    assert FLOW_URL in admin_client.get("/admin/").content.decode()
    assert FLOW_URL in admin_client.get(APPS_URL + "add/").content.decode()


# -- application pages: diagrams, regenerate, revoke ------------------------------------------


def test_application_change_page_draws_its_flows(admin_client, web_app, spa_app):
    page = admin_client.get(f"{APPS_URL}{web_app.pk}/change/").content.decode()
    assert page.count('class="console-diagram"') == 2  # authorization code + refresh token
    assert "Authorization code (web application with a backend)" in page
    assert "Refresh token" in page
    spa_page = admin_client.get(f"{APPS_URL}{spa_app.pk}/change/").content.decode()
    assert "Authorization code with PKCE (single-page application)" in spa_page
    assert "code_challenge" in spa_page


def test_regenerate_secret_button_shows_the_new_secret_once_and_the_old_stops_working(admin_client, client, web_app):
    old = web_app.plaintext_secret
    url = f"{APPS_URL}{web_app.pk}/regenerate-secret/"
    confirm = admin_client.get(url)
    assert confirm.status_code == 200 and "stops working" in confirm.content.decode()
    web_app.refresh_from_db()
    assert secrets.verify(old, web_app.client_secret)  # GET changed nothing

    response = admin_client.post(url, follow=True)
    new = pre(response, "client-secret")
    web_app.refresh_from_db()
    assert new and secrets.verify(new, web_app.client_secret) and not secrets.verify(old, web_app.client_secret)
    assert pre(admin_client.get(f"{APPS_URL}{web_app.pk}/credentials/"), "client-secret") is None
    assert len(events(audit.APPLICATION_SECRET_REGENERATED)) == 1


def test_application_admin_records_create_change_delete(admin_client, web_app):
    data = {
        "name": "Renamed",
        "description": "",
        "application_type": policy.WEB,
        "grant_types": web_app.grant_types,
        "redirect_uris": web_app.redirect_uris,
        "post_logout_redirect_uris": "",
        "allowed_origins": "",
    }
    assert admin_client.post(f"{APPS_URL}{web_app.pk}/change/", data).status_code == 302
    changed = events(audit.APPLICATION_CHANGED)
    assert len(changed) == 1 and "name" in changed[0].details["fields"]
    assert admin_client.post(f"{APPS_URL}{web_app.pk}/delete/", {"post": "yes"}).status_code == 302
    deleted = events(audit.APPLICATION_DELETED)
    assert len(deleted) == 1 and deleted[0].details["client_id"] == web_app.client_id


# -- the policy matrix ---------------------------------------------------------------------------


def matrix_data(changes=(), **extra):
    """Every cell as the page shows it, with ``changes`` [(type, grant, state)] applied."""
    current = policy.current_policy()
    data = {}
    for (t, g), state in current.items():
        data[f"{t}__{g}"] = state
        data[f"was__{t}__{g}"] = state
    for t, g, state in changes:
        data[f"{t}__{g}"] = state
    data.update(extra)
    return data


def state(t, g):
    return GrantPolicy.objects.get(application_type=t, grant=g).state


def test_matrix_page_has_a_select_per_cell(admin_client):
    response = admin_client.get(MATRIX_URL)
    assert response.status_code == 200
    content = response.content.decode()
    assert content.count("<select name=") == len(policy.GRANTS) * len(policy.APPLICATION_TYPES)
    assert 'name="csrfmiddlewaretoken"' in content
    assert MATRIX_URL in admin_client.get("/admin/oidc_provider/grantpolicy/").content.decode()
    assert MATRIX_URL in admin_client.get("/admin/").content.decode()


def test_matrix_saves_several_cells_in_one_post_and_records_each(admin_client):
    changes = [
        (policy.WEB, policy.HYBRID, policy.RECOMMENDED),
        (policy.NATIVE, policy.PASSWORD, policy.FORBIDDEN),
        (policy.SERVICE, policy.REFRESH_TOKEN, policy.ALLOWED),
    ]
    response = admin_client.post(MATRIX_URL, matrix_data(changes))
    assert response.status_code == 302
    for t, g, s in changes:
        assert state(t, g) == s
        assert policy.state_of(t, g) == s
    recorded = events(audit.POLICY_CHANGED)
    assert len(recorded) == 3
    assert {(e.details["application_type"], e.details["grant"], e.details["state"], e.details["previous"]) for e in recorded} == {
        (policy.WEB, policy.HYBRID, policy.RECOMMENDED, policy.ALLOWED),
        (policy.NATIVE, policy.PASSWORD, policy.FORBIDDEN, policy.ALLOWED),
        (policy.SERVICE, policy.REFRESH_TOKEN, policy.ALLOWED, policy.FORBIDDEN),
    }
    assert all(e.actor_label == "admin" for e in recorded)


def test_forbidding_a_held_grant_asks_first_and_applies_only_on_confirm(admin_client):
    legacy = ApplicationFactory(name="Legacy SPA", application_type=policy.SPA, grant_types=[policy.IMPLICIT])
    changes = [(policy.SPA, policy.IMPLICIT, policy.FORBIDDEN), (policy.WEB, policy.HYBRID, policy.FORBIDDEN)]
    response = admin_client.post(MATRIX_URL, matrix_data(changes))
    assert response.status_code == 200
    content = response.content.decode()
    assert "Legacy SPA" in content and legacy.client_id in content
    assert 'name="confirm"' in content
    # Nothing changed yet.
    assert state(policy.SPA, policy.IMPLICIT) == policy.ALLOWED
    assert state(policy.WEB, policy.HYBRID) == policy.ALLOWED
    assert not events(audit.POLICY_CHANGED)

    hidden = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', content))
    assert hidden["confirm"] == "1" and hidden["spa__implicit"] == policy.FORBIDDEN
    confirmed = admin_client.post(MATRIX_URL, hidden)
    assert confirmed.status_code == 302
    assert state(policy.SPA, policy.IMPLICIT) == policy.FORBIDDEN
    assert state(policy.WEB, policy.HYBRID) == policy.FORBIDDEN
    assert len(events(audit.POLICY_CHANGED)) == 2


def test_matrix_applies_only_the_cells_changed_on_the_page(admin_client):
    data = matrix_data([(policy.WEB, policy.HYBRID, policy.RECOMMENDED)])
    # Meanwhile another admin changed a different cell.
    GrantPolicy.objects.filter(application_type=policy.NATIVE, grant=policy.PASSWORD).update(state=policy.FORBIDDEN)
    assert admin_client.post(MATRIX_URL, data).status_code == 302
    assert state(policy.WEB, policy.HYBRID) == policy.RECOMMENDED
    assert state(policy.NATIVE, policy.PASSWORD) == policy.FORBIDDEN


def test_matrix_refuses_unknown_states(admin_client):
    data = matrix_data([(policy.WEB, policy.HYBRID, "sometimes")])
    response = admin_client.post(MATRIX_URL, data)
    assert response.status_code == 400
    assert "sometimes" in response.content.decode()
    assert state(policy.WEB, policy.HYBRID) == policy.ALLOWED


def test_matrix_post_without_csrf_is_refused(admin_user):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    response = client.post(MATRIX_URL, matrix_data([(policy.WEB, policy.HYBRID, policy.FORBIDDEN)]))
    assert response.status_code == 403
    assert state(policy.WEB, policy.HYBRID) == policy.ALLOWED


# -- programmatic access accounts --------------------------------------------------------------


def account_data(**overrides):
    data = {
        "name": "billing-sync",
        "description": "Nightly sync",
        "scopes": ["read"],
        "is_active": "on",
        "issue_key": "on",
        "keys-TOTAL_FORMS": "0",
        "keys-INITIAL_FORMS": "0",
        "keys-MIN_NUM_FORMS": "0",
        "keys-MAX_NUM_FORMS": "0",
        "_save": "Save",
    }
    data.update(overrides)
    return data


def cc_token(client, ak, sk, scope="read"):
    return client.post(
        "/oidc/token", {"grant_type": "client_credentials", "scope": scope}, HTTP_AUTHORIZATION=basic_auth(ak, sk)
    )


def test_an_access_accounts_application_is_not_listed_or_editable_as_an_application(admin_client, web_app):
    """It is managed on the account's page; the application list and the dashboard agree."""
    admin_client.post(ACCOUNTS_URL + "add/", account_data())
    backing = AccessAccount.objects.get(name="billing-sync").application

    listing = admin_client.get(APPS_URL)
    assert [app.pk for app in listing.context["cl"].result_list] == [web_app.pk]
    for suffix in ("change/", "delete/", "regenerate-secret/", "credentials/"):
        assert admin_client.get(f"{APPS_URL}{backing.pk}/{suffix}").status_code in (302, 404)
    assert Application.objects.filter(pk=backing.pk).exists()


def test_add_page_offers_resource_scopes_only(admin_client):
    form = admin_client.get(ACCOUNTS_URL + "add/").context["adminform"].form
    offered = [value for value, _label in form.fields["scopes"].choices]
    assert offered == ["read", "write"]


def test_account_create_issues_a_pair_shown_once_that_works_until_revoked(admin_client, client):
    response = admin_client.post(ACCOUNTS_URL + "add/", account_data(), follow=True)
    assert response.status_code == 200
    account = AccessAccount.objects.get(name="billing-sync")
    assert account.scopes == ["read"] and account.is_active
    key = AccessKey.objects.get(account=account)
    assert response.redirect_chain[-1][0] == ISSUED_URL

    ak = pre(response, f"ak-{key.access_key}")
    sk = pre(response, f"sk-{key.access_key}")
    assert ak == key.access_key and sk and secrets.verify(sk, key.secret_key)
    curl = pre(response, f"curl-{key.access_key}")
    assert curl == f"curl -u {ak}:{sk} -d grant_type=client_credentials -d scope=read http://127.0.0.1:8000/oidc/token"
    assert 'data-copy-target="sk-' in response.content.decode() and "console/copy.js" in response.content.decode()

    # Shown once.
    again = admin_client.get(ISSUED_URL).content.decode()
    assert sk not in again and "no longer shown" in again

    # The pair works at the token endpoint, within its permissions.
    token = cc_token(client, ak, sk)
    assert token.status_code == 200, token.content
    assert cc_token(client, ak, sk, scope="write").json()["error"] == "invalid_scope"
    key.refresh_from_db()
    assert key.last_used_at is not None
    listing = admin_client.get(f"{ACCOUNTS_URL}{account.pk}/change/").content.decode()
    assert key.access_key in listing and sk not in listing

    # Revoke (confirm page, then POST): the pair gets 401.
    revoke_url = f"{KEYS_URL}{key.pk}/revoke/"
    assert revoke_url in listing
    assert admin_client.get(revoke_url).status_code == 200
    assert admin_client.post(revoke_url).status_code == 302
    key.refresh_from_db()
    assert key.revoked_at is not None
    refused = cc_token(client, ak, sk)
    assert refused.status_code == 401 and refused.json()["error"] == "invalid_client"

    for action in (audit.ACCESS_ACCOUNT_CREATED, audit.ACCESS_KEY_ISSUED, audit.ACCESS_KEY_REVOKED):
        assert len(events(action)) == 1, action
    assert not AuditEvent.objects.filter(details__icontains=sk).exists()
    assert all(sk not in str(e.details) and sk not in e.target_label for e in AuditEvent.objects.all())


def test_account_scopes_are_validated(admin_client):
    response = admin_client.post(ACCOUNTS_URL + "add/", account_data(scopes=["openid"]))
    assert response.status_code == 200
    assert "scopes" in response.context["adminform"].form.errors
    assert not AccessAccount.objects.exists()


def test_issue_button_and_rotate_keep_other_pairs(admin_client, client):
    admin_client.post(ACCOUNTS_URL + "add/", account_data(issue_key="", scopes=["read", "write"]))
    account = AccessAccount.objects.get(name="billing-sync")
    assert not account.keys.exists()
    change = admin_client.get(f"{ACCOUNTS_URL}{account.pk}/change/").content.decode()
    issue_url = f"{ACCOUNTS_URL}{account.pk}/issue-key/"
    assert f'action="{issue_url}"' in change
    assert admin_client.get(issue_url).status_code == 405

    first = admin_client.post(issue_url, follow=True)
    second = admin_client.post(issue_url, follow=True)
    k1, k2 = AccessKey.objects.filter(account=account).order_by("created_at", "id")
    sk1, sk2 = pre(first, f"sk-{k1.access_key}"), pre(second, f"sk-{k2.access_key}")

    rotated = admin_client.post(f"{KEYS_URL}{k1.pk}/rotate/", follow=True)
    k3 = AccessKey.objects.filter(account=account).exclude(pk__in=[k1.pk, k2.pk]).get()
    sk3 = pre(rotated, f"sk-{k3.access_key}")
    assert cc_token(client, k1.access_key, sk1).status_code == 401
    assert cc_token(client, k2.access_key, sk2).status_code == 200
    assert cc_token(client, k3.access_key, sk3, scope="read write").status_code == 200
    rotation = events(audit.ACCESS_KEY_ROTATED)
    assert len(rotation) == 1 and rotation[0].details["previous"] == k1.access_key
    assert len(events(audit.ACCESS_KEY_ISSUED)) == 2


def test_deactivating_an_account_is_recorded(admin_client):
    admin_client.post(ACCOUNTS_URL + "add/", account_data(issue_key=""))
    account = AccessAccount.objects.get()
    data = account_data(is_active="", issue_key="")
    del data["is_active"]
    assert admin_client.post(f"{ACCOUNTS_URL}{account.pk}/change/", data).status_code == 302
    account.refresh_from_db()
    assert not account.is_active
    changed = events(audit.ACCESS_ACCOUNT_CHANGED)
    assert len(changed) == 1 and changed[0].details["is_active"] is False


def test_key_pairs_cannot_be_typed_in_or_deleted(admin_client):
    assert admin_client.get(KEYS_URL + "add/").status_code == 403
    assert admin_client.get(KEYS_URL).status_code == 200


# -- tokens and consents -------------------------------------------------------------------------


def user_tokens(admin_client, web_app):
    """A real access token for the admin (as an end user) of web_app, through the code flow."""
    code = get_code(admin_client, web_app)["code"]
    response = exchange(admin_client, web_app, code, secret=web_app.plaintext_secret)
    assert response.status_code == 200, response.content
    return response.json()


def test_revoke_action_makes_userinfo_refuse_the_token(admin_client, client, web_app):
    tokens = user_tokens(admin_client, web_app)
    bearer = {"HTTP_AUTHORIZATION": f"Bearer {tokens['access_token']}"}
    assert client.get("/oidc/me", **bearer).status_code == 200

    listing = admin_client.get(TOKENS_URL, {"application__id__exact": web_app.pk})
    assert listing.status_code == 200
    assert tokens["access_token"] not in listing.content.decode()  # masked
    row = get_access_token_model().objects.get(application=web_app)
    response = admin_client.post(TOKENS_URL, {"action": "revoke_tokens", "_selected_action": [row.pk]}, follow=True)
    assert response.status_code == 200
    assert client.get("/oidc/me", **bearer).status_code == 401
    # Its refresh token went with it.
    refresh = client.post(
        "/oidc/token",
        {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        HTTP_AUTHORIZATION=basic_auth(web_app.client_id, web_app.plaintext_secret),
    )
    assert refresh.status_code == 400
    assert len(events(audit.TOKENS_REVOKED)) == 1


def test_revoke_all_of_a_user(admin_client, client, web_app, admin_user):
    tokens = user_tokens(admin_client, web_app)
    other_app = ApplicationFactory()
    other = user_tokens(admin_client, other_app)
    row = get_access_token_model().objects.filter(application=web_app).first()
    admin_client.post(TOKENS_URL, {"action": "revoke_all_of_users", "_selected_action": [row.pk]})
    for t in (tokens, other):
        assert client.get("/oidc/me", HTTP_AUTHORIZATION=f"Bearer {t['access_token']}").status_code == 401
    assert not get_refresh_token_model().objects.filter(user=admin_user, revoked__isnull=True).exists()
    event = events(audit.TOKENS_REVOKED)[0]
    assert event.details["scope"] == "user" and event.target_label == admin_user.get_username()


def test_revoke_all_button_on_the_application_page(admin_client, client, web_app):
    tokens = user_tokens(admin_client, web_app)
    page = admin_client.get(f"{APPS_URL}{web_app.pk}/change/").content.decode()
    url = f"{APPS_URL}{web_app.pk}/revoke-tokens/"
    assert url in page and "Live access tokens: 1" in page
    assert admin_client.get(url).status_code == 200
    assert client.get("/oidc/me", HTTP_AUTHORIZATION=f"Bearer {tokens['access_token']}").status_code == 200
    admin_client.post(url, {"forget_consents": "1"})
    assert client.get("/oidc/me", HTTP_AUTHORIZATION=f"Bearer {tokens['access_token']}").status_code == 401
    assert not Consent.objects.filter(application=web_app).exists()
    (revoked,) = events(audit.TOKENS_REVOKED)  # one operation, one event: the consents in it
    assert revoked.target_id == str(web_app.pk) and revoked.details["consents"] == 1
    assert not events(audit.CONSENT_REVOKED)


def test_consent_revoke_action(admin_client, client, web_app, admin_user):
    tokens = user_tokens(admin_client, web_app)
    consent = Consent.objects.get(user=admin_user, application=web_app)
    listing = admin_client.get(CONSENTS_URL, {"user__id__exact": admin_user.pk})
    assert listing.status_code == 200 and web_app.name in listing.content.decode()
    admin_client.post(CONSENTS_URL, {"action": "revoke_consents", "_selected_action": [consent.pk]})
    assert not Consent.objects.filter(pk=consent.pk).exists()
    assert client.get("/oidc/me", HTTP_AUTHORIZATION=f"Bearer {tokens['access_token']}").status_code == 401
    assert len(events(audit.CONSENT_REVOKED)) == 1


# -- the audit log -------------------------------------------------------------------------------


def test_audit_log_is_read_only(admin_client):
    event = audit.record(audit.LOGIN_FAILED, actor_label="mallory")
    listing = admin_client.get(AUDIT_URL)
    assert listing.status_code == 200
    content = listing.content.decode()
    assert "mallory" in content and "login.failed" in content
    assert AUDIT_URL + "add/" not in content
    assert admin_client.get(AUDIT_URL + "add/").status_code == 403
    detail = admin_client.get(f"{AUDIT_URL}{event.pk}/change/")
    assert detail.status_code == 200 and 'name="_save"' not in detail.content.decode()
    assert admin_client.post(f"{AUDIT_URL}{event.pk}/change/", {"actor_label": "x"}).status_code == 403
    assert admin_client.post(f"{AUDIT_URL}{event.pk}/delete/", {"post": "yes"}).status_code == 403
    actions = [name for name, _label in listing.context["action_form"].fields["action"].choices]
    assert "delete_selected" not in actions
    assert AuditEvent.objects.filter(pk=event.pk, actor_label="mallory").exists()


def test_audit_filters_and_csv_export_of_the_filtered_list(admin_client):
    audit.record(audit.LOGIN_FAILED, actor_label="=cmd|calc")
    audit.record(audit.POLICY_CHANGED, actor_label="admin", grant="hybrid")
    filtered = admin_client.get(AUDIT_URL, {"action__exact": audit.LOGIN_FAILED})
    assert filtered.context["cl"].result_count == 1
    assert "/admin/console/auditevent/export/?action__exact=login.failed" in filtered.content.decode()
    assert admin_client.get(AUDIT_URL, {"q": "cmd"}).context["cl"].result_count == 1

    response = admin_client.get(AUDIT_URL + "export/", {"action__exact": audit.LOGIN_FAILED})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == ["occurred_at", "actor_label", "action", "target_type", "target_id", "target_label", "ip_address", "request_id",
                       "details"]
    assert len(rows) == 2 and rows[1][2] == "login.failed"
    # Spreadsheets must not run it as a formula.
    assert rows[1][1] == "'=cmd|calc"

    everything = list(csv.reader(io.StringIO(admin_client.get(AUDIT_URL + "export/").content.decode())))
    assert len(everything) == 3


def test_an_audit_events_page_names_the_actor_once_and_its_user_account_apart(admin_client, admin_user):
    event = audit.record(audit.LOGIN_FAILED, actor=admin_user)

    content = admin_client.get(f"{AUDIT_URL}{event.pk}/change/").content.decode()

    assert content.count(">Actor:<") == 1 and ">User account:<" in content


def test_the_audit_log_names_actions_in_words_in_both_languages(admin_client):
    """A new admin reads "Sign-in failed", not login.failed (the code stays beside it, for the API)."""
    audit.record(audit.LOGIN_FAILED, actor_label="eve")

    english = admin_client.get(AUDIT_URL).content.decode()
    chinese = admin_client.get(AUDIT_URL, HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()

    assert "Sign-in failed" in english and "登录失败" in chinese
    assert all(label for label in audit.ACTION_LABELS.values())
    assert {value for name, value in vars(audit).items() if name.isupper() and isinstance(value, str) and "." in value} <= set(audit.ACTION_LABELS)


def test_audit_export_action(admin_client):
    event = audit.record(audit.LOGIN_FAILED, actor_label="eve")
    response = admin_client.post(AUDIT_URL, {"action": "export_csv", "_selected_action": [event.pk]})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert "eve" in response.content.decode()


# -- the dashboard ---------------------------------------------------------------------------------


def test_every_state_select_of_the_policy_list_has_an_accessible_name(admin_client):
    """WCAG 4.1.2: each of the 24 selects says which cell it sets."""
    content = admin_client.get("/admin/oidc_provider/grantpolicy/").content.decode()

    selects = re.findall(r"<select [^>]*name=\"form-\d+-state\"[^>]*>", content)
    assert len(selects) == 24
    assert all('aria-label="Policy for ' in select for select in selects)
    assert 'aria-label="Policy for Single-page application: Implicit"' in content


def test_dashboard_renders_charts_with_no_data(admin_client):
    response = admin_client.get("/admin/")
    assert response.status_code == 200
    content = response.content.decode()
    assert content.count('<svg xmlns="http://www.w3.org/2000/svg" class="console-chart"') == 2
    assert "No tokens issued in the last 14 days" in content
    assert "No failed logins in the last 14 days" in content
    assert "Applications" in content and "Access accounts" in content and "Active signing keys" in content
    # The usual app list is still there.
    assert "/admin/oidc_provider/application/" in content


@pytest.mark.parametrize("pairs, english, chinese", [(1, "1 active key pair<", "1 个有效密钥对"), (2, "2 active key pairs", "2 个有效密钥对")])
def test_the_dashboard_counts_key_pairs_in_the_right_number(admin_client, pairs, english, chinese):
    admin_client.post(ACCOUNTS_URL + "add/", account_data())
    if pairs == 2:
        admin_client.post(ACCOUNTS_URL + "add/", account_data(name="reports"))

    assert english in admin_client.get("/admin/").content.decode()
    assert chinese in admin_client.get("/admin/", HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()


def test_dashboard_charts_tokens_and_failed_logins(admin_client, web_app):
    today = timezone.localdate()
    DailyTokenCount.objects.create(day=today, grant="authorization_code", count=7)
    DailyTokenCount.objects.create(day=today - timedelta(days=3), grant="client_credentials", count=4)
    DailyTokenCount.objects.create(day=today - timedelta(days=30), grant="password", count=99)  # too old
    audit.record(audit.LOGIN_FAILED, actor_label="x")
    audit.record(audit.LOGIN_FAILED, actor_label="y")
    content = admin_client.get("/admin/").content.decode()
    assert "<svg" in content
    assert "No tokens issued" not in content and "No failed logins" not in content
    assert "Authorization code (7)" in content and "Client credentials (4)" in content
    assert "Resource owner password" not in content.split("console-charts")[1].split("</section>")[0]
    assert "Failed logins (2)" in content
    assert '<span class="value">1</span><span class="label">Applications</span>' in content


def test_real_failed_logins_and_tokens_show_on_the_dashboard(admin_client, client, web_app, django_capture_on_commit_callbacks):
    UserFactory(username="carol")
    client.post("/accounts/login/", {"username": "carol", "password": "wrong"})
    # A token is counted once its transaction commits (the test's never does).
    with django_capture_on_commit_callbacks(execute=True):
        user_tokens(admin_client, web_app)
    content = admin_client.get("/admin/").content.decode()
    assert "Failed logins (1)" in content
    assert "Authorization code (1)" in content


# -- access ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [FLOW_URL, MATRIX_URL, ACCOUNTS_URL, ISSUED_URL, AUDIT_URL, AUDIT_URL + "export/", TOKENS_URL, CONSENTS_URL],
)
def test_non_staff_users_are_sent_to_the_admin_login(logged_in, url):
    response = logged_in.get(url)
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")


def test_non_staff_users_cannot_post_to_console_pages(logged_in, web_app):
    assert logged_in.post(MATRIX_URL, matrix_data([(policy.WEB, policy.HYBRID, policy.FORBIDDEN)])).status_code == 302
    assert state(policy.WEB, policy.HYBRID) == policy.ALLOWED
    assert logged_in.post(FLOW_URL, {**SERVICE_ANSWERS, "name": "x"}).status_code == 302
    assert not Application.objects.filter(name="x").exists()
    assert logged_in.post(f"{APPS_URL}{web_app.pk}/regenerate-secret/").status_code == 302
