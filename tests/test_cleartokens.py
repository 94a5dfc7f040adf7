"""`manage.py cleartokens`: django-oauth-toolkit's rules for what has expired, plus redeemed
codes past their lifetime, deleted in batches with progress, resumable; and the same clean-up
run by the server itself where there is no cron."""

import hashlib
import json
import uuid
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import Client, override_settings
from django.utils import timezone
from oauth2_provider.models import get_access_token_model, get_grant_model, get_id_token_model, get_refresh_token_model
from oauth2_provider.settings import oauth2_settings

from oidc_provider import cleanup, policy
from oidc_provider.models import PeriodicRun, RedeemedCode
from tests.factories import ApplicationFactory, UserFactory
from tests.helpers import exchange, get_code

Grant = get_grant_model()
AccessToken, RefreshToken, IDToken = get_access_token_model(), get_refresh_token_model(), get_id_token_model()


@pytest.fixture
def no_refresh_app(db):
    """An exchange that issues no refresh token leaves a RedeemedCode row (one that does is
    found by its refresh token family instead)."""
    return ApplicationFactory(application_type=policy.WEB, grant_types=["authorization_code"])


def _cleartokens(*args):
    out, err = StringIO(), StringIO()
    call_command("cleartokens", *args, stdout=out, stderr=err)
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

    assert "Deleted 1 expired redeemed-code records." in _cleartokens()

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
    assert "Deleted 0 expired redeemed-code records." in _cleartokens()
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
    assert "Deleted 5 expired redeemed-code records." in _cleartokens()
    assert not RedeemedCode.objects.exists()


@pytest.mark.parametrize("first", ["oidc_provider", "oauth2_provider"])
def test_the_app_order_that_would_skip_the_clean_up_is_a_warning(settings, first):
    others = [app for app in settings.INSTALLED_APPS if app not in ("oidc_provider", "oauth2_provider")]
    order = ["oidc_provider", "oauth2_provider"] if first == "oidc_provider" else ["oauth2_provider", "oidc_provider"]
    with override_settings(INSTALLED_APPS=others + order):
        out, err = StringIO(), StringIO()
        call_command("check", stdout=out, stderr=err)
    assert ("oidc_provider.W003" in err.getvalue() + out.getvalue()) == (first == "oauth2_provider")


# -- every kind, by django-oauth-toolkit's rules ------------------------------------------


def _access(app, user, *, expires_in, with_id_token=False):
    value = uuid.uuid4().hex
    id_token = None
    if with_id_token:
        id_token = IDToken.objects.create(user=user, application=app, jti=uuid.uuid4(),
                                          expires=timezone.now() + timedelta(seconds=expires_in))
    return AccessToken.objects.create(user=user, application=app, token="", id_token=id_token,
                                      token_checksum=hashlib.sha256(value.encode()).hexdigest(),
                                      expires=timezone.now() + timedelta(seconds=expires_in), scope="openid")


def _refresh(app, user, access, *, revoked_ago=None):
    revoked = timezone.now() - timedelta(seconds=revoked_ago) if revoked_ago is not None else None
    return RefreshToken.objects.create(user=user, application=app, access_token=access, revoked=revoked,
                                       token=uuid.uuid4().hex, token_family=uuid.uuid4())


@pytest.fixture
def rows(db):
    """One row of each kind that must go, and one beside it that must stay."""
    app, user = ApplicationFactory(application_type=policy.WEB), UserFactory()
    idle = oauth2_settings.REFRESH_TOKEN_EXPIRE_SECONDS
    made = {
        "gone": {
            "expired access token": _access(app, user, expires_in=-10),
            "revoked refresh token past the idle lifetime": _refresh(app, user, None, revoked_ago=idle + 60),
            "orphaned refresh token": _refresh(app, user, None),
            "idle refresh token": _refresh(app, user, _access(app, user, expires_in=-(idle + 60))),
            "expired ID token": IDToken.objects.create(user=user, application=app, jti=uuid.uuid4(),
                                                       expires=timezone.now() - timedelta(seconds=10)),
            "expired code": Grant.objects.create(user=user, application=app, code=uuid.uuid4().hex,
                                                 expires=timezone.now() - timedelta(seconds=1), redirect_uri="https://rp.example/cb"),
        },
        "kept": {
            "live access token": _access(app, user, expires_in=3600, with_id_token=True),
            "expired access token that a live refresh token holds": _access(app, user, expires_in=-10),
            # A rotated refresh token is how a replay is recognised (RFC 9700 4.14.2).
            "recently rotated refresh token": _refresh(app, user, None, revoked_ago=60),
            "live code": Grant.objects.create(user=user, application=app, code=uuid.uuid4().hex,
                                              expires=timezone.now() + timedelta(seconds=60), redirect_uri="https://rp.example/cb"),
        },
    }
    made["kept"]["its live refresh token"] = _refresh(app, user, made["kept"]["expired access token that a live refresh token holds"])
    # Minted from the refresh token that goes: it stays, no longer pointing at it.
    made["kept"]["live access token minted from a deleted refresh token"] = minted = _access(app, user, expires_in=3600)
    minted.source_refresh_token = made["gone"]["revoked refresh token past the idle lifetime"]
    minted.save()
    made["kept"]["ID token of the live access token"] = made["kept"]["live access token"].id_token
    return made


def _exists(row):
    return type(row).objects.filter(pk=row.pk).exists()


