"""Signing keys: rotation keeps issued tokens verifiable; retired keys leave JWKS."""

import jwt
from cryptography.hazmat.primitives import serialization

from oidc_provider import keys
from oidc_provider.models import SigningKey
from tests.helpers import authorize, exchange, get_code, query_of, verify_id_token


def _id_token(client, app):
    return exchange(client, app, get_code(client, app)["code"], secret=app.plaintext_secret).json()["id_token"]


def test_a_signing_key_exists_after_migrate(db):
    assert SigningKey.objects.filter(status=SigningKey.ACTIVE).count() == 1


def test_rotation_keeps_old_tokens_verifiable_and_signs_new_ones_with_the_new_key(logged_in, web_app):
    old_token = _id_token(logged_in, web_app)
    old_kid = jwt.get_unverified_header(old_token)["kid"]
    new = keys.rotate()
    assert new.kid != old_kid
    new_token = _id_token(logged_in, web_app)
    assert jwt.get_unverified_header(new_token)["kid"] == new.kid
    # Both verify against the published JWKS.
    verify_id_token(logged_in, old_token, web_app.client_id)
    verify_id_token(logged_in, new_token, web_app.client_id)
    assert SigningKey.objects.get(kid=old_kid).status == SigningKey.INACTIVE


def test_id_token_hint_signed_by_the_previous_key_still_works(logged_in, web_app):
    """DOT checked hints against the active key only; after a rotation they must still verify."""
    hint = _id_token(logged_in, web_app)
    keys.rotate()
    assert "code" in query_of(authorize(logged_in, web_app, prompt="none", id_token_hint=hint))


def _published_kids(client):
    return [k["kid"] for k in client.get("/oidc/.well-known/jwks.json").json()["keys"]]


def test_retired_key_leaves_jwks_and_the_active_key_cannot_be_retired(client, db):
    import pytest

    first = SigningKey.objects.get(status=SigningKey.ACTIVE)
    with pytest.raises(ValueError):
        keys.retire(first)
    keys.rotate()
    first.refresh_from_db()
    keys.retire(first)
    active = SigningKey.objects.get(status=SigningKey.ACTIVE)
    upcoming = SigningKey.objects.get(status=SigningKey.NEXT)
    assert sorted(_published_kids(client)) == sorted([active.kid, upcoming.kid])


def test_the_next_key_is_published_before_it_signs(logged_in, web_app):
    """A rotation promotes a key relying parties already have, and announces the one after it."""
    upcoming = SigningKey.objects.get(status=SigningKey.NEXT)
    active = SigningKey.objects.get(status=SigningKey.ACTIVE)
    assert sorted(_published_kids(logged_in)) == sorted([active.kid, upcoming.kid])
    assert jwt.get_unverified_header(_id_token(logged_in, web_app))["kid"] == active.kid

    new = keys.rotate()
    assert new.kid == upcoming.kid
    assert jwt.get_unverified_header(_id_token(logged_in, web_app))["kid"] == upcoming.kid
    after = SigningKey.objects.get(status=SigningKey.NEXT)
    assert after.kid not in (active.kid, upcoming.kid)
    assert sorted(_published_kids(logged_in)) == sorted([active.kid, upcoming.kid, after.kid])


def test_retiring_the_next_key_announces_another(client, db):
    upcoming = SigningKey.objects.get(status=SigningKey.NEXT)
    keys.retire(upcoming)
    replacement = SigningKey.objects.get(status=SigningKey.NEXT)
    assert replacement.kid != upcoming.kid
    kids = _published_kids(client)
    assert upcoming.kid not in kids and replacement.kid in kids
    assert keys.rotate().kid == replacement.kid


def test_rotation_without_a_next_key_signs_with_a_new_one_and_announces_another(logged_in, web_app):
    """A database from before next keys (or edited by hand) still rotates."""
    SigningKey.objects.filter(status=SigningKey.NEXT).delete()
    new = keys.rotate()
    assert jwt.get_unverified_header(_id_token(logged_in, web_app))["kid"] == new.kid
    assert SigningKey.objects.filter(status=SigningKey.NEXT).exclude(kid=new.kid).count() == 1


def test_private_key_is_parsed_once_per_process(logged_in, web_app, monkeypatch):
    keys._parsed.clear()
    calls = []
    real = serialization.load_pem_private_key

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(serialization, "load_pem_private_key", counting)
    for _ in range(3):
        verify_id_token(logged_in, _id_token(logged_in, web_app), web_app.client_id)
    # The active key and the announced next one, each once.
    assert len(calls) == SigningKey.objects.exclude(status=SigningKey.RETIRED).count() == 2
