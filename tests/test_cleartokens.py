"""`manage.py cleartokens`: django-oauth-toolkit's clean-up, plus redeemed codes past their lifetime."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.test import override_settings
from django.utils import timezone
from oauth2_provider.models import get_grant_model
from oauth2_provider.settings import oauth2_settings

from oidc_provider import policy
from oidc_provider.models import RedeemedCode
from tests.factories import ApplicationFactory
from tests.helpers import exchange, get_code

Grant = get_grant_model()


@pytest.fixture
def no_refresh_app(db):
    """An exchange that issues no refresh token leaves a RedeemedCode row (one that does is
    found by its refresh token family instead)."""
    return ApplicationFactory(application_type=policy.WEB, grant_types=["authorization_code"])


def _cleartokens():
    out, err = StringIO(), StringIO()
    call_command("cleartokens", stdout=out, stderr=err)
    return out.getvalue()


def _redeem(client, app):
    code = get_code(client, app)["code"]
    tokens = exchange(client, app, code, secret=app.plaintext_secret)
    assert tokens.status_code == 200, tokens.content
    return code, tokens.json()


def _age_all(seconds):
    RedeemedCode.objects.update(redeemed_at=timezone.now() - timedelta(seconds=seconds))


def test_codes_past_their_lifetime_go_and_a_replay_of_one_is_refused_without_error(logged_in, no_refresh_app):
    web_app = no_refresh_app
    old_code, _ = _redeem(logged_in, web_app)
    _age_all(oauth2_settings.AUTHORIZATION_CODE_EXPIRE_SECONDS + 1)
    fresh_code, fresh_tokens = _redeem(logged_in, web_app)
    assert RedeemedCode.objects.count() == 2

    assert "Deleted 1 expired redeemed code(s)." in _cleartokens()

    assert RedeemedCode.objects.count() == 1
    replay = exchange(logged_in, web_app, old_code, secret=web_app.plaintext_secret)
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
    # The code still within its lifetime keeps its record: replaying it revokes what it issued.
    replay = exchange(logged_in, web_app, fresh_code, secret=web_app.plaintext_secret)
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
    me = logged_in.get("/oidc/me", HTTP_AUTHORIZATION=f"Bearer {fresh_tokens['access_token']}")
    assert me.status_code == 401


def test_a_record_younger_than_the_code_lifetime_is_kept(logged_in, no_refresh_app):
    _redeem(logged_in, no_refresh_app)
    _age_all(oauth2_settings.AUTHORIZATION_CODE_EXPIRE_SECONDS - 5)
    assert "Deleted 0 expired redeemed code(s)." in _cleartokens()
    assert RedeemedCode.objects.count() == 1


def test_a_code_that_issued_a_refresh_token_is_caught_as_long_as_its_tokens_live(logged_in, web_app):
    code, tokens = _redeem(logged_in, web_app)
    assert not RedeemedCode.objects.exists()
    _cleartokens()
    replay = exchange(logged_in, web_app, code, secret=web_app.plaintext_secret)
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
    assert logged_in.get("/oidc/me", HTTP_AUTHORIZATION=f"Bearer {tokens['access_token']}").status_code == 401


def test_django_oauth_toolkits_part_still_runs(logged_in, web_app):
    get_code(logged_in, web_app)
    Grant.objects.update(expires=timezone.now() - timedelta(seconds=1))
    _cleartokens()
    assert not Grant.objects.exists()


def test_a_backlog_is_deleted_in_batches(logged_in, no_refresh_app, settings):
    for _ in range(5):
        _redeem(logged_in, no_refresh_app)
    _age_all(3600)
    settings.OAUTH2_PROVIDER = {**settings.OAUTH2_PROVIDER, "CLEAR_EXPIRED_TOKENS_BATCH_SIZE": 2}
    assert oauth2_settings.CLEAR_EXPIRED_TOKENS_BATCH_SIZE == 2
    assert "Deleted 5 expired redeemed code(s)." in _cleartokens()
    assert not RedeemedCode.objects.exists()


@pytest.mark.parametrize("first", ["oidc_provider", "oauth2_provider"])
def test_the_app_order_that_would_skip_the_clean_up_is_a_warning(settings, first):
    others = [app for app in settings.INSTALLED_APPS if app not in ("oidc_provider", "oauth2_provider")]
    order = ["oidc_provider", "oauth2_provider"] if first == "oidc_provider" else ["oauth2_provider", "oidc_provider"]
    with override_settings(INSTALLED_APPS=others + order):
        out, err = StringIO(), StringIO()
        call_command("check", stdout=out, stderr=err)
    assert ("oidc_provider.W003" in err.getvalue() + out.getvalue()) == (first == "oauth2_provider")
