"""Signing keys: create, rotate, retire; the per-process cache of parsed keys; the JWKS.

A key's life: ``next`` (published, not yet signing) -> ``active`` (signs new tokens) ->
``inactive`` (published so tokens it signed keep verifying) -> ``retired`` (gone from JWKS).
Parsing a PEM costs ~40 ms, so each key is parsed once per process and kept by ``kid``.
"""

import base64
import hashlib
import json
import threading
from dataclasses import dataclass, field

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.db import IntegrityError, transaction
from django.utils import timezone

from . import signals

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
            from jwcrypto import jwk

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


def _load(kid, pem):
    with _lock:
        loaded = _parsed.get(kid)
        if loaded is None:
            private_key = serialization.load_pem_private_key(pem.encode(), password=None)
            jwk_dict = public_jwk(private_key.public_key())
            jwk_dict.update({"kid": kid, "alg": ALGORITHM, "use": "sig"})
            loaded = _parsed[kid] = LoadedKey(kid=kid, private_key=private_key, public_jwk=jwk_dict)
        return loaded


def generate(status="active"):
    """Create and store a new 2048-bit RSA key; returns the SigningKey row."""
    from .models import SigningKey

    private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    kid = thumbprint(public_jwk(private_key.public_key()))
    now = timezone.now()
    return SigningKey.objects.create(
        kid=kid, private_key=pem, status=status, activated_at=now if status == "active" else None
    )


def ensure_active_key():
    """The active key row, creating one on first start."""
    from .models import SigningKey

    key = SigningKey.objects.filter(status=SigningKey.ACTIVE).first()
    if key is None:
        try:
            with transaction.atomic():
                key = generate()
        except IntegrityError:  # another process made it first; the constraint allows one
            key = SigningKey.objects.get(status=SigningKey.ACTIVE)
    return key


def _active_row():
    from .models import SigningKey

    return (
        SigningKey.objects.filter(status=SigningKey.ACTIVE)
        .order_by("-activated_at", "-id")
        .values_list("kid", "private_key")
        .first()
    )


def active_key():
    """The parsed key that signs new tokens (read through config_cache: a rotation applies
    on the next request in every process)."""
    from . import config_cache

    row = config_cache.get("signing_key.active", _active_row)
    if row is None:
        key = ensure_active_key()
        row = (key.kid, key.private_key)
    return _parsed.get(row[0]) or _load(*row)


def _published_rows():
    from .models import SigningKey

    rows = SigningKey.objects.exclude(status=SigningKey.RETIRED).order_by("-created_at", "-id")
    return tuple(rows.values_list("kid", "private_key"))


def published_keys():
    """Every key not yet retired, parsed, newest first."""
    from . import config_cache

    return [_parsed.get(kid) or _load(kid, pem) for kid, pem in config_cache.get("signing_key.published", _published_rows)]


def key_for_kid(kid):
    """A published key by kid (for verifying tokens we issued), or None."""
    if not isinstance(kid, str):
        return None
    return next((key for key in published_keys() if key.kid == kid), None)


def jwks():
    return {"keys": [k.public_jwk for k in published_keys()]}


def jwks_json():
    """The JWKS document as bytes, built once per configuration version."""
    from . import config_cache

    return config_cache.get("signing_key.jwks", lambda: json.dumps(jwks()).encode())


def verify(token, audience=None, verify_exp=True):
    """Claims of a JWT this provider signed with any published key; raises jwt.InvalidTokenError."""
    from .conf import oidc_settings

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
    """Make a new key active: the prepared ``next`` key if there is one, else a new one.

    The previous active key stays published (``inactive``) until it is retired, so tokens
    it signed keep verifying.
    """
    from .models import SigningKey

    now = timezone.now()
    previous = list(SigningKey.objects.select_for_update().filter(status=SigningKey.ACTIVE))
    new = SigningKey.objects.select_for_update().filter(status=SigningKey.NEXT).order_by("created_at").first()
    if new is None:
        new = generate(status=SigningKey.NEXT)
    SigningKey.objects.filter(pk__in=[k.pk for k in previous]).update(status=SigningKey.INACTIVE)
    new.status = SigningKey.ACTIVE
    new.activated_at = now
    new.save(update_fields=["status", "activated_at"])
    signals.signing_key_rotated.send(sender=SigningKey, key=new, previous=previous, actor=actor)
    return new


@transaction.atomic
def retire(key, actor=None):
    """Take a key out of JWKS; refused for the active key (rotate first)."""
    from .models import SigningKey

    key = SigningKey.objects.select_for_update().get(pk=key.pk)
    if key.status == SigningKey.ACTIVE:
        raise ValueError("The active key cannot be retired; rotate first so another key signs new tokens.")
    key.status = SigningKey.RETIRED
    key.retired_at = timezone.now()
    key.save(update_fields=["status", "retired_at"])
    _parsed.pop(key.kid, None)
    signals.signing_key_retired.send(sender=SigningKey, key=key, actor=actor)
    return key
