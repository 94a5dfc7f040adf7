"""A secret shown once reaches its page without being stored in plaintext anywhere, the session
included.

Every admin flow that makes a client secret or an SK is walked through HTTP: the moment between
the POST that made it and the page that shows it (when it is pending) and after that page, the
django_session table holds no trace of it, messages included. The page shows it once; without
the short-lived cookie that holds its key, the pending ciphertext shows nothing.
"""

import json
import re

import pytest
from django.contrib.sessions.models import Session
from django.db import connection

from console.views.shown_once import SHOWN_ONCE_COOKIE, SHOWN_ONCE_SECONDS
from oidc_provider import access_keys, policy, secrets
from oidc_provider.models import AccessAccount, AccessKey, Application
from tests.test_admin import app_data
from tests.test_console_admin import WEB_ANSWERS, account_data, pre

pytestmark = pytest.mark.django_db

APPS_URL = "/admin/oidc_provider/application/"
ACCOUNTS_URL = "/admin/oidc_provider/accessaccount/"
KEYS_URL = "/admin/oidc_provider/accesskey/"
ISSUED_URL = KEYS_URL + "issued/"


def assert_not_in_sessions(secret):
    """Neither the stored column nor any decoded session (messages included) holds ``secret``."""
    assert secret and len(secret) >= 16
    with connection.cursor() as cursor:
        cursor.execute("SELECT session_data FROM django_session")
        raw = [row[0] for row in cursor.fetchall()]
    assert raw, "the flow used a session"
    assert not any(secret in value for value in raw)
    for session in Session.objects.all():
        assert secret not in json.dumps(session.get_decoded(), default=str)


def shown_then_gone(admin_client, response, element_id):
    """Follow the redirect of a POST that made a secret; the secret it shows, checked against the session."""
    assert response.status_code == 302
    assert SHOWN_ONCE_COOKIE in response.cookies
    page = admin_client.get(response["Location"])
    assert page.status_code == 200 and "no-store" in page["Cache-Control"]
    secret = pre(page, element_id)
    assert secret
    assert_not_in_sessions(secret)
    # Opened once: the cookie is dropped and a reload shows nothing.
    assert page.cookies[SHOWN_ONCE_COOKIE].value == ""
    assert secret not in admin_client.get(response["Location"]).content.decode()
    return secret


def pending_secret_digest_matches(secret, digest):
    assert secrets.verify(secret, digest)


# -- client secrets -----------------------------------------------------------------------------


def test_a_new_applications_secret_is_never_in_the_session_from_the_add_form(admin_client):
    response = admin_client.post(APPS_URL + "add/", app_data())
    app = Application.objects.get(name="Billing")
    secret = shown_then_gone(admin_client, response, "client-secret")
    pending_secret_digest_matches(secret, app.client_secret)


def test_the_flow_choosers_create_path_passes_the_secret_sealed(admin_client):
    response = admin_client.post(APPS_URL + "flow/", {**WEB_ANSWERS, "name": "Shop", "redirect_uris": "https://shop.example.com/cb"})
    app = Application.objects.get(name="Shop")
    assert response["Location"] == f"{APPS_URL}{app.pk}/credentials/"
    secret = shown_then_gone(admin_client, response, "client-secret")
    pending_secret_digest_matches(secret, app.client_secret)


def test_a_regenerated_secret_is_never_in_the_session(admin_client, web_app):
    response = admin_client.post(f"{APPS_URL}{web_app.pk}/regenerate-secret/")
    secret = shown_then_gone(admin_client, response, "client-secret")
    web_app.refresh_from_db()
    pending_secret_digest_matches(secret, web_app.client_secret)


def test_a_public_client_made_confidential_gets_its_secret_sealed(admin_client, spa_app):
    data = app_data(name=spa_app.name, application_type=policy.WEB, redirect_uris="https://spa.example.com/cb")
    response = admin_client.post(f"{APPS_URL}{spa_app.pk}/change/", data)
    secret = shown_then_gone(admin_client, response, "client-secret")
    spa_app.refresh_from_db()
    pending_secret_digest_matches(secret, spa_app.client_secret)


def test_the_bulk_regenerate_action_shows_the_secrets_in_its_own_response_only(admin_client, web_app):
    response = admin_client.post(APPS_URL, {"action": "regenerate_secret", "_selected_action": [web_app.pk]})
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    secret = pre(response, f"client-secret-{web_app.client_id}")
    web_app.refresh_from_db()
    pending_secret_digest_matches(secret, web_app.client_secret)
    assert_not_in_sessions(secret)
    assert secret not in admin_client.get(APPS_URL).content.decode()


