"""The admin console (/admin/): applications, grant policy and signing keys, through HTTP."""

import re

import pytest

from console import audit
from console.models import AuditEvent
from oidc_provider import keys, policy, secrets
from oidc_provider.models import Application, GrantPolicy, SigningKey

from .factories import ApplicationFactory

pytestmark = pytest.mark.django_db

ADD_URL = "/admin/oidc_provider/application/add/"
APPS_URL = "/admin/oidc_provider/application/"
POLICY_URL = "/admin/oidc_provider/grantpolicy/"
KEYS_URL = "/admin/oidc_provider/signingkey/"


def app_data(**overrides):
    data = {
        "name": "Billing",
        "description": "",
        "application_type": policy.WEB,
        "grant_types": [policy.AUTHORIZATION_CODE, policy.REFRESH_TOKEN],
        "redirect_uris": "https://billing.example.com/callback",
        "post_logout_redirect_uris": "",
        "allowed_origins": "",
        "_save": "Save",
    }
    data.update(overrides)
    return data


def messages_of(response):
    return [str(m) for m in response.context["messages"]]


def form_errors(response):
    return response.context["adminform"].form.errors


# -- applications ---------------------------------------------------------------------


def shown_secret(response):
    """The client secret on the page shown after creating (its copy field), or None."""
    match = re.search(r'<pre id="client-secret"[^>]*>([^<]+)</pre>', response.content.decode())
    return match.group(1) if match else None


def test_add_web_application_shows_secret_once(admin_client):
    response = admin_client.post(ADD_URL, app_data(), follow=True)

    assert response.status_code == 200
    app = Application.objects.get(name="Billing")
    assert response.redirect_chain[-1][0] == f"{APPS_URL}{app.pk}/credentials/"
    assert app.application_type == policy.WEB
    assert app.grant_types == [policy.AUTHORIZATION_CODE, policy.REFRESH_TOKEN]
    assert app.redirect_uris == "https://billing.example.com/callback"
    assert app.client_type == Application.CLIENT_CONFIDENTIAL

    secret = shown_secret(response)
    assert secret
    assert app.client_id in response.content.decode()
    # Not in a message: messages outlive the page in the session.
    assert not any(secret in m for m in messages_of(response))

    assert secrets.is_digest(app.client_secret)
    assert secret not in app.client_secret
    assert secrets.verify(secret, app.client_secret)

    # Never again: not on a reload, not on the change page, not in the list.
    reload = admin_client.get(f"{APPS_URL}{app.pk}/credentials/").content.decode()
    assert secret not in reload
    assert "no longer shown; regenerate it if lost" in reload
    page = admin_client.get(f"{APPS_URL}{app.pk}/change/").content.decode()
    assert secret not in page
    assert app.client_secret not in page
    assert app.client_id in page
    assert secret not in admin_client.get(APPS_URL).content.decode()


def test_add_form_has_no_secret_field_and_client_id_is_read_only(admin_client, web_app):
    add_page = admin_client.get(ADD_URL)
    assert 'name="client_secret"' not in add_page.content.decode()
    assert "client_secret" not in add_page.context["adminform"].form.fields

    change = admin_client.get(f"{APPS_URL}{web_app.pk}/change/")
    fields = change.context["adminform"].form.fields
    assert "client_secret" not in fields and "client_id" not in fields
    assert web_app.client_id in change.content.decode()

    # A client_id posted anyway is ignored.
    data = app_data(name=web_app.name, client_id="chosen-by-attacker", client_secret="chosen-secret")
    response = admin_client.post(f"{APPS_URL}{web_app.pk}/change/", data)
    assert response.status_code == 302, form_errors(response)
    stored = Application.objects.get(pk=web_app.pk)
    assert stored.client_id == web_app.client_id
    assert stored.client_secret == web_app.client_secret


def test_uris_one_a_line_are_stored_space_separated(admin_client):
    uris = "https://a.example.com/cb\r\nhttps://b.example.com/cb\n"
    response = admin_client.post(ADD_URL, app_data(redirect_uris=uris, allowed_origins="https://a.example.com"))
    assert response.status_code == 302, form_errors(response)
    app = Application.objects.get(name="Billing")
    assert app.redirect_uris == "https://a.example.com/cb https://b.example.com/cb"
    assert app.allowed_origins == "https://a.example.com"


def test_spa_with_client_credentials_is_refused(admin_client):
    data = app_data(
        name="Shop front",
        application_type=policy.SPA,
        grant_types=[policy.AUTHORIZATION_CODE, policy.CLIENT_CREDENTIALS],
        redirect_uris="https://shop.example.com/cb",
    )
    response = admin_client.post(ADD_URL, data)

    assert response.status_code == 200
    errors = form_errors(response)
    assert "grant_types" in errors
    text = " ".join(errors["grant_types"])
    assert "client_credentials" in text and "forbidden" in text
    assert "client_credentials" in response.content.decode()
    assert not Application.objects.filter(name="Shop front").exists()


