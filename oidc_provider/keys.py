"""Signing keys: create, rotate, retire; the per-process cache of parsed keys; the JWKS.

A key's life: ``next`` (published, not yet signing) -> ``active`` (signs new tokens) ->
``inactive`` (published so tokens it signed keep verifying) -> ``retired`` (gone from JWKS).
There is always a ``next`` key, as Okta and Google publish theirs ahead of use (OIDC Core
§10.1.1): a rotation promotes a key relying parties have had in their JWKS for as long as
the previous rotation is old, so it never shows them an unknown ``kid``, whatever they cache.
Parsing a PEM is slow, so each key is parsed once per process and kept by ``kid``.

Private keys are stored encrypted (Fernet) under the key-encryption keys of
``OIDC_PROVIDER["KEY_ENCRYPTION_KEYS"]``: a copy of the database, or a backup, signs nothing
without them. A key is decrypted when it is parsed, so signing never decrypts per request.
"""

import base64
import hashlib
import json
import threading
from dataclasses import dataclass, field

import jwt
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import IntegrityError, connections, transaction
from django.utils.crypto import salted_hmac
from django.utils import timezone
from jwcrypto import jwk

from . import config_cache, signals
from .conf import oidc_settings
from .models import ConfigVersion, SigningKey

ALGORITHM = "RS256"
_parsed = {}
_lock = threading.Lock()


@dataclass
class LoadedKey:
    kid: str
    private_key: rsa.RSAPrivateKey
    public_jwk: dict
    _jwcrypto: object = field(default=None, repr=False)

    def sign(self, claims, headers=None):
        return jwt.encode(claims, self.private_key, algorithm=ALGORITHM, headers={"kid": self.kid, **(headers or {})})

    @property
    def jwcrypto_key(self):
        """The same key as jwcrypto wants it, for django-oauth-toolkit code paths that use it."""
        if self._jwcrypto is None:
            self._jwcrypto = jwk.JWK.from_pyca(self.private_key)
        return self._jwcrypto


def _b64(n):
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def public_jwk(public_key):
    numbers = public_key.public_numbers()
    return {"kty": "RSA", "n": _b64(numbers.n), "e": _b64(numbers.e)}


def thumbprint(jwk_dict):
    """RFC 7638 JWK thumbprint, our kid."""
    canonical = json.dumps({k: jwk_dict[k] for k in ("e", "kty", "n")}, separators=(",", ":"), sort_keys=True)
    return base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).rstrip(b"=").decode()


# -- encryption at rest ---------------------------------------------------------------------

PLAINTEXT_PREFIX = "-----BEGIN"
_fernets = {}


def key_encryption_keys():
    """The configured key-encryption keys, first (the one that encrypts) first."""
    value = oidc_settings.KEY_ENCRYPTION_KEYS
    if value is None:
        derived = salted_hmac("oidc_provider.keys.key-encryption-key", "", secret=settings.SECRET_KEY, algorithm="sha256")
        return [base64.urlsafe_b64encode(derived.digest()).decode()]
    if isinstance(value, (str, bytes)):
        value = value.decode() if isinstance(value, bytes) else value
        value = value.split(",")
    return [k.decode().strip() if isinstance(k, bytes) else str(k).strip() for k in value if str(k).strip()]


def _fernet():
    configured = tuple(key_encryption_keys())
    fernet = _fernets.get(configured)
    if fernet is None:
        if not configured:
            raise ImproperlyConfigured(
                "OIDC_PROVIDER['KEY_ENCRYPTION_KEYS'] is empty; set at least one key "
                "(make one with: python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())')."
            )
        try:
            fernet = MultiFernet([Fernet(k) for k in configured])
        except (ValueError, TypeError):
            raise ImproperlyConfigured(
                "OIDC_PROVIDER['KEY_ENCRYPTION_KEYS'] holds a value that is not a Fernet key (32 random bytes, "
                "url-safe base64); make one with: python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())'."
            ) from None
        _fernets.clear()
        _fernets[configured] = fernet
    return fernet


def is_encrypted(stored):
    return not stored.lstrip().startswith(PLAINTEXT_PREFIX)


def encrypt_pem(pem):
    """A private key's PEM as it is stored: encrypted under the first key-encryption key."""
    return _fernet().encrypt(pem.encode()).decode()


def decrypt_pem(stored, kid=None):
    """The PEM of a stored private key; a plaintext PEM (not yet migrated) is returned as is."""
    if not is_encrypted(stored):
        return stored
    try:
        return _fernet().decrypt(stored.encode()).decode()
    except InvalidToken:
        raise ImproperlyConfigured(
            f"The private key of signing key {kid or '?'} cannot be decrypted with any of "
            "OIDC_PROVIDER['KEY_ENCRYPTION_KEYS']. Configure the key-encryption key it was encrypted "
            "with (keep it after the new one until 'manage.py oidc_keys reencrypt' has run)."
        ) from None


