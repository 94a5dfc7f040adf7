"""The per-process copy of applications, policy, keys and AK/SK pairs (config_cache.py).

Every worker keeps them in memory for speed; a change made anywhere (another process's
command line, the console) must still hold from the very next request, in every worker.
"""

import hashlib
import secrets

import psycopg
import pytest
import requests
from oauth2_provider.signals import app_authorized

from oidc_provider import config_cache, policy
from oidc_provider.models import Application, GrantPolicy
from tests.helpers import basic_auth

from .live import HTTP_TIMEOUT, is_postgres, live_provider  # noqa: F401

# More requests than the live server has workers x threads, so every worker has cached.
REQUESTS = 24


def _cc(live_provider, client_id, secret):
    return requests.post(
        live_provider.url("/oidc/token"), data={"grant_type": "client_credentials", "scope": "read"},
        auth=(client_id, secret), timeout=HTTP_TIMEOUT,
    )


def _statuses(live_provider, client_id, secret):
    return {_cc(live_provider, client_id, secret).status_code for _ in range(REQUESTS)}


def test_a_policy_change_from_another_process_applies_to_the_next_request_in_every_worker(live_provider):
    app = live_provider.create_app(f"cache-{secrets.token_hex(3)}", "service", grants=["client_credentials"])
    assert _statuses(live_provider, app["client_id"], app["client_secret"]) == {200}
    live_provider.manage("oidc_policy", "set", "--type", "service", "--grant", "client_credentials", "--state", "forbidden")
    try:
        responses = [_cc(live_provider, app["client_id"], app["client_secret"]) for _ in range(REQUESTS)]
        assert {r.status_code for r in responses} == {400}
        assert {r.json()["error"] for r in responses} == {"unauthorized_client"}
    finally:
        live_provider.manage("oidc_policy", "set", "--type", "service", "--grant", "client_credentials", "--state", "recommended")
    assert _statuses(live_provider, app["client_id"], app["client_secret"]) == {200}


def test_a_deleted_application_is_refused_on_the_next_request_in_every_worker(live_provider):
    app = live_provider.create_app(f"cache-{secrets.token_hex(3)}", "service", grants=["client_credentials"])
    assert _statuses(live_provider, app["client_id"], app["client_secret"]) == {200}
    live_provider.manage("oidc_app", "delete", app["client_id"])
    assert _statuses(live_provider, app["client_id"], app["client_secret"]) == {401}


def test_a_revoked_access_key_is_refused_on_the_next_request_in_every_worker(live_provider):
    pair = live_provider.manage_json("accesskey", "create", "--account", f"cache-{secrets.token_hex(3)}", "--scope", "read")
    assert _statuses(live_provider, pair["access_key"], pair["secret_key"]) == {200}
    live_provider.manage("accesskey", "revoke", pair["access_key"])
    assert _statuses(live_provider, pair["access_key"], pair["secret_key"]) == {401}


def test_a_rotated_signing_key_is_published_on_the_next_request_in_every_worker(live_provider):
    def kids():
        documents = [requests.get(live_provider.url("/oidc/.well-known/jwks.json"), timeout=HTTP_TIMEOUT).json() for _ in range(REQUESTS)]
        return {frozenset(k["kid"] for k in d["keys"]) for d in documents}

    before = kids()
    assert len(before) == 1
    new = live_provider.manage_json("oidc_keys", "rotate")
    after = kids()
    assert len(after) == 1 and new["kid"] in next(iter(after)) and next(iter(before)) < next(iter(after))


# -- in one process ------------------------------------------------------------------------


def test_a_regenerated_secret_replaces_the_old_one_at_once(client, db):
    app = Application.objects.create(
        name="Rotating", application_type=policy.SERVICE, grant_types=[policy.CLIENT_CREDENTIALS], client_secret="first-secret",
    )
    body = {"grant_type": "client_credentials", "scope": "read"}
    assert client.post("/oidc/token", body, HTTP_AUTHORIZATION=basic_auth(app.client_id, "first-secret")).status_code == 200
    app.client_secret = "second-secret"
    app.save()
    assert client.post("/oidc/token", body, HTTP_AUTHORIZATION=basic_auth(app.client_id, "first-secret")).status_code == 401
    assert client.post("/oidc/token", body, HTTP_AUTHORIZATION=basic_auth(app.client_id, "second-secret")).status_code == 200


