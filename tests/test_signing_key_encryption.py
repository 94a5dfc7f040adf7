"""Private signing keys are encrypted at rest under the key-encryption key (issue 24, "Secrets at rest").

The PEM column holds Fernet tokens under OIDC_PROVIDER["KEY_ENCRYPTION_KEYS"] (the first
encrypts, all decrypt); `oidc_keys reencrypt` moves every key under the first, so a
key-encryption key is rotated by prepending the new one, re-encrypting, dropping the old one.
An admin can still export a key and import one, and both are audited.
"""

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import jwt
import pytest
from cryptography.fernet import Fernet, MultiFernet
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from console.models import AuditEvent
from oidc_provider import keys
from oidc_provider.models import SigningKey
from tests.helpers import exchange, get_code, verify_id_token

REPO = Path(__file__).resolve().parent.parent


def _stored_pems():
    """The private_key column exactly as the database holds it."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT kid, private_key FROM {SigningKey._meta.db_table}")
        return dict(cursor.fetchall())


def _id_token(client, app):
    return exchange(client, app, get_code(client, app)["code"], secret=app.plaintext_secret).json()["id_token"]


def _run(*args):
    stdout, stderr = io.StringIO(), io.StringIO()
    call_command(*args, stdout=stdout, stderr=stderr)
    return stdout.getvalue()


def _use_keks(settings, *kek):
    """Configure the key-encryption keys and start over as a new process would (nothing parsed yet)."""
    settings.OIDC_PROVIDER = {**settings.OIDC_PROVIDER, "KEY_ENCRYPTION_KEYS": list(kek)}
    keys._parsed.clear()


def _rsa_pem(bits=2048):
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    return key, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def test_the_database_holds_no_private_key_in_clear(db):
    """Issue 24: a signing key's private PEM must not be readable from the table."""
    keys.rotate()
    stored = _stored_pems()
    assert len(stored) >= 3
    for value in stored.values():
        assert "PRIVATE KEY" not in value and "-----BEGIN" not in value


def test_id_tokens_signed_with_an_encrypted_key_verify_against_the_jwks(logged_in, web_app):
    """OIDC Core 10.1: the ID token's signature verifies with the published key named by `kid`."""
    keys._parsed.clear()
    token = _id_token(logged_in, web_app)
    claims = verify_id_token(logged_in, token, web_app.client_id)
    assert claims["aud"] == web_app.client_id
    assert jwt.get_unverified_header(token)["kid"] == SigningKey.objects.get(status=SigningKey.ACTIVE).kid


def test_signing_decrypts_each_key_once_per_process_not_per_request(logged_in, web_app, monkeypatch):
    """The per-process cache of parsed keys holds: no token request decrypts a key again."""
    keys._parsed.clear()
    calls = []
    real = MultiFernet.decrypt

    def counting(self, token, *args, **kwargs):
        calls.append(1)
        return real(self, token, *args, **kwargs)

    monkeypatch.setattr(MultiFernet, "decrypt", counting)
    _id_token(logged_in, web_app)
    first = len(calls)
    assert first >= 1
    for _ in range(3):
        _id_token(logged_in, web_app)
    assert len(calls) == first


def test_a_new_kek_put_first_encrypts_and_the_old_one_still_decrypts_until_reencrypt(logged_in, web_app, settings):
    """Rotation of the key-encryption key: prepend the new one, run reencrypt, drop the old one."""
    old = settings.OIDC_PROVIDER["KEY_ENCRYPTION_KEYS"][0]
    new = Fernet.generate_key().decode()
    before = _stored_pems()

    _use_keks(settings, new, old)
    verify_id_token(logged_in, _id_token(logged_in, web_app), web_app.client_id)

    out = json.loads(_run("oidc_keys", "reencrypt", "--json"))
    assert out == {"reencrypted": len(before)}
    after = _stored_pems()
    assert after.keys() == before.keys()
    for kid, value in after.items():
        assert value != before[kid]
        pem = Fernet(new.encode()).decrypt(value.encode())  # under the new key alone
        assert b"PRIVATE KEY" in pem

    _use_keks(settings, new)
    token = _id_token(logged_in, web_app)
    verify_id_token(logged_in, token, web_app.client_id)
    assert AuditEvent.objects.filter(action="signing_key.reencrypted").exists()


def test_without_the_kek_a_key_was_encrypted_with_reencrypt_fails_clearly_and_changes_nothing(db, settings):
    """A wrong key-encryption key is reported with what to configure; no key is rewritten."""
    before = _stored_pems()
    _use_keks(settings, Fernet.generate_key().decode())
    with pytest.raises(CommandError, match=r"cannot be decrypted with any of OIDC_PROVIDER\['KEY_ENCRYPTION_KEYS'\]"):
        _run("oidc_keys", "reencrypt")
    assert _stored_pems() == before


def test_a_kek_that_is_not_a_fernet_key_is_a_system_check_error(db, settings):
    """`manage.py check` names the setting and how to make a valid key."""
    from django.core.checks import run_checks

    _use_keks(settings, "not-a-key")
    errors = [e for e in run_checks() if e.id == "oidc_provider.E009"]
    assert errors and "Fernet.generate_key" in errors[0].msg


def test_a_kek_that_cannot_decrypt_the_keys_is_a_database_check_error(db, settings):
    from django.core.checks import run_checks

    _use_keks(settings, Fernet.generate_key().decode())
    errors = [e for e in run_checks(databases=["default"]) if e.id == "oidc_provider.E010"]
    assert errors and "KEY_ENCRYPTION_KEYS" in errors[0].msg


# -- export and import -------------------------------------------------------------------------