def test_an_application_added_in_a_popup_leaves_its_secret_sealed_for_the_credentials_page(admin_client):
    """The popup closes itself; its message says where the secret is and never carries it."""
    response = admin_client.post(APPS_URL + "add/?_popup=1", {**app_data(), "_popup": "1"})
    assert response.status_code == 200
    app = Application.objects.get(name="Billing")
    messages = [str(m) for m in admin_client.get(APPS_URL).context["messages"]]
    assert any(f"{APPS_URL}{app.pk}/credentials/" in m for m in messages)
    page = admin_client.get(f"{APPS_URL}{app.pk}/credentials/")
    secret = pre(page, "client-secret")
    pending_secret_digest_matches(secret, app.client_secret)
    assert not any(secret in m for m in messages)
    assert_not_in_sessions(secret)


# -- SKs ------------------------------------------------------------------------------------------


def test_an_sk_issued_with_a_new_account_is_never_in_the_session(admin_client):
    response = admin_client.post(ACCOUNTS_URL + "add/", account_data())
    assert response["Location"] == ISSUED_URL
    key = AccessKey.objects.get(account__name="billing-sync")
    sk = shown_then_gone(admin_client, response, f"sk-{key.access_key}")
    pending_secret_digest_matches(sk, key.secret_key)


def test_an_sk_issued_from_the_account_page_is_never_in_the_session(admin_client):
    account = AccessAccount.objects.create(name="reports", scopes=["read"])
    response = admin_client.post(f"{ACCOUNTS_URL}{account.pk}/issue-key/")
    key = AccessKey.objects.get(account=account)
    sk = shown_then_gone(admin_client, response, f"sk-{key.access_key}")
    pending_secret_digest_matches(sk, key.secret_key)


def test_a_rotated_pairs_sk_is_never_in_the_session(admin_client):
    account = AccessAccount.objects.create(name="reports", scopes=["read"])
    old, _sk = access_keys.issue(account)
    response = admin_client.post(f"{KEYS_URL}{old.pk}/rotate/")
    new = AccessKey.objects.get(account=account, revoked_at__isnull=True)
    sk = shown_then_gone(admin_client, response, f"sk-{new.access_key}")
    pending_secret_digest_matches(sk, new.secret_key)


@pytest.mark.parametrize("action, url", [("issue_key_pairs", ACCOUNTS_URL), ("rotate_pairs", KEYS_URL)])
def test_the_bulk_key_actions_pass_their_sks_sealed(admin_client, action, url):
    account = AccessAccount.objects.create(name="reports", scopes=["read"])
    old, _sk = access_keys.issue(account)
    selected = account.pk if url == ACCOUNTS_URL else old.pk
    response = admin_client.post(url, {"action": action, "_selected_action": [selected]})
    new = AccessKey.objects.filter(account=account, revoked_at__isnull=True).exclude(pk=old.pk).get()
    sk = shown_then_gone(admin_client, response, f"sk-{new.access_key}")
    pending_secret_digest_matches(sk, new.secret_key)


# -- the key that opens a pending secret -----------------------------------------------------------


def test_without_its_cookie_a_pending_secret_is_never_shown(admin_client, web_app):
    """The session's ciphertext alone (a copy of the session table, a stolen session) opens nothing."""
    response = admin_client.post(f"{APPS_URL}{web_app.pk}/regenerate-secret/")
    del admin_client.cookies[SHOWN_ONCE_COOKIE]
    page = admin_client.get(response["Location"])
    assert page.status_code == 200
    assert pre(page, "client-secret") is None
    assert "no longer shown; regenerate it if lost" in page.content.decode()


def test_a_forged_cookie_opens_nothing(admin_client, web_app):
    response = admin_client.post(f"{APPS_URL}{web_app.pk}/regenerate-secret/")
    admin_client.cookies[SHOWN_ONCE_COOKIE] = "not-a-key"
    assert pre(admin_client.get(response["Location"]), "client-secret") is None


def test_the_cookie_is_http_only_same_site_strict_short_lived_and_scoped_to_the_admin(admin_client, web_app):
    cookie = admin_client.post(f"{APPS_URL}{web_app.pk}/regenerate-secret/").cookies[SHOWN_ONCE_COOKIE]
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Strict"
    assert cookie["path"] == "/admin/"
    assert int(cookie["max-age"]) == SHOWN_ONCE_SECONDS
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}=", cookie.value)


def test_the_cookie_is_secure_when_the_site_is_served_over_https(admin_client, web_app, settings):
    settings.SESSION_COOKIE_SECURE = True
    cookie = admin_client.post(f"{APPS_URL}{web_app.pk}/regenerate-secret/", secure=True).cookies[SHOWN_ONCE_COOKIE]
    assert cookie["secure"] is True