def test_a_bulk_update_applies_once_changed_is_called(client, db):
    app = Application.objects.create(
        name="Bulk", application_type=policy.SERVICE, grant_types=[policy.CLIENT_CREDENTIALS], client_secret="bulk-secret",
    )
    body = {"grant_type": "client_credentials", "scope": "read"}
    auth = basic_auth(app.client_id, "bulk-secret")
    assert client.post("/oidc/token", body, HTTP_AUTHORIZATION=auth).status_code == 200
    # update() sends no signals: a script that uses it says so (docs/install.md).
    GrantPolicy.objects.filter(application_type=policy.SERVICE, grant=policy.CLIENT_CREDENTIALS).update(state=policy.FORBIDDEN)
    config_cache.changed()
    assert client.post("/oidc/token", body, HTTP_AUTHORIZATION=auth).json()["error"] == "unauthorized_client"


def test_app_authorized_is_still_sent_with_the_issued_token(client, db):
    app = Application.objects.create(
        name="Signal", application_type=policy.SERVICE, grant_types=[policy.CLIENT_CREDENTIALS], client_secret="signal-secret",
    )
    seen = []

    def receiver(sender, request, token, **kwargs):
        seen.append(token)

    app_authorized.connect(receiver)
    try:
        response = client.post(
            "/oidc/token", {"grant_type": "client_credentials", "scope": "read"},
            HTTP_AUTHORIZATION=basic_auth(app.client_id, "signal-secret"),
        )
    finally:
        app_authorized.disconnect(receiver)
    assert response.status_code == 200
    assert len(seen) == 1 and seen[0].pk is not None and seen[0].application_id == app.pk
    assert seen[0].token_checksum == hashlib.sha256(response.json()["access_token"].encode()).hexdigest()


@pytest.mark.django_db(transaction=True)
def test_without_the_version_row_nothing_is_cached(client):
    # A flushed database (or one migrated below 0003) has no version row: read through.
    from oidc_provider.models import ConfigVersion

    ConfigVersion.objects.all().delete()
    app = Application.objects.create(
        name="Flushed", application_type=policy.SERVICE, grant_types=[policy.CLIENT_CREDENTIALS], client_secret="flushed-secret",
    )
    ConfigVersion.objects.all().delete()  # the save above wrote one
    body = {"grant_type": "client_credentials", "scope": "read"}
    auth = basic_auth(app.client_id, "flushed-secret")
    assert client.post("/oidc/token", body, HTTP_AUTHORIZATION=auth).status_code == 200
    Application.objects.filter(pk=app.pk).update(grant_types=[])
    assert client.post("/oidc/token", body, HTTP_AUTHORIZATION=auth).json()["error"] == "unauthorized_client"


@pytest.mark.skipif(not is_postgres(), reason="PostgreSQL only: a server that drops the workers' connections")
def test_the_version_read_reconnects_a_dropped_connection_like_the_health_check(live_provider):
    # The version read stands in for CONN_HEALTH_CHECKS' SELECT 1; when the server has
    # dropped every worker's persistent connection, the next requests must still succeed.
    jwks = live_provider.url("/oidc/.well-known/jwks.json")
    assert {requests.get(jwks, timeout=HTTP_TIMEOUT).status_code for _ in range(REQUESTS)} == {200}
    with psycopg.connect(live_provider.postgres.admin_conninfo, autocommit=True, connect_timeout=10) as admin:
        dropped = admin.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            [live_provider.postgres.name],
        ).fetchone()[0]
    assert dropped >= 1
    assert [requests.get(jwks, timeout=HTTP_TIMEOUT).status_code for _ in range(REQUESTS)] == [200] * REQUESTS