def test_export_writes_the_private_key_to_a_new_0600_file_and_it_matches_the_jwks(client, db, tmp_path):
    """An admin may take a key out (backup, move): the PEM's public half is the published key."""
    active = SigningKey.objects.get(status=SigningKey.ACTIVE)
    target = tmp_path / "active.pem"
    out = json.loads(_run("oidc_keys", "export", "--out", str(target), "--json", "--", active.kid))
    assert out["kid"] == active.kid and out["file"] == str(target)
    assert os.stat(target).st_mode & 0o777 == 0o600
    private_key = serialization.load_pem_private_key(target.read_bytes(), password=None)
    published = {k["kid"]: k for k in client.get("/oidc/.well-known/jwks.json").json()["keys"]}
    assert keys.public_jwk(private_key.public_key()) == {k: published[active.kid][k] for k in ("kty", "n", "e")}
    event = AuditEvent.objects.get(action="signing_key.exported")
    assert event.target_label == active.kid


def test_export_to_stdout_prints_the_pem(db):
    active = SigningKey.objects.get(status=SigningKey.ACTIVE)
    assert _run("oidc_keys", "export", "--", active.kid).startswith("-----BEGIN PRIVATE KEY-----")


def test_export_refuses_an_existing_file_and_an_unknown_kid(db, tmp_path):
    active = SigningKey.objects.get(status=SigningKey.ACTIVE)
    existing = tmp_path / "taken.pem"
    existing.write_text("keep me")
    with pytest.raises(CommandError, match="already exists"):
        _run("oidc_keys", "export", "--out", str(existing), "--", active.kid)
    assert existing.read_text() == "keep me"
    with pytest.raises(CommandError, match="No signing key with kid 'nope'"):
        _run("oidc_keys", "export", "nope")
    assert not AuditEvent.objects.filter(action="signing_key.exported").exists()


def test_an_imported_key_is_stored_encrypted_published_and_can_be_made_to_sign(logged_in, web_app, tmp_path):
    """A key made elsewhere is imported as 'next' (published before it signs), then rotated in."""
    private_key, pem = _rsa_pem()
    source = tmp_path / "imported.pem"
    source.write_bytes(pem)
    out = json.loads(_run("oidc_keys", "import", str(source), "--json"))
    kid = out["kid"]
    assert out["status"] == SigningKey.NEXT and kid in out["published_kids"]
    assert kid == keys.thumbprint(keys.public_jwk(private_key.public_key()))
    assert "PRIVATE KEY" not in _stored_pems()[kid]
    assert kid in [k["kid"] for k in logged_in.get("/oidc/.well-known/jwks.json").json()["keys"]]
    assert AuditEvent.objects.get(action="signing_key.imported").target_label == kid

    for older in SigningKey.objects.filter(status=SigningKey.NEXT).exclude(kid=kid):
        _run("oidc_keys", "retire", "--", older.kid)
    _run("oidc_keys", "rotate")
    token = _id_token(logged_in, web_app)
    assert jwt.get_unverified_header(token)["kid"] == kid
    jwt.decode(token, private_key.public_key(), algorithms=["RS256"], audience=web_app.client_id)


@pytest.mark.parametrize(
    "content, message",
    [
        (b"not a key at all", "not an unencrypted PEM private key"),
        (_rsa_pem(1024)[1], "at least 2048"),
    ],
)
def test_import_refuses_what_is_not_a_usable_rsa_key_and_changes_nothing(db, tmp_path, content, message):
    source = tmp_path / "bad.pem"
    source.write_bytes(content)
    before = _stored_pems()
    with pytest.raises(CommandError, match=message):
        _run("oidc_keys", "import", str(source))
    assert _stored_pems() == before


def test_import_refuses_a_key_already_stored_and_a_missing_file(db, tmp_path):
    active = SigningKey.objects.get(status=SigningKey.ACTIVE)
    exported = tmp_path / "again.pem"
    _run("oidc_keys", "export", "--out", str(exported), "--", active.kid)
    before = _stored_pems()
    with pytest.raises(CommandError, match=f"already stored, as kid {active.kid}"):
        _run("oidc_keys", "import", str(exported))
    with pytest.raises(CommandError, match="Cannot read"):
        _run("oidc_keys", "import", str(tmp_path / "missing.pem"))
    assert _stored_pems() == before


# -- upgrading --------------------------------------------------------------------------------


def test_migrating_encrypts_the_plaintext_keys_an_older_version_stored(scratch_database_url, tmp_path):  # noqa: F811
    """The data migration leaves no PEM in clear and keeps every kid (tokens keep verifying)."""
    env = {**os.environ, "DATABASE_URL": scratch_database_url, "DJANGO_DATA_DIR": str(tmp_path)}

    def manage(*args):
        result = subprocess.run([sys.executable, "manage.py", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    manage("migrate", "-v0")
    manage("migrate", "oidc_provider", "0003", "-v0")  # backwards: the keys are decrypted
    as_before = json.loads(manage("shell", "-v0", "-c", (
        "import json; from oidc_provider.models import SigningKey;"
        "print(json.dumps(dict(SigningKey.objects.values_list('kid', 'private_key'))))"
    )))
    assert as_before and all(v.startswith("-----BEGIN PRIVATE KEY-----") for v in as_before.values())

    manage("migrate", "-v0")
    after = json.loads(manage("shell", "-v0", "-c", (
        "import json; from oidc_provider import keys; from oidc_provider.models import SigningKey;"
        "rows = dict(SigningKey.objects.values_list('kid', 'private_key'));"
        "print(json.dumps({kid: [value, keys.decrypt_pem(value, kid)] for kid, value in rows.items()}))"
    )))
    assert after.keys() == as_before.keys()
    for kid, (stored, decrypted) in after.items():
        assert "PRIVATE KEY" not in stored
        assert decrypted == as_before[kid]
