"""The store's promises (oidc_provider.store), one suite for every implementation.

Each operation is called directly, on the ORM store and, where the database allows it, on
the fast one; the token endpoint's own tests (test_authorization_code, test_refresh_and_password,
...) run through whichever store is configured.
"""

import secrets
import threading
import uuid
from datetime import timedelta

import pytest
from django.db import connection, connections
from django.utils import timezone
from oauth2_provider.models import (
    get_access_token_model,
    get_grant_model,
    get_id_token_model,
    get_refresh_token_model,
    set_token_value,
)

from oidc_provider import claims, config_cache
from oidc_provider.models import ConfigVersion, RedeemedCode
from oidc_provider.store import FAST_VENDORS, Tokens, default_store
from oidc_provider.store.fast import FastStore
from oidc_provider.store.orm import OrmStore
from oidc_provider.validators import code_digest, token_checksum

from .factories import ApplicationFactory, UserFactory

AccessToken, RefreshToken, IDToken, Grant = (
    get_access_token_model(), get_refresh_token_model(), get_id_token_model(), get_grant_model(),
)
STORES = {"orm": OrmStore, "fast": FastStore}


@pytest.fixture(params=sorted(STORES))
def store(request):
    if request.param == "fast" and connection.vendor not in FAST_VENDORS:
        pytest.skip(f"the fast store does not run on {connection.vendor}")
    return STORES[request.param]()


@pytest.fixture
def app(db):
    return ApplicationFactory()


@pytest.fixture
def user(db):
    user = UserFactory()
    claims.subject(user)  # the Subject row, so that reads can join it
    return user


def new_tokens(app, user, *, id_token=False, refresh=True, family=None, previous=None):
    """Unsaved rows for one grant, and the raw access and refresh token values."""
    now = timezone.now()
    id_row = IDToken(user=user, application=app, scope="openid", expires=now + timedelta(hours=1), jti=str(uuid.uuid4())) if id_token else None
    access = AccessToken(user=user, application=app, scope="openid", expires=now + timedelta(hours=1), id_token=id_row,
                         source_refresh_token=previous)
    access_value = secrets.token_urlsafe(32)
    set_token_value(access, access_value)
    refresh_row, refresh_value = None, None
    if refresh:
        refresh_row = RefreshToken(user=user, application=app, access_token=access, token_family=family or uuid.uuid4())
        refresh_value = secrets.token_urlsafe(32)
        set_token_value(refresh_row, refresh_value)
    return Tokens(access_token=access, id_token=id_row, refresh_token=refresh_row), access_value, refresh_value


def new_code(store, app, user):
    code = secrets.token_urlsafe(32)
    store.save_code(Grant(application=app, user=user, code=code_digest(code), expires=timezone.now() + timedelta(minutes=1),
                          redirect_uri="https://rp.example.com/callback", scope="openid"))
    return code


def test_a_saved_code_reads_back_with_its_user_and_subject_in_one_query(store, app, user, django_assert_num_queries):
    """RFC 6749 §4.1.3: the token endpoint finds the code's grant and its user."""
    code = new_code(store, app, user)
    with django_assert_num_queries(1):
        grant = store.read_code(code_digest(code))
        assert grant.application_id == app.pk and grant.user == user
        assert claims.subject(grant.user) == claims.subject(user)


def test_an_unknown_code_reads_as_none(store, db):
    assert store.read_code(code_digest("never issued")) is None


def test_redeeming_a_code_saves_its_tokens_linked_to_each_other(store, app, user):
    code = new_code(store, app, user)
    tokens, access_value, refresh_value = new_tokens(app, user, id_token=True)
    assert store.redeem_code(code_digest(code), app, tokens) is True
    access = AccessToken.objects.get(token_checksum=token_checksum(access_value))
    refresh = RefreshToken.objects.get(token_checksum=token_checksum(refresh_value))
    assert access.id_token_id == tokens.id_token.pk and refresh.access_token_id == access.pk == tokens.access_token.pk
    assert not Grant.objects.exists(), "the code is spent"
    assert not RedeemedCode.objects.exists(), "an exchange with a refresh token is found by its family"


def test_a_code_is_redeemed_once_and_the_second_redemption_writes_nothing(store, app, user):
    """RFC 6749 §4.1.2: a code is single use."""
    code = new_code(store, app, user)
    assert store.redeem_code(code_digest(code), app, new_tokens(app, user)[0]) is True
    counts = (AccessToken.objects.count(), RefreshToken.objects.count(), IDToken.objects.count())
    assert store.redeem_code(code_digest(code), app, new_tokens(app, user, id_token=True)[0]) is False
    assert (AccessToken.objects.count(), RefreshToken.objects.count(), IDToken.objects.count()) == counts


