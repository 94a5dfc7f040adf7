"""Client credentials for service applications and AK/SK pairs (RFC 6749 §4.4)."""

import json
import re
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from oauth2_provider.models import get_access_token_model

from oidc_provider import access_keys, policy, secrets
from oidc_provider.models import AccessAccount, AccessKey
from tests.factories import ApplicationFactory
from tests.helpers import basic_auth, set_policy


@pytest.fixture
def service_app(db):
    return ApplicationFactory(application_type=policy.SERVICE, redirect_uris="", post_logout_redirect_uris="")


def _cc(client, client_id, secret, scope=None, body=False):
    data = {"grant_type": "client_credentials"}
    if scope is not None:
        data["scope"] = scope
    if body:
        data.update(client_id=client_id, client_secret=secret)
        return client.post("/oidc/token", data)
    return client.post("/oidc/token", data, HTTP_AUTHORIZATION=basic_auth(client_id, secret))


def _create_key(account="billing", scopes=("read",)):
    out = StringIO()
    call_command("accesskey", "create", "--account", account, *[a for s in scopes for a in ("--scope", s)], "--json", stdout=out)
    return json.loads(out.getvalue())


def test_service_app_gets_an_access_token_only(client, service_app):
    response = _cc(client, service_app.client_id, service_app.plaintext_secret, scope="read write")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["access_token"] and body["scope"] == "read write"
    assert "refresh_token" not in body and "id_token" not in body
    assert response["Cache-Control"] == "no-store"


def test_access_tokens_are_256_random_bits_and_never_repeat(client, service_app):
    tokens = [_cc(client, service_app.client_id, service_app.plaintext_secret).json()["access_token"] for _ in range(20)]
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{43}", token) for token in tokens), tokens
    assert len(set(tokens)) == len(tokens)


def test_service_app_asking_openid_gets_an_access_token_without_it(client, service_app):
    """RFC 6749 §4.4.3: client credentials issue an access token only; with no end user there is
    no identity, so openid is dropped from the granted scope (RFC 6749 §5.1: scope says so)."""
    response = _cc(client, service_app.client_id, service_app.plaintext_secret, scope="openid read")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["scope"] == "read" and "id_token" not in body and "refresh_token" not in body
    assert get_access_token_model().objects.get().scope == "read"


def test_service_app_asking_openid_alone_gets_a_token_whose_response_has_no_empty_scope(client, service_app):
    """RFC 6749 §5.1: scope is optional in the response; nothing granted is not sent as ""."""
    response = _cc(client, service_app.client_id, service_app.plaintext_secret, scope="openid")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["access_token"] and "scope" not in body and "id_token" not in body


def test_service_app_wrong_secret_is_invalid_client(client, service_app):
    response = _cc(client, service_app.client_id, "nope", scope="read")
    assert response.status_code == 401 and response.json()["error"] == "invalid_client"


def test_web_app_without_client_credentials_is_unauthorized_client(client, web_app):
    response = _cc(client, web_app.client_id, web_app.plaintext_secret, scope="read")
    assert response.json()["error"] == "unauthorized_client"


def test_client_credentials_refused_once_the_policy_forbids_it(client, service_app):
    set_policy(policy.SERVICE, policy.CLIENT_CREDENTIALS, policy.FORBIDDEN)
    assert _cc(client, service_app.client_id, service_app.plaintext_secret, scope="read").json()["error"] == "unauthorized_client"


def test_accesskey_cli_creates_account_and_pair_sk_shown_once_stored_hashed(db):
    data = _create_key("billing", ("read",))
    assert data["account"] == "billing" and data["scopes"] == ["read"]
    assert data["access_key"].startswith("AK") and len(data["secret_key"]) >= 43
    key = AccessKey.objects.get(access_key=data["access_key"])
    assert key.secret_key != data["secret_key"] and secrets.verify(data["secret_key"], key.secret_key)


