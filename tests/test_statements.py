"""The hot path's prepared statements (oidc_provider/statements.py) write what the ORM writes."""

import datetime
import zoneinfo

import pytest
from django.db import connection, models
from django.utils import timezone
from oauth2_provider.models import get_access_token_model

from oidc_provider import policy, statements
from tests.factories import ApplicationFactory
from tests.helpers import basic_auth

AccessToken = get_access_token_model()

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