def test_forbidden_grants_are_listed_but_marked(admin_client):
    response = admin_client.get(ADD_URL)
    field = response.context["adminform"].form.fields["grant_types"]
    labels = dict(field.choices)
    assert set(labels) == set(policy.GRANTS)
    # For the default type (web), implicit is forbidden.
    assert "forbidden" in str(labels[policy.IMPLICIT])
    assert "recommended" in str(labels[policy.AUTHORIZATION_CODE])


def test_new_application_without_grants_gets_its_types_recommended(admin_client):
    data = app_data(name="Robot", application_type=policy.SERVICE, redirect_uris="")
    del data["grant_types"]
    response = admin_client.post(ADD_URL, data)
    assert response.status_code == 302, form_errors(response)
    app = Application.objects.get(name="Robot")
    assert app.grant_types == policy.recommended_grants(policy.SERVICE) == [policy.CLIENT_CREDENTIALS]


def test_add_page_ticks_web_recommended_grants(admin_client):
    form = admin_client.get(ADD_URL).context["adminform"].form
    assert form["grant_types"].value() == policy.recommended_grants(policy.WEB)
    assert form["application_type"].value() == policy.WEB


def test_http_redirect_uri_on_public_host_is_refused(admin_client):
    response = admin_client.post(ADD_URL, app_data(redirect_uris="http://billing.example.com/callback"))
    assert response.status_code == 200
    assert "redirect_uris" in form_errors(response)
    assert "non-loopback" in " ".join(form_errors(response)["redirect_uris"])
    assert not Application.objects.filter(name="Billing").exists()


def test_http_loopback_redirect_uri_is_accepted(admin_client):
    response = admin_client.post(ADD_URL, app_data(redirect_uris="http://127.0.0.1:8080/callback"))
    assert response.status_code == 302, form_errors(response)
    assert Application.objects.get(name="Billing").redirect_uris == "http://127.0.0.1:8080/callback"


def test_bad_post_logout_uri_is_reported_on_its_own_field(admin_client):
    response = admin_client.post(ADD_URL, app_data(post_logout_redirect_uris="http://evil.example.com/"))
    assert response.status_code == 200
    errors = form_errors(response)
    assert "post_logout_redirect_uris" in errors
    assert "redirect_uris" not in errors
    assert not Application.objects.filter(name="Billing").exists()


def test_bad_allowed_origin_is_refused(admin_client):
    response = admin_client.post(ADD_URL, app_data(allowed_origins="http://evil.example.com"))
    assert response.status_code == 200
    assert "allowed_origins" in form_errors(response)


def grant_label_html(content, grant):
    """The rendered <label> of one grant's checkbox."""
    match = re.search(
        r'<label for="id_grant_types_\d+">\s*<input[^>]*value="%s"[^>]*>(.*?)</label>' % grant, content, re.S
    )
    assert match, grant
    return match.group(1)


def test_add_page_shows_password_warning(admin_client):
    content = admin_client.get(ADD_URL).content.decode()
    label = grant_label_html(content, policy.PASSWORD)
    assert "allowed" in label
    assert "Only when you own both the application and the resources" in label
    assert "forbidden" in grant_label_html(content, policy.IMPLICIT)
    assert "recommended" in grant_label_html(content, policy.AUTHORIZATION_CODE)


def test_public_application_has_no_secret(admin_client):
    data = app_data(
        name="Shop front",
        application_type=policy.SPA,
        grant_types=[policy.AUTHORIZATION_CODE],
        redirect_uris="https://shop.example.com/cb",
    )
    response = admin_client.post(ADD_URL, data, follow=True)
    app = Application.objects.get(name="Shop front")
    assert app.client_secret == ""
    assert app.client_type == Application.CLIENT_PUBLIC
    assert shown_secret(response) is None
    content = response.content.decode()
    assert "a public client has no secret; it proves itself with PKCE" in content
    assert "code_challenge_method=S256" in content


def test_regenerate_secret_action(admin_client, web_app):
    """The bulk action shows the new secrets in its own response (never in a message kept in the session)."""
    old_digest = web_app.client_secret
    response = admin_client.post(APPS_URL, {"action": "regenerate_secret", "_selected_action": [web_app.pk]})
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    web_app.refresh_from_db()
    assert web_app.client_secret != old_digest
    match = re.search(rf'<pre id="client-secret-{re.escape(web_app.client_id)}"[^>]*>([^<]+)</pre>', response.content.decode())
    secret = match.group(1)
    assert secrets.verify(secret, web_app.client_secret)
    assert not secrets.verify(secret, old_digest)
    assert not any(secret in m for m in messages_of(admin_client.get(APPS_URL)))


