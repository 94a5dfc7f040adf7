"""Console API tokens (django-rest-knox): stored as digests, shown once, expiring, and created
and revoked by each staff user for themselves at /console/tokens/."""

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from knox.crypto import hash_token
from knox.models import AuthToken
from rest_framework.test import APIClient

from console import audit
from console.models import AuditEvent

from .factories import UserFactory

pytestmark = pytest.mark.django_db

PAGE = "/console/tokens/"
APPS = "/console/api/applications/"


@pytest.fixture
def operator():
    return UserFactory(username="operator", is_staff=True, is_superuser=True)


@pytest.fixture
def page(client, operator):
    client.force_login(operator)
    return client


def created_token(response):
    return re.search(r'<pre id="new-token"[^>]*>([0-9a-f]+)</pre>', response.content.decode()).group(1)


def bearer(token):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


def test_a_token_made_on_the_page_is_shown_once_and_stored_as_a_digest(page, operator):
    """Shown once, in the response that made it; the database holds its SHA-512 digest only."""
    response = page.post(PAGE, {"action": "create", "days": "7"})
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    token = created_token(response)
    stored = AuthToken.objects.get(user=operator)
    assert stored.digest == hash_token(token) and token not in stored.digest
    assert timedelta(days=6, hours=23) < stored.expiry - timezone.now() <= timedelta(days=7)
    assert bearer(token).get(APPS).status_code == 200
    again = page.get(PAGE).content.decode()
    assert token not in again and stored.token_key not in again and stored.digest[:12] in again
    event = AuditEvent.objects.get(action=audit.API_TOKEN_CREATED)
    assert event.actor == operator and token not in str(event.details)


def test_a_lifetime_not_offered_is_refused(page):
    response = page.post(PAGE, {"action": "create", "days": "36500"})
    assert response.status_code == 400 and not AuthToken.objects.exists()
    assert b"Choose a lifetime" in response.content


def test_revoking_a_token_on_the_page_stops_it_at_once(page, operator):
    token = created_token(page.post(PAGE, {"action": "create", "days": "1"}))
    prefix = AuthToken.objects.get(user=operator).digest[:12]
    response = page.post(PAGE, {"action": "revoke", "token": prefix})
    assert response.status_code == 302 and not AuthToken.objects.exists()
    assert bearer(token).get(APPS).status_code == 401
    assert AuditEvent.objects.get(action=audit.API_TOKEN_REVOKED).actor == operator


def test_a_user_cannot_see_or_revoke_someone_elses_token(page):
    """The page lists and revokes the signed-in user's own tokens only."""
    other, _token = AuthToken.objects.create(user=UserFactory(is_staff=True))
    assert other.digest[:12] not in page.get(PAGE).content.decode()
    response = page.post(PAGE, {"action": "revoke", "token": other.digest[:12]})
    assert response.status_code == 302 and AuthToken.objects.filter(pk=other.pk).exists()
    assert not AuditEvent.objects.filter(action=audit.API_TOKEN_REVOKED).exists()


def test_an_expired_token_is_refused(operator):
    instance, token = AuthToken.objects.create(user=operator, expiry=timedelta(days=1))
    AuthToken.objects.filter(pk=instance.pk).update(expiry=timezone.now() - timedelta(seconds=1))
    assert bearer(token).get(APPS).status_code == 401


def test_a_token_header_that_is_not_utf8_is_a_401_not_a_500(operator):
    """Malformed input gets a 4xx: a raw Latin-1 byte in the token."""
    client = APIClient()
    response = client.get(APPS, HTTP_AUTHORIZATION="Token caf\xe9")
    assert response.status_code == 401


def test_the_token_admin_shows_no_token_and_is_for_superusers_only(page, client, operator):
    instance, token = AuthToken.objects.create(user=operator)
    listing = page.get("/admin/knox/authtoken/").content.decode()
    assert instance.digest[:12] in listing and token not in listing and instance.token_key not in listing
    assert page.get("/admin/knox/authtoken/add/").status_code == 403
    client.force_login(UserFactory(is_staff=True))
    assert client.get("/admin/knox/authtoken/").status_code == 403


def test_drf_plaintext_tokens_are_gone():
    """DRF's authtoken (tokens kept in clear) is not installed; knox replaces it."""
    from django.apps import apps

    assert not apps.is_installed("rest_framework.authtoken") and apps.is_installed("knox")