def test_every_kind_of_expired_row_goes_and_every_live_one_stays(rows):
    """django-oauth-toolkit's rules, kept: expired access and ID tokens, codes, idle and
    orphaned refresh tokens go; rotated refresh tokens stay for replay detection until the
    idle lifetime has passed (REFRESH_TOKEN_REUSE_PROTECTION)."""
    out = _cleartokens()

    assert {name for name, row in rows["gone"].items() if _exists(row)} == set()
    assert {name for name, row in rows["kept"].items() if not _exists(row)} == set()
    assert AccessToken.objects.get(pk=rows["kept"]["live access token minted from a deleted refresh token"].pk).source_refresh_token is None
    # Refresh tokens go first, so the idle one's expired access token, no longer held, goes too.
    for line in ("Deleted 2 expired access tokens.", "Deleted 1 revoked refresh tokens.", "Deleted 1 orphaned refresh tokens.",
                 "Deleted 1 idle refresh tokens.", "Deleted 1 expired ID tokens.", "Deleted 1 expired authorization codes."):
        assert line in out
    assert "Deleted 0 " in _cleartokens() and "Done: 0 rows" in _cleartokens()


def test_someone_listening_for_deletions_hears_of_every_deleted_row(rows):
    """A site's own post_delete receiver on tokens still runs for each row deleted."""
    from django.db.models.signals import post_delete

    heard = []

    def receiver(sender, instance, **kwargs):
        heard.append(instance.pk)

    post_delete.connect(receiver, sender=AccessToken, weak=False)
    try:
        _cleartokens()
    finally:
        post_delete.disconnect(receiver, sender=AccessToken)

    assert sorted(heard) == sorted([rows["gone"]["expired access token"].pk, rows["gone"]["idle refresh token"].access_token_id])


def test_the_summary_can_be_one_json_object(rows):
    result = json.loads(_cleartokens("--json"))

    assert result["finished"] is True and result["total"] == sum(result["deleted"].values()) >= 6
    assert result["deleted"]["expired authorization codes"] == 1


def test_progress_is_reported_while_it_runs(rows, monkeypatch):
    """Progress output: a long clean-up says how far it is."""
    from oidc_provider.management.commands import cleartokens

    monkeypatch.setattr(cleartokens, "PROGRESS_EVERY", 0)
    out = _cleartokens("--batch-size", "1")

    assert "expired access tokens: 1 deleted so far" in out
    assert "Done: " in out and "rows a minute" in out


def test_stopped_by_its_time_limit_it_keeps_what_it_deleted_and_the_next_run_goes_on(logged_in, no_refresh_app):
    """Resumable: each batch commits on its own, so a stopped run loses nothing."""
    for _ in range(5):
        _redeem(logged_in, no_refresh_app)
    _age_all(3600)

    out = _cleartokens("--batch-size", "2", "--pause", "0.3", "--max-seconds", "0.1")

    assert "run it again to go on" in out
    assert RedeemedCode.objects.count() == 3
    assert "Deleted 3 expired redeemed-code records." in _cleartokens()
    assert not RedeemedCode.objects.exists()


@pytest.mark.parametrize("args", [("--batch-size", "0"), ("--pause", "-1"), ("--max-seconds", "-5"), ("--max-seconds", "0")])
def test_a_meaningless_option_is_refused_and_nothing_is_deleted(rows, args):
    with pytest.raises(CommandError, match=args[0]):
        _cleartokens(*args)

    assert all(_exists(row) for row in rows["gone"].values())


# -- in the server's processes, where there is no cron -------------------------------------


@pytest.fixture
def periodic(transactional_db, settings, monkeypatch):
    monkeypatch.setattr(cleanup, "_next_check", 0.0)
    settings.OIDC_PROVIDER = {**settings.OIDC_PROVIDER, "CLEAR_EXPIRED_EVERY": 3600}
    yield
    cleanup.join(30)


def _expired_code():
    app, user = ApplicationFactory(application_type=policy.WEB), UserFactory()
    return Grant.objects.create(user=user, application=app, code=uuid.uuid4().hex,
                                expires=timezone.now() - timedelta(seconds=1), redirect_uri="https://rp.example/cb")


def test_with_clear_expired_every_set_the_server_cleans_up_by_itself(periodic):
    code = _expired_code()

    Client().get("/health/live")
    cleanup.join(30)

    assert not _exists(code)
    assert PeriodicRun.objects.get(name="clear_expired").due_at > timezone.now() + timedelta(seconds=3500)


def test_a_clean_up_runs_once_per_period_whichever_process_asks(periodic, monkeypatch):
    """The conditional UPDATE of the one PeriodicRun row lets one process of all the nodes run it."""
    Client().get("/health/live")
    cleanup.join(30)
    code = _expired_code()

    monkeypatch.setattr(cleanup, "_next_check", 0.0)  # as another process would ask
    Client().get("/health/live")
    cleanup.join(30)

    assert _exists(code)


def test_a_failed_periodic_clean_up_is_logged_and_the_server_goes_on(periodic, monkeypatch, caplog):
    def broken(**kwargs):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(cleanup, "clear_expired", broken)

    assert Client().get("/health/live").status_code == 200
    cleanup.join(30)

    assert "periodic clean-up of expired tokens failed" in caplog.text
    assert Client().get("/health/live").status_code == 200


def test_without_the_setting_requests_clean_up_nothing(transactional_db, monkeypatch):
    monkeypatch.setattr(cleanup, "_next_check", 0.0)
    code = _expired_code()

    Client().get("/health/live")
    cleanup.join(30)

    assert _exists(code) and not PeriodicRun.objects.exists()


@pytest.mark.parametrize("every", [0, -60, "hourly", True])
def test_a_clean_up_period_that_is_no_positive_number_fails_the_system_check(settings, every):
    settings.OIDC_PROVIDER = {**settings.OIDC_PROVIDER, "CLEAR_EXPIRED_EVERY": every}
    out, err = StringIO(), StringIO()

    with pytest.raises(Exception, match="oidc_provider.E017"):
        call_command("check", stdout=out, stderr=err)