def test_changelist_lists_grants_and_filters_by_type(admin_client, web_app, spa_app):
    content = admin_client.get(APPS_URL).content.decode()
    assert web_app.client_id in content and spa_app.client_id in content
    assert "authorization_code, refresh_token" in content
    filtered = admin_client.get(APPS_URL, {"application_type__exact": policy.SPA}).content.decode()
    assert spa_app.client_id in filtered and web_app.client_id not in filtered
    searched = admin_client.get(APPS_URL, {"q": web_app.client_id}).content.decode()
    assert web_app.client_id in searched and spa_app.client_id not in searched


def test_changing_type_to_one_that_forbids_a_held_grant_is_refused(admin_client, web_app):
    data = app_data(name=web_app.name, application_type=policy.SPA, grant_types=web_app.grant_types)
    response = admin_client.post(f"{APPS_URL}{web_app.pk}/change/", data)
    assert response.status_code == 200
    assert "refresh_token" in " ".join(form_errors(response)["grant_types"])
    web_app.refresh_from_db()
    assert web_app.application_type == policy.WEB


# -- grant policy -------------------------------------------------------------------------


def test_policy_changelist_renders(admin_client):
    response = admin_client.get(POLICY_URL)
    assert response.status_code == 200
    assert response.context["cl"].result_count == len(policy.DEFAULT_POLICY)
    assert "/admin/oidc_provider/grantpolicy/add/" not in response.content.decode()


def test_policy_state_changed_from_changelist(admin_client):
    row = GrantPolicy.objects.get(application_type=policy.SPA, grant=policy.IMPLICIT)
    assert row.state == policy.ALLOWED
    query = "?application_type__exact=spa&grant__exact=implicit"
    data = {
        "form-TOTAL_FORMS": "1",
        "form-INITIAL_FORMS": "1",
        "form-MIN_NUM_FORMS": "0",
        "form-MAX_NUM_FORMS": "1000",
        "form-0-id": str(row.pk),
        "form-0-state": policy.FORBIDDEN,
        "_save": "Save",
    }
    response = admin_client.post(POLICY_URL + query, data)
    assert response.status_code == 302
    row.refresh_from_db()
    assert row.state == policy.FORBIDDEN
    assert policy.state_of(policy.SPA, policy.IMPLICIT) == policy.FORBIDDEN
    event = AuditEvent.objects.get(action=audit.POLICY_CHANGED)
    assert event.details == {
        "application_type": policy.SPA,
        "grant": policy.IMPLICIT,
        "state": policy.FORBIDDEN,
        "previous": policy.ALLOWED,
    }


def test_policy_change_page_warns_about_applications_holding_the_grant(admin_client):
    ApplicationFactory(name="Legacy SPA", application_type=policy.SPA, grant_types=[policy.IMPLICIT])
    row = GrantPolicy.objects.get(application_type=policy.SPA, grant=policy.IMPLICIT)
    response = admin_client.post(f"{POLICY_URL}{row.pk}/change/", {"state": policy.FORBIDDEN}, follow=True)
    assert response.status_code == 200
    row.refresh_from_db()
    assert row.state == policy.FORBIDDEN
    assert any("Legacy SPA" in m for m in messages_of(response))


def test_policy_rows_cannot_be_added_or_deleted(admin_client):
    row = GrantPolicy.objects.first()
    assert admin_client.get(POLICY_URL + "add/").status_code == 403
    assert admin_client.post(f"{POLICY_URL}{row.pk}/delete/", {"post": "yes"}).status_code == 403
    assert GrantPolicy.objects.filter(pk=row.pk).exists()


def test_policy_change_makes_new_grant_selectable(admin_client):
    """The application form reads the policy now: a grant the admin forbids is refused at once."""
    row = GrantPolicy.objects.get(application_type=policy.WEB, grant=policy.PASSWORD)
    admin_client.post(f"{POLICY_URL}{row.pk}/change/", {"state": policy.FORBIDDEN})
    response = admin_client.post(ADD_URL, app_data(grant_types=[policy.AUTHORIZATION_CODE, policy.PASSWORD]))
    assert response.status_code == 200
    assert "password" in " ".join(form_errors(response)["grant_types"])


# -- signing keys ---------------------------------------------------------------------