def test_another_clients_code_is_not_redeemed(store, app, user):
    code = new_code(store, app, user)
    other = ApplicationFactory()
    assert store.redeem_code(code_digest(code), other, new_tokens(other, user)[0]) is False
    assert Grant.objects.count() == 1 and not AccessToken.objects.exists()


def test_a_replayed_code_without_refresh_token_revokes_its_access_token(store, app, user):
    """RFC 6749 §4.1.2: a code used twice revokes the tokens issued from it."""
    code = new_code(store, app, user)
    tokens = new_tokens(app, user, refresh=False)[0]
    assert store.redeem_code(code_digest(code), app, tokens)
    assert RedeemedCode.objects.get().access_token_id == tokens.access_token.pk
    assert store.revoke_redeemed_code(code_digest(code), uuid.uuid4(), app) is True
    assert not AccessToken.objects.exists()


def test_a_replayed_code_with_refresh_token_revokes_its_family(store, app, user):
    """RFC 6749 §4.1.2 and RFC 9700 §4.14.2: the refresh token family the code began is revoked."""
    code, family = new_code(store, app, user), uuid.uuid4()
    assert store.redeem_code(code_digest(code), app, new_tokens(app, user, family=family)[0])
    assert store.revoke_redeemed_code(code_digest(code), family, app) is True
    assert not AccessToken.objects.exists() and not RefreshToken.objects.filter(revoked__isnull=True).exists()


def test_a_code_never_redeemed_revokes_nothing(store, app, user):
    assert store.revoke_redeemed_code(code_digest("never issued"), uuid.uuid4(), app) is False


def test_a_code_redeemed_by_another_client_is_not_its_replay(store, app, user):
    code = new_code(store, app, user)
    assert store.redeem_code(code_digest(code), app, new_tokens(app, user, refresh=False)[0])
    assert store.revoke_redeemed_code(code_digest(code), uuid.uuid4(), ApplicationFactory()) is False
    assert AccessToken.objects.count() == 1


def test_an_access_token_issued_alone_reads_back_with_its_user_and_subject_in_one_query(
        store, app, user, django_assert_num_queries):
    """OIDC Core 5.3: userinfo answers from the token, its user and the user's `sub`."""
    tokens, access_value, _ = new_tokens(app, user, id_token=True, refresh=False)
    store.issue_access_token(tokens)
    with django_assert_num_queries(1):
        access = store.read_access_token(token_checksum(access_value))
        assert access.pk == tokens.access_token.pk and access.id_token_id == tokens.id_token.pk
        assert claims.subject(access.user) == claims.subject(user)


def test_an_access_token_without_user_reads_back(store, app):
    tokens, access_value, _ = new_tokens(app, None, refresh=False)
    store.issue_access_token(tokens)
    assert store.read_access_token(token_checksum(access_value)).user is None


@pytest.mark.django_db(transaction=True)
def test_a_token_reads_back_after_the_database_connection_was_closed_and_opened_again(store):
    """A restarted database or an expired persistent connection: the store's next statement
    runs on the connection Django opens anew, not on a cursor of the closed one."""
    user = UserFactory()
    claims.subject(user)
    tokens, access_value, _ = new_tokens(ApplicationFactory(), user, refresh=False)
    store.issue_access_token(tokens)
    assert store.read_access_token(token_checksum(access_value)).pk == tokens.access_token.pk
    connection.close()
    assert store.read_access_token(token_checksum(access_value)).pk == tokens.access_token.pk
    connection.close()
    assert store.read_config_version() == ConfigVersion.objects.get().value


def test_an_unknown_access_token_reads_as_none(store, db):
    assert store.read_access_token(token_checksum("never issued")) is None


def issued_refresh_token(store, app, user, family=None):
    code = new_code(store, app, user)
    tokens, _, refresh_value = new_tokens(app, user, family=family)
    assert store.redeem_code(code_digest(code), app, tokens)
    return store.read_refresh_token(token_checksum(refresh_value))


def test_a_refresh_token_reads_back_with_its_access_token_user_subject_and_family_birth(
        store, app, user, django_assert_num_queries):
    code = new_code(store, app, user)
    tokens, _, refresh_value = new_tokens(app, user)
    store.redeem_code(code_digest(code), app, tokens)
    with django_assert_num_queries(1):
        refresh = store.read_refresh_token(token_checksum(refresh_value))
        assert refresh.access_token.pk == tokens.access_token.pk and refresh.user == user
        assert claims.subject(refresh.user) == claims.subject(user)
    assert refresh.revoked is None and refresh.family_born == RefreshToken.objects.get().created


