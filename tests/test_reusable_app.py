"""Settings, subject identifiers and system checks of the reusable apps."""

import pytest
from django.core import checks
from django.test import override_settings

from oidc_provider import checks as provider_checks
from oidc_provider.claims import subject, user_for_subject
from tests.factories import UserFactory
from tests.helpers import exchange, get_code, verify_id_token

BASE = {"SITE_NAME": "Identity"}


def _ids(found):
    return {m.id for m in found}


@pytest.mark.parametrize(
    ("issuer", "debug", "expected"),
    [
        (None, False, {"oidc_provider.E001"}),
        ("ftp://id.example.com/oidc", False, {"oidc_provider.E002"}),
        ("http://id.example.com/oidc", False, {"oidc_provider.E003"}),
        ("http://id.example.com/oidc", True, set()),
        ("http://127.0.0.1:8000/oidc", False, set()),
        ("http://localhost/oidc", False, set()),
        ("https://id.example.com/oidc", False, set()),
    ],
)
def test_issuer_checks(issuer, debug, expected):
    with override_settings(OIDC_PROVIDER={**BASE, "ISSUER": issuer}, DEBUG=debug):
        assert _ids(provider_checks.check_issuer(None)) == expected


def test_issuer_path_must_be_where_the_urls_are_mounted():
    with override_settings(OIDC_PROVIDER={**BASE, "ISSUER": "https://id.example.com/somewhere-else"}):
        found = provider_checks.check_issuer_matches_urls(None)
    assert _ids(found) == {"oidc_provider.E008"}
    assert "/oidc" in found[0].hint


def test_application_model_must_be_ours():
    with override_settings(OAUTH2_PROVIDER_APPLICATION_MODEL="oauth2_provider.Application"):
        assert _ids(provider_checks.check_application_model(None)) == {"oidc_provider.E004"}


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ({"OAUTH2_VALIDATOR_CLASS": "oauth2_provider.oauth2_validators.OAuth2Validator"}, "oidc_provider.E005"),
        ({"COMPLIANT_BCP_RFC9700_PKCE_METHOD": False}, "oidc_provider.E006"),
        ({"REFRESH_TOKEN_REUSE_PROTECTION": False}, "oidc_provider.E007"),
    ],
)
def test_dot_settings_that_bypass_the_provider_are_errors(settings, override, expected):
    with override_settings(OAUTH2_PROVIDER={**settings.OAUTH2_PROVIDER, **override}):
        assert expected in _ids(provider_checks.check_dot_settings(None))


def test_the_project_passes_every_check(db):
    errors = [m for m in checks.run_checks(databases=["default"]) if m.level >= checks.ERROR]
    assert errors == []


def test_no_active_key_is_a_warning_with_a_fix(db):
    from oidc_provider.models import SigningKey

    SigningKey.objects.update(status=SigningKey.INACTIVE)
    found = provider_checks.check_signing_key(None, databases=["default"])
    assert _ids(found) == {"oidc_provider.W002"} and "oidc_keys rotate" in found[0].hint


def test_subject_is_opaque_stable_and_unique(db):
    alice, bob = UserFactory(), UserFactory()
    assert subject(alice) != str(alice.pk)
    assert len(subject(alice)) >= 24
    assert subject(alice) != subject(bob)
    fresh = type(alice).objects.get(pk=alice.pk)  # another request, another instance
    assert subject(fresh) == subject(alice)
    assert user_for_subject(subject(alice)) == alice


def test_subject_type_pk_uses_the_database_id(logged_in, web_app, user, settings):
    settings.OIDC_PROVIDER = {**settings.OIDC_PROVIDER, "SUBJECT_TYPE": "pk"}
    tokens = exchange(logged_in, web_app, get_code(logged_in, web_app)["code"], secret=web_app.plaintext_secret).json()
    assert verify_id_token(logged_in, tokens["id_token"], web_app.client_id)["sub"] == str(user.pk)


def test_user_claims_hook_maps_a_user_to_claims(logged_in, web_app, user, settings):
    settings.OIDC_PROVIDER = {**settings.OIDC_PROVIDER, "USER_CLAIMS": "tests.test_reusable_app.phone_claims"}
    tokens = exchange(logged_in, web_app, get_code(logged_in, web_app, scope="openid phone profile")["code"], secret=web_app.plaintext_secret).json()
    info = logged_in.get("/oidc/me", HTTP_AUTHORIZATION=f"Bearer {tokens['access_token']}").json()
    assert info["phone_number"] == "+86 10 1234 5678" and info["nickname"] == user.username.upper()
    assert "internal_id" not in info  # not a standard claim of any granted scope


def phone_claims(user):
    return {"phone_number": "+86 10 1234 5678", "phone_number_verified": True, "nickname": user.username.upper(), "internal_id": 7}