def reencrypt(actor=None):
    """Encrypt every stored private key under the first key-encryption key; returns how many.

    Plaintext PEMs are encrypted too. After it, the older key-encryption keys can be dropped.
    Nothing changes unless every key decrypts.
    """
    with transaction.atomic():
        rows = list(SigningKey.objects.select_for_update().order_by("pk"))
        plaintext = [decrypt_pem(key.private_key, key.kid) for key in rows]
        for key, pem in zip(rows, plaintext):
            key.private_key = encrypt_pem(pem)
            key.save(update_fields=["private_key"])  # and every process's config cache follows
    signals.signing_keys_reencrypted.send(sender=SigningKey, count=len(rows), actor=actor)
    return len(rows)


def private_key_from_pem(pem):
    """A parsed RSA private key from PEM text (bytes or str); ValueError if it is not one."""
    if isinstance(pem, str):
        pem = pem.encode()
    try:
        private_key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError):
        raise ValueError("This is not an unencrypted PEM private key (PKCS#8 or PKCS#1).") from None
    if not isinstance(private_key, rsa.RSAPrivateKey):
        raise ValueError(f"Only RSA keys sign with {ALGORITHM}; this is a {type(private_key).__name__.lstrip('_')}.")
    if private_key.key_size < 2048:
        raise ValueError(f"The key has {private_key.key_size} bits; RS256 keys need at least 2048.")
    return private_key


def _pkcs8(private_key):
    return private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def export_pem(key, actor=None):
    """The private key of a SigningKey row as an unencrypted PKCS#8 PEM (for a backup or a move)."""
    pem = decrypt_pem(key.private_key, key.kid)
    signals.signing_key_exported.send(sender=SigningKey, key=key, actor=actor)
    return pem


def import_pem(pem, status="next", actor=None):
    """Store an existing RSA private key (PEM) as a new signing key; returns the row.

    It is published as ``next`` by default, so relying parties see it before it signs;
    ``inactive`` keeps verifying what it signed elsewhere without ever signing here.
    Raises ValueError for anything that is not a usable key, or one already stored.
    """
    if status not in (SigningKey.NEXT, SigningKey.INACTIVE):
        raise ValueError("An imported key starts as 'next' or 'inactive'; rotate to make it active.")
    private_key = private_key_from_pem(pem)
    kid = thumbprint(public_jwk(private_key.public_key()))
    if SigningKey.objects.filter(kid=kid).exists():
        raise ValueError(f"This key is already stored, as kid {kid}.")
    key = SigningKey.objects.create(kid=kid, private_key=encrypt_pem(_pkcs8(private_key)), status=status)
    signals.signing_key_imported.send(sender=SigningKey, key=key, actor=actor)
    return key


def _load(kid, stored):
    with _lock:
        loaded = _parsed.get(kid)
        if loaded is None:
            pem = decrypt_pem(stored, kid)
            private_key = serialization.load_pem_private_key(pem.encode(), password=None)
            jwk_dict = public_jwk(private_key.public_key())
            jwk_dict.update({"kid": kid, "alg": ALGORITHM, "use": "sig"})
            loaded = _parsed[kid] = LoadedKey(kid=kid, private_key=private_key, public_jwk=jwk_dict)
        return loaded


def generate(status="active"):
    """Create and store a new 2048-bit RSA key; returns the SigningKey row."""
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    kid = thumbprint(public_jwk(private_key.public_key()))
    now = timezone.now()
    return SigningKey.objects.create(
        kid=kid, private_key=encrypt_pem(_pkcs8(private_key)), status=status, activated_at=now if status == "active" else None
    )


def ensure_active_key():
    """The active key row, creating it and the next key on first start."""
    key = SigningKey.objects.filter(status=SigningKey.ACTIVE).first()
    if key is None:
        try:
            with transaction.atomic():
                key = generate()
        except IntegrityError:  # another process made it first; the constraint allows one
            key = SigningKey.objects.get(status=SigningKey.ACTIVE)
    ensure_next_key()
    return key


def ensure_keys_after_migrate(sender, using="default", **kwargs):
    """post_migrate receiver: the active and the next key exist once the tables do."""
    # After `migrate oidc_provider zero` (or to a migration before ours) the tables are gone,
    # and that is fine: the next migrate forward creates the key.
    tables = connections[using].introspection.table_names()
    if SigningKey._meta.db_table not in tables or ConfigVersion._meta.db_table not in tables:
        return
    statuses = set(SigningKey.objects.using(using).values_list("status", flat=True).distinct())
    if not {SigningKey.ACTIVE, SigningKey.NEXT} <= statuses:
        ensure_active_key()