def test_rotation_revokes_the_previous_token_and_saves_its_successors_in_its_family(store, app, user):
    """RFC 9700 §4.14.2: a rotated refresh token is spent; the new one joins its family."""
    previous = issued_refresh_token(store, app, user)
    released = previous.access_token_id
    tokens, _, refresh_value = new_tokens(app, user, id_token=True, family=previous.token_family, previous=previous)
    assert store.rotate_refresh_token(previous, tokens) is True
    previous.refresh_from_db()
    assert previous.revoked is not None and previous.access_token_id is None
    assert not AccessToken.objects.filter(pk=released).exists()
    successor = store.read_refresh_token(token_checksum(refresh_value))
    assert successor.token_family == previous.token_family and successor.access_token.pk == tokens.access_token.pk
    assert successor.family_born == previous.created
    assert AccessToken.objects.get().source_refresh_token_id == previous.pk


def test_a_refresh_token_rotates_once_and_the_second_rotation_writes_nothing(store, app, user):
    previous = issued_refresh_token(store, app, user)
    assert store.rotate_refresh_token(previous, new_tokens(app, user, family=previous.token_family, previous=previous)[0])
    counts = (AccessToken.objects.count(), RefreshToken.objects.count(), IDToken.objects.count())
    second = new_tokens(app, user, id_token=True, family=previous.token_family, previous=previous)[0]
    assert store.rotate_refresh_token(previous, second) is False
    assert (AccessToken.objects.count(), RefreshToken.objects.count(), IDToken.objects.count()) == counts


def test_a_revoked_refresh_token_reads_back_revoked(store, app, user):
    previous = issued_refresh_token(store, app, user)
    store.rotate_refresh_token(previous, new_tokens(app, user, family=previous.token_family, previous=previous)[0])
    assert store.read_refresh_token(previous.token_checksum).revoked is not None


def test_revoking_a_family_revokes_every_refresh_token_and_deletes_their_access_tokens(store, app, user):
    """RFC 9700 §4.14.2: a replay revokes the whole family."""
    first = issued_refresh_token(store, app, user)
    store.rotate_refresh_token(first, new_tokens(app, user, family=first.token_family, previous=first)[0])
    other = issued_refresh_token(store, app, user)
    store.revoke_family(first.token_family)
    assert not RefreshToken.objects.filter(token_family=first.token_family, revoked__isnull=True).exists()
    assert list(AccessToken.objects.values_list("pk", flat=True)) == [other.access_token_id], "other families untouched"


def test_an_id_token_saved_alone_reads_back_by_its_jti(store, app, user):
    row = IDToken(user=user, application=app, scope="openid", expires=timezone.now() + timedelta(hours=1), jti=str(uuid.uuid4()))
    store.save_id_token(row)
    assert store.read_id_token(row.jti).pk == row.pk
    assert store.read_id_token(str(uuid.uuid4())) is None


def test_the_configuration_version_reads_back_as_the_last_change_wrote_it(store, db):
    """Every process compares its copy of the configuration with this value: a change must be
    read back at once, by either store."""
    config_cache.changed()
    first = ConfigVersion.objects.get(pk=1).value
    assert store.read_config_version() == first
    config_cache.changed()
    assert store.read_config_version() == ConfigVersion.objects.get(pk=1).value != first


def test_a_missing_configuration_version_reads_as_none(store, db):
    """No row (a flushed database): None, so that config_cache trusts no copy and reads through."""
    ConfigVersion.objects.all().delete()
    assert store.read_config_version() is None


def test_the_default_store_is_fast_only_where_it_can_run():
    assert [default_store(v) for v in ("postgresql", "sqlite", "mysql", "oracle")] == ["fast", "fast", "orm", "orm"]


# -- concurrency: where the database runs transactions side by side --------------------

concurrent = pytest.mark.skipif(connection.vendor == "sqlite", reason="SQLite runs one writer at a time")


def race(n, call):
    """call() in n threads released together; their results."""
    barrier, results = threading.Barrier(n, timeout=30), []

    def one():
        try:
            barrier.wait()
            results.append(call())
        finally:
            connections.close_all()

    threads = [threading.Thread(target=one) for _ in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results


@concurrent
@pytest.mark.django_db(transaction=True)
def test_of_concurrent_redemptions_of_one_code_exactly_one_wins(store):
    app, user = ApplicationFactory(), UserFactory()
    code = new_code(store, app, user)
    results = race(8, lambda: store.redeem_code(code_digest(code), app, new_tokens(app, user, id_token=True)[0]))
    assert sorted(results) == [False] * 7 + [True]
    assert (AccessToken.objects.count(), RefreshToken.objects.count(), IDToken.objects.count()) == (1, 1, 1)


@concurrent
@pytest.mark.django_db(transaction=True)
def test_of_concurrent_rotations_of_one_refresh_token_exactly_one_wins(store):
    app, user = ApplicationFactory(), UserFactory()
    previous = issued_refresh_token(store, app, user)
    results = race(8, lambda: store.rotate_refresh_token(
        previous, new_tokens(app, user, family=previous.token_family, previous=previous)[0]))
    assert sorted(results) == [False] * 7 + [True]
    assert RefreshToken.objects.filter(revoked__isnull=True).count() == 1 and AccessToken.objects.count() == 1