def test_signing_key_pages_never_show_the_private_key(admin_client):
    key = keys.ensure_active_key()
    listing = admin_client.get(KEYS_URL)
    assert listing.status_code == 200
    assert key.kid in listing.content.decode()
    assert "PRIVATE KEY" not in listing.content.decode()

    detail = admin_client.get(f"{KEYS_URL}{key.pk}/change/")
    assert detail.status_code == 200
    assert key.kid in detail.content.decode()
    assert "PRIVATE KEY" not in detail.content.decode()
    assert "private_key" not in detail.content.decode()

    assert admin_client.get(KEYS_URL + "add/").status_code == 403


def test_rotate_action_makes_a_new_active_key(admin_client):
    old = keys.ensure_active_key()
    response = admin_client.post(KEYS_URL, {"action": "rotate_keys", "_selected_action": [old.pk]}, follow=True)
    assert response.status_code == 200

    active = SigningKey.objects.filter(status=SigningKey.ACTIVE)
    assert active.count() == 1
    new = active.get()
    assert new.pk != old.pk
    old.refresh_from_db()
    assert old.status == SigningKey.INACTIVE
    upcoming = SigningKey.objects.get(status=SigningKey.NEXT)
    assert any(new.kid in m and upcoming.kid in m for m in messages_of(response))


def test_retire_action_refuses_the_active_key(admin_client):
    active = keys.ensure_active_key()
    response = admin_client.post(KEYS_URL, {"action": "retire_keys", "_selected_action": [active.pk]}, follow=True)
    assert response.status_code == 200
    active.refresh_from_db()
    assert active.status == SigningKey.ACTIVE
    assert any(active.kid in m and "active" in m for m in messages_of(response))


def test_retire_action_retires_an_inactive_key(admin_client):
    old = keys.ensure_active_key()
    new = keys.rotate()
    response = admin_client.post(
        KEYS_URL, {"action": "retire_keys", "_selected_action": [old.pk, new.pk]}, follow=True
    )
    old.refresh_from_db()
    new.refresh_from_db()
    assert old.status == SigningKey.RETIRED and old.retired_at is not None
    assert new.status == SigningKey.ACTIVE
    texts = messages_of(response)
    assert any(old.kid in m and "Retired" in m for m in texts)
    assert any(new.kid in m and "cannot be retired" in m for m in texts)
    jwks_kids = [k["kid"] for k in keys.jwks()["keys"]]
    assert old.kid not in jwks_kids and new.kid in jwks_kids


# -- access -----------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["/admin/", APPS_URL, ADD_URL, POLICY_URL, KEYS_URL])
def test_non_staff_user_is_sent_to_admin_login(logged_in, url):
    response = logged_in.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_non_staff_user_cannot_post_actions(logged_in):
    key = keys.ensure_active_key()
    response = logged_in.post(KEYS_URL, {"action": "rotate_keys", "_selected_action": [key.pk]})
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")
    key.refresh_from_db()
    assert key.status == SigningKey.ACTIVE


def test_policy_changelist_follows_the_docs_order(admin_client):
    rows = admin_client.get(POLICY_URL).context["cl"].result_list
    assert [(r.grant, r.application_type) for r in rows] == [
        (g, t) for g in policy.GRANTS for t in policy.APPLICATION_TYPES
    ]


def test_application_change_page_renders_without_view_on_site(admin_client, web_app, spa_app):
    for app in (web_app, spa_app):
        response = admin_client.get(f"{APPS_URL}{app.pk}/change/")
        assert response.status_code == 200
        assert "/admin/r/" not in response.content.decode()


def test_public_application_made_confidential_gets_a_secret_shown_once(admin_client, spa_app):
    data = app_data(
        name=spa_app.name,
        application_type=policy.WEB,
        grant_types=[policy.AUTHORIZATION_CODE],
        redirect_uris=spa_app.redirect_uris,
        _save="Save",
    )
    response = admin_client.post(f"{APPS_URL}{spa_app.pk}/change/", data, follow=True)
    spa_app.refresh_from_db()
    assert spa_app.client_type == Application.CLIENT_CONFIDENTIAL
    secret = shown_secret(response)
    assert secret and secrets.verify(secret, spa_app.client_secret)
    assert shown_secret(admin_client.get(f"{APPS_URL}{spa_app.pk}/credentials/")) is None


def test_key_actions_are_audited_with_the_admin_as_actor(admin_client, admin_user):
    from console.models import AuditEvent
    from oidc_provider.models import SigningKey

    key = SigningKey.objects.get(status=SigningKey.ACTIVE)
    admin_client.post("/admin/oidc_provider/signingkey/", {"action": "rotate_keys", "_selected_action": [key.pk]})
    event = AuditEvent.objects.get(action="signing_key.rotated")
    assert event.actor == admin_user and event.actor_label == admin_user.get_username()