def ensure_next_key():
    """Publish a ``next`` key if there is none (first start, or after upgrading to it)."""
    if not SigningKey.objects.filter(status=SigningKey.NEXT).exists():
        generate(status=SigningKey.NEXT)


def _active_row():
    return (
        SigningKey.objects.filter(status=SigningKey.ACTIVE)
        .order_by("-activated_at", "-id")
        .values_list("kid", "private_key")
        .first()
    )


def active_key():
    """The parsed key that signs new tokens (read through config_cache: a rotation applies
    on the next request in every process)."""
    row = config_cache.get("signing_key.active", _active_row)
    if row is None:
        key = ensure_active_key()
        row = (key.kid, key.private_key)
    return _parsed.get(row[0]) or _load(*row)


def _published_rows():
    rows = SigningKey.objects.exclude(status=SigningKey.RETIRED).order_by("-created_at", "-id")
    return tuple(rows.values_list("kid", "private_key", "status"))


def _published():
    return config_cache.get("signing_key.published", _published_rows)


def published_keys():
    """Every key not yet retired, parsed, newest first."""
    return [_parsed.get(kid) or _load(kid, pem) for kid, pem, _status in _published()]


def key_for_kid(kid):
    """A published key by kid (for verifying tokens we issued), or None."""
    if not isinstance(kid, str):
        return None
    return next((key for key in published_keys() if key.kid == kid), None)


def jwks():
    return {"keys": [k.public_jwk for k in published_keys()]}


@dataclass(frozen=True)
class _JwksDocument:
    body: bytes
    announces_next: bool


def _jwks_document():
    body = json.dumps(jwks()).encode()
    return _JwksDocument(body, any(status == SigningKey.NEXT for _kid, _pem, status in _published()))


def jwks_json():
    """The JWKS document as bytes, built once per configuration version.

    While it announces a next key, a copy this process confirmed in the last
    ``JWKS_CACHE_SECONDS`` is served without asking the database whether the keys changed:
    a rotation elsewhere promotes that next key, already in the copy, and publishes a new
    one that signs nothing yet. Only a second rotation within that time could sign with a
    key the copy lacks, and relying parties fetch the JWKS again on an unknown ``kid``.
    """
    document = config_cache.recent("signing_key.jwks", oidc_settings.JWKS_CACHE_SECONDS)
    if document is None or not document.announces_next:
        document = config_cache.get("signing_key.jwks", _jwks_document)
    return document.body


def verify(token, audience=None, verify_exp=True):
    """Claims of a JWT this provider signed with any published key; raises jwt.InvalidTokenError."""
    header = jwt.get_unverified_header(token)
    key = key_for_kid(header.get("kid"))
    if key is None:
        raise jwt.InvalidTokenError("unknown or retired key")
    return jwt.decode(
        token,
        key.private_key.public_key(),
        algorithms=[ALGORITHM],
        audience=audience,
        issuer=oidc_settings.issuer,
        options={"verify_aud": audience is not None, "verify_exp": verify_exp},
    )


@transaction.atomic
def rotate(actor=None):
    """Make the ``next`` key active (a new one if there is none) and publish a new next key.

    The previous active key stays published (``inactive``) until it is retired, so tokens
    it signed keep verifying.
    """
    now = timezone.now()
    previous = list(SigningKey.objects.select_for_update().filter(status=SigningKey.ACTIVE))
    new = SigningKey.objects.select_for_update().filter(status=SigningKey.NEXT).order_by("created_at").first()
    if new is None:
        new = generate(status=SigningKey.NEXT)
    SigningKey.objects.filter(pk__in=[k.pk for k in previous]).update(status=SigningKey.INACTIVE)
    new.status = SigningKey.ACTIVE
    new.activated_at = now
    new.save(update_fields=["status", "activated_at"])
    generate(status=SigningKey.NEXT)
    signals.signing_key_rotated.send(sender=SigningKey, key=new, previous=previous, actor=actor)
    return new


@transaction.atomic
def retire(key, actor=None):
    """Take a key out of JWKS; refused for the active key (rotate first).

    Retiring the next key publishes a new one, so the next rotation still promotes a key
    relying parties have seen.
    """
    key = SigningKey.objects.select_for_update().get(pk=key.pk)
    if key.status == SigningKey.ACTIVE:
        raise ValueError("The active key cannot be retired; rotate first so another key signs new tokens.")
    key.status = SigningKey.RETIRED
    key.retired_at = timezone.now()
    key.save(update_fields=["status", "retired_at"])
    _parsed.pop(key.kid, None)
    ensure_next_key()
    signals.signing_key_retired.send(sender=SigningKey, key=key, actor=actor)
    return key
