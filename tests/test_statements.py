"""The hot path's prepared statements (oidc_provider/statements.py) write what the ORM writes."""

import datetime
import uuid
import zoneinfo

import pytest
from django.db import connection, models, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from oauth2_provider.models import get_access_token_model, get_id_token_model, get_refresh_token_model

from oidc_provider import policy, statements
from tests.factories import ApplicationFactory
from oidc_provider.validators import _family_born_sql, token_checksum
from tests.helpers import basic_auth, exchange, get_code

AccessToken = get_access_token_model()
RefreshToken = get_refresh_token_model()

TIMESTAMPS = [
    datetime.datetime(2026, 12, 3, 10, 48, 3, 885280, tzinfo=datetime.timezone.utc),
    datetime.datetime(2026, 12, 3, 10, 48, 3, tzinfo=datetime.timezone.utc),  # no microseconds
    datetime.datetime(2026, 3, 29, 2, 30, tzinfo=zoneinfo.ZoneInfo("Europe/Berlin")),
    datetime.datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=zoneinfo.ZoneInfo("Asia/Kolkata")),
]


@pytest.mark.parametrize("value", TIMESTAMPS, ids=str)
def test_a_timestamp_is_converted_as_the_orm_converts_it(value, db):
    field = AccessToken._meta.get_field("expires")
    assert type(field) is models.DateTimeField
    assert statements._prep_save(field, value, connection) == field.get_db_prep_save(value, connection)


def test_other_values_take_the_orm_conversion(db):
    field = AccessToken._meta.get_field("expires")
    assert statements._prep_save(field, None, connection) is None
    scope = AccessToken._meta.get_field("scope")
    assert statements._prep_save(scope, "read write", connection) == scope.get_db_prep_save("read write", connection)


def test_a_token_written_by_the_endpoint_reads_back_with_its_timestamps(client, db):
    app = ApplicationFactory(application_type=policy.SERVICE, redirect_uris="", post_logout_redirect_uris="")
    before = timezone.now()
    response = client.post(
        "/oidc/token", {"grant_type": "client_credentials", "scope": "read"},
        HTTP_AUTHORIZATION=basic_auth(app.client_id, app.plaintext_secret),
    )
    after = timezone.now()
    assert response.status_code == 200
    token = AccessToken.objects.get(application=app)
    assert before <= token.created <= token.updated <= after
    lifetime = datetime.timedelta(seconds=response.json()["expires_in"])
    assert abs(token.expires - (token.created + lifetime)) < datetime.timedelta(seconds=2)
    # The same row, filtered by its timestamp: what was stored compares like the ORM's own value.
    assert AccessToken.objects.filter(pk=token.pk, expires=token.expires, created=token.created).exists()


# -- first(): several join chains, NULL conditions, computed columns, row locks --------


@pytest.fixture
def issued(logged_in, web_app):
    code = get_code(logged_in, web_app, scope="openid profile")["code"]
    body = exchange(logged_in, web_app, code, secret=web_app.plaintext_secret).json()
    return RefreshToken.objects.get(token_checksum=token_checksum(body["refresh_token"]))


def _read(checksum, **kwargs):
    born = (("family_born", (_family_born_sql, RefreshToken._meta.get_field("created"))),)
    return statements.first(RefreshToken, "token_checksum", checksum, related=(("access_token",), ("user", "oidc_subject")),
                            null=("revoked",), annotations=born, **kwargs)


def test_first_joins_several_chains_as_select_related_does(issued, django_assert_num_queries):
    orm = RefreshToken.objects.select_related("access_token", "user__oidc_subject").get(pk=issued.pk)
    with django_assert_num_queries(1):
        row = _read(issued.token_checksum)
        # Everything joined is cached: no further query.
        assert row.access_token.pk == orm.access_token.pk and row.access_token.token_checksum == orm.access_token.token_checksum
        assert row.user.username == orm.user.username
        assert row.user.oidc_subject.value == orm.user.oidc_subject.value
        assert row.access_token.expires == orm.access_token.expires and row.created == orm.created
    # The computed column, converted as the field's own values are (an aware datetime).
    assert row.family_born == RefreshToken.objects.filter(token_family=orm.token_family).order_by("created")[0].created
    assert timezone.is_aware(row.family_born)


def test_first_requires_the_null_fields_to_be_null(issued):
    RefreshToken.objects.filter(pk=issued.pk).update(revoked=timezone.now())
    assert _read(issued.token_checksum) is None
    assert statements.first(RefreshToken, "token_checksum", issued.token_checksum).pk == issued.pk


def test_a_missing_link_leaves_what_hangs_from_it_unread(issued, django_assert_num_queries):
    AccessToken.objects.filter(pk=issued.access_token_id).delete()  # the refresh token's link is cleared
    with django_assert_num_queries(1):
        row = _read(issued.token_checksum)
        assert row.access_token is None and row.user.oidc_subject is not None


def test_first_locks_the_row_inside_a_transaction_where_the_database_can(transactional_db, issued):
    with CaptureQueriesContext(connection) as outside:
        _read(issued.token_checksum, lock=True)
    with transaction.atomic(), CaptureQueriesContext(connection) as inside:
        _read(issued.token_checksum, lock=True)
    assert "FOR UPDATE" not in outside.captured_queries[0]["sql"]  # autocommit: a lock would end at once
    locked = "FOR UPDATE OF t0" in inside.captured_queries[0]["sql"]
    assert locked == connection.features.has_select_for_update


# -- Chain.updating(): an UPDATE decides, DELETEs and INSERTs follow ------------------