@pytest.mark.parametrize("body", [False, True])
def test_ak_sk_pair_gets_a_token_within_its_permissions(client, db, body):
    data = _create_key("billing", ("read",))
    response = _cc(client, data["access_key"], data["secret_key"], scope="read", body=body)
    assert response.status_code == 200, response.content
    tokens = response.json()
    assert tokens["scope"] == "read" and "refresh_token" not in tokens and "id_token" not in tokens
    assert AccessKey.objects.get(access_key=data["access_key"]).last_used_at is not None


def test_ak_sk_scope_beyond_permissions_is_invalid_scope(client, db):
    data = _create_key("billing", ("read",))
    response = _cc(client, data["access_key"], data["secret_key"], scope="read write")
    assert response.status_code == 400 and response.json()["error"] == "invalid_scope"
    assert not get_access_token_model().objects.exists()


def test_ak_sk_openid_scope_is_invalid_scope(client, db):
    data = _create_key("billing", ("read",))
    assert _cc(client, data["access_key"], data["secret_key"], scope="openid").json()["error"] == "invalid_scope"


def test_ak_sk_wrong_or_revoked_secret_is_invalid_client(client, db):
    data = _create_key("billing", ("read",))
    assert _cc(client, data["access_key"], "wrong", scope="read").status_code == 401
    call_command("accesskey", "revoke", data["access_key"], stdout=StringIO())
    response = _cc(client, data["access_key"], data["secret_key"], scope="read")
    assert response.status_code == 401 and response.json()["error"] == "invalid_client"


def test_revoking_one_pair_leaves_the_accounts_other_pairs_working(client, db):
    first = _create_key("billing", ("read",))
    second = _create_key("billing")
    call_command("accesskey", "revoke", first["access_key"], stdout=StringIO())
    assert _cc(client, second["access_key"], second["secret_key"], scope="read").status_code == 200


def test_rotating_a_pair_issues_a_new_one_and_revokes_the_old(client, db):
    first = _create_key("billing", ("read",))
    out = StringIO()
    call_command("accesskey", "rotate", first["access_key"], "--json", stdout=out)
    rotated = json.loads(out.getvalue())
    assert _cc(client, rotated["access_key"], rotated["secret_key"], scope="read").status_code == 200
    assert _cc(client, first["access_key"], first["secret_key"], scope="read").status_code == 401


def test_inactive_account_keys_are_refused(client, db):
    data = _create_key("billing", ("read",))
    account = AccessAccount.objects.get(name="billing")
    account.is_active = False
    account.save()
    assert _cc(client, data["access_key"], data["secret_key"], scope="read").status_code == 401


def test_ak_sk_cannot_use_other_grants(client, db):
    data = _create_key("billing", ("read",))
    response = client.post(
        "/oidc/token", {"grant_type": "password", "username": "x", "password": "y"},
        HTTP_AUTHORIZATION=basic_auth(data["access_key"], data["secret_key"]),
    )
    assert response.json()["error"] == "unauthorized_client"


def test_accesskey_cli_refusals(db):
    with pytest.raises(CommandError, match="end-user scope"):
        call_command("accesskey", "create", "--account", "x", "--scope", "openid", stdout=StringIO())
    with pytest.raises(CommandError, match="Unknown scope"):
        call_command("accesskey", "create", "--account", "x", "--scope", "nuke", stdout=StringIO())
    assert not AccessAccount.objects.filter(name="x").exists()
    with pytest.raises(CommandError, match="No access key"):
        call_command("accesskey", "revoke", "AKNOPE", stdout=StringIO())


def test_sk_is_never_in_the_list_output(db):
    data = _create_key("billing", ("read",))
    out = StringIO()
    call_command("accesskey", "list", "--json", stdout=out)
    assert data["secret_key"] not in out.getvalue() and data["access_key"] in out.getvalue()
    assert access_keys.is_access_key(data["access_key"])
