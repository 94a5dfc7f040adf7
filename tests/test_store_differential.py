"""The same protocol scenarios through both stores leave the same rows.

Each scenario runs through the token endpoint once on the ORM store and once on the fast
one; the rows left in the code and token tables are compared after their ids, digests,
timestamps and families are replaced by their order of appearance (what is random or
depends on time is compared by shape: set or unset, equal or not to another row's).
"""

import pytest
from django.db import connection
from django.test import override_settings
from oauth2_provider.models import get_access_token_model, get_grant_model, get_id_token_model, get_refresh_token_model

from oidc_provider import policy
from oidc_provider.models import RedeemedCode
from oidc_provider.store import FAST_VENDORS

from .factories import ApplicationFactory, UserFactory
from .helpers import basic_auth, exchange, get_code

pytestmark = pytest.mark.skipif(connection.vendor not in FAST_VENDORS, reason="the fast store runs on PostgreSQL and SQLite")

TABLES = [get_grant_model(), get_id_token_model(), get_access_token_model(), get_refresh_token_model(), RedeemedCode]
# Columns whose values are random or the time: kept only as "which earlier value is this".
OPAQUE = {"id", "token", "token_checksum", "code", "code_digest", "jti", "token_family", "created", "updated",
          "expires", "revoked", "redeemed_at", "last_used_at"}


def rows_left():
    """Every row of the tables, its opaque values renamed in order of appearance."""
    names = {}

    def rename(column, value):
        if value is None or value == "":
            return value
        return names.setdefault((column.removesuffix("_id") if column != "id" else "id", str(value)), len(names))

    snapshot = {}
    for model in TABLES:
        rows = []
        for row in model.objects.order_by("pk").values():
            rows.append({
                column: rename(column, value) if column in OPAQUE or column.endswith("_id") else value
                for column, value in sorted(row.items())
            })
        snapshot[model._meta.label] = rows
    return snapshot


def refresh(client, app, refresh_token):
    return client.post("/oidc/token", {"grant_type": "refresh_token", "refresh_token": refresh_token},
                       HTTP_AUTHORIZATION=basic_auth(app.client_id, app.plaintext_secret))


def code_exchange_with_refresh(client, app, user):
    client.force_login(user)
    return [exchange(client, app, get_code(client, app)["code"], secret=app.plaintext_secret).status_code]


def code_exchange_without_refresh(client, app, user):
    policy_app = ApplicationFactory(application_type=policy.WEB, grant_types=["authorization_code"])
    client.force_login(user)
    return [exchange(client, policy_app, get_code(client, policy_app)["code"], secret=policy_app.plaintext_secret).status_code]


def refresh_rotation(client, app, user):
    client.force_login(user)
    first = exchange(client, app, get_code(client, app)["code"], secret=app.plaintext_secret).json()
    second = refresh(client, app, first["refresh_token"])
    third = refresh(client, app, second.json()["refresh_token"])
    return [second.status_code, third.status_code]


def code_replay(client, app, user):
    client.force_login(user)
    code = get_code(client, app)["code"]
    return [exchange(client, app, code, secret=app.plaintext_secret).status_code for _ in range(2)]


def code_replay_without_refresh(client, app, user):
    other = ApplicationFactory(application_type=policy.WEB, grant_types=["authorization_code"])
    client.force_login(user)
    code = get_code(client, other)["code"]
    return [exchange(client, other, code, secret=other.plaintext_secret).status_code for _ in range(2)]


def refresh_replay(client, app, user):
    client.force_login(user)
    first = exchange(client, app, get_code(client, app)["code"], secret=app.plaintext_secret).json()
    rotated = refresh(client, app, first["refresh_token"])
    replayed = refresh(client, app, first["refresh_token"])
    after = refresh(client, app, rotated.json()["refresh_token"])
    return [rotated.status_code, replayed.status_code, after.status_code]


def client_credentials(client, app, user):
    service = ApplicationFactory(application_type=policy.SERVICE, redirect_uris="", post_logout_redirect_uris="")
    return [client.post("/oidc/token", {"grant_type": "client_credentials", "scope": "read"},
                        HTTP_AUTHORIZATION=basic_auth(service.client_id, service.plaintext_secret)).status_code
            for _ in range(2)]


def revoke_family(client, app, user):
    client.force_login(user)
    first = exchange(client, app, get_code(client, app)["code"], secret=app.plaintext_secret).json()
    refresh(client, app, first["refresh_token"])
    revoked = client.post("/oidc/token/revoke", {"token": first["access_token"]},
                          HTTP_AUTHORIZATION=basic_auth(app.client_id, app.plaintext_secret))
    return [revoked.status_code]


SCENARIOS = [code_exchange_with_refresh, code_exchange_without_refresh, refresh_rotation, code_replay,
             code_replay_without_refresh, refresh_replay, client_credentials, revoke_family]


def run(settings, client, scenario, store):
    for model in reversed(TABLES):
        model.objects.all().delete()
    with override_settings(OIDC_PROVIDER={**settings.OIDC_PROVIDER, "STORE": store}):
        app = ApplicationFactory(application_type=policy.WEB, grant_types=["authorization_code", "refresh_token"])
        statuses = scenario(client, app, UserFactory())
        return statuses, rows_left()


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.__name__)
def test_both_stores_leave_the_same_rows(scenario, settings, client, db):
    orm = run(settings, client, scenario, "orm")
    fast = run(settings, client, scenario, "fast")
    assert fast == orm
    assert any(orm[1].values()), "the scenario wrote something to compare"