def _rotation(issued, revoked_at):
    chain = statements.Chain.updating(
        RefreshToken, {"revoked": revoked_at, "access_token": None}, null=("revoked",), id=issued.pk
    )
    chain.also_delete(AccessToken, id=issued.access_token_id)
    IDToken = get_id_token_model()
    with chain:
        written = statements.insert(IDToken(user=issued.user, application=issued.application, jti=uuid.uuid4(),
                                            expires=revoked_at, scope="openid"))
    return chain, written


def test_an_updating_chain_writes_everything_when_its_row_matches(issued):
    released = RefreshToken._meta.get_field("access_token")
    assert statements.can_chain(connection.alias, None, [get_id_token_model()], updated_model=RefreshToken,
                                also_deleted=[(AccessToken, [released])])
    now = timezone.now()
    chain, written = _rotation(issued, now)
    assert chain.deleted == 1 and written.pk is not None
    rotated = RefreshToken.objects.get(pk=issued.pk)
    assert rotated.revoked == now and rotated.access_token_id is None
    assert not AccessToken.objects.filter(pk=issued.access_token_id).exists()
    assert get_id_token_model().objects.filter(pk=written.pk).exists()


def test_an_updating_chain_writes_nothing_when_its_row_no_longer_matches(issued):
    earlier = timezone.now() - datetime.timedelta(minutes=1)
    RefreshToken.objects.filter(pk=issued.pk).update(revoked=earlier)  # revoked meanwhile
    ids_before = get_id_token_model().objects.count()
    chain, written = _rotation(issued, timezone.now())
    assert chain.deleted == 0 and written.pk is None
    assert RefreshToken.objects.get(pk=issued.pk).revoked == earlier
    assert AccessToken.objects.filter(pk=issued.access_token_id).exists(), "the following DELETE ran"
    assert get_id_token_model().objects.count() == ids_before


def test_a_chain_does_not_delete_rows_something_still_points_at(issued):
    # The access token is a refresh token's: deleting it in a chain needs that link cleared.
    assert not statements.can_chain(connection.alias, None, [], updated_model=RefreshToken,
                                    also_deleted=[(AccessToken, [])])


# -- the statements' cursor -----------------------------------------------------------------

needs_postgresql = pytest.mark.skipif("connection.vendor != 'postgresql'", reason="PostgreSQL's kept cursor")


@needs_postgresql
def test_statements_keep_one_psycopg_cursor_per_connection(db):
    statements.fetch_one(connection, "SELECT 1")
    kept = connection._statement_cursor
    assert statements.fetch_one(connection, "SELECT %s", [2]) == (2,)
    assert connection._statement_cursor is kept and kept.connection is connection.connection


@needs_postgresql
def test_the_kept_cursor_raises_djangos_errors_and_honours_a_broken_transaction(db):
    from django.db import IntegrityError
    from django.db.transaction import TransactionManagementError

    application = ApplicationFactory()
    token = AccessToken(application=application, token="kept-cursor", scope="read", expires=timezone.now())
    token.token_checksum = token_checksum("kept-cursor")
    statements.insert(token)
    twin = AccessToken(application=application, token="kept-cursor", scope="read", expires=timezone.now())
    twin.token_checksum = token_checksum("kept-cursor")
    with pytest.raises(IntegrityError):  # django.db's, not psycopg's
        with transaction.atomic():
            statements.insert(twin)
    with transaction.atomic():
        with pytest.raises(IntegrityError):
            statements.insert(AccessToken(
                application=application, token="kept-cursor", scope="read", expires=timezone.now(),
                token_checksum=token_checksum("kept-cursor"),
            ))
        with pytest.raises(TransactionManagementError):
            statements.fetch_one(connection, "SELECT 1")
        transaction.set_rollback(True)


@needs_postgresql
@pytest.mark.django_db(transaction=True)
def test_the_kept_cursor_follows_a_new_connection():
    statements.fetch_one(connection, "SELECT 1")
    before = connection._statement_cursor
    connection.close()
    assert statements.fetch_one(connection, "SELECT %s", [3]) == (3,)
    assert connection._statement_cursor is not before and connection._statement_cursor.connection is connection.connection


def test_statements_are_seen_by_execute_wrappers_and_query_logging(db):
    sent = []
    with connection.execute_wrapper(lambda execute, sql, *args: sent.append(sql) or execute(sql, *args)):
        statements.fetch_one(connection, "SELECT 1")
    with CaptureQueriesContext(connection) as captured:
        statements.fetch_one(connection, "SELECT 1")
    assert sent == ["SELECT 1"] and [q["sql"] for q in captured.captured_queries] == ["SELECT 1"]


@needs_postgresql
def test_an_insert_checking_the_config_version_refuses_an_overlong_string_as_values_would(db):
    """Its parameters are cast to the columns' types, strings without their length: an
    over-long value is refused, not cut short."""
    from django.db import DataError

    from oidc_provider import config_cache
    from oidc_provider.models import ConfigVersion

    from oauth2_provider.models import get_grant_model

    from tests.factories import UserFactory

    grant = get_grant_model()(
        application=ApplicationFactory(), user=UserFactory(), code="over-long", expires=timezone.now(),
        redirect_uri="https://rp.example.com/cb", scope="openid", code_challenge_method="S256" + "x" * 10,
    )
    config_cache.observe(ConfigVersion.objects.get(pk=1).value, committed=False)  # a copy to assume
    with config_cache.assuming():
        config_cache.get("anything", lambda: "loaded")  # takes the copy: the version is assumed
        assert config_cache.assumed() is not None
        with pytest.raises(DataError), transaction.atomic():
            statements.insert(grant)
