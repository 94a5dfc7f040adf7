"""Secrets the provider generates (client secrets, SKs, tokens): make them, digest them, check them.

They are 256-bit random values, so a keyed SHA-256 digest (HMAC with a server-side key) is as
safe to store as a password hash: a slow hash such as PBKDF2 guards guessable passwords, and
would only slow every token request here.
"""

import hashlib
import hmac
import secrets as _random

from django.conf import settings

from .conf import oidc_settings

PREFIX = "hmac-sha256$"
# What a presented secret is checked against when its client or AK does not exist, so the
# answer takes as long as for a wrong secret (no secret has this digest).
DUMMY_DIGEST = PREFIX + "0" * 64


def generate_secret():
    return _random.token_urlsafe(32)


def generate_token(request=None):
    """A new access or refresh token (django-oauth-toolkit's ACCESS_TOKEN_GENERATOR).

    256 random bits from one ``os.urandom`` call: oauthlib's default draws its 30 characters
    (179 bits) one system call each, a twentieth of a client-credentials request.
    """
    return generate_secret()


def _digest_key():
    configured = oidc_settings.SECRET_DIGEST_KEY
    if configured:
        return configured.encode() if isinstance(configured, str) else configured
    return hashlib.sha256(b"oidc_provider.secrets:" + settings.SECRET_KEY.encode()).digest()


def digest(secret):
    mac = hmac.new(_digest_key(), secret.encode("utf-8", "surrogatepass"), hashlib.sha256)
    return PREFIX + mac.hexdigest()


def is_digest(value):
    return isinstance(value, str) and value.startswith(PREFIX)


def verify(provided, stored):
    """Constant-time check of a presented secret against its stored digest."""
    if not provided or not is_digest(stored):
        return False
    return hmac.compare_digest(digest(provided), stored)
