"""Where the protocol's codes and tokens are kept: the operations it needs, in its words.

The validator and the views read and write codes and tokens only through ``store``. Two
implementations keep the same promises: :class:`~oidc_provider.store.orm.OrmStore`, on the
ORM, for every database Django supports, and :class:`~oidc_provider.store.fast.FastStore`,
prepared statements for PostgreSQL and SQLite. ``OIDC_PROVIDER["STORE"]`` chooses ("orm",
"fast"; unset: fast where the database allows it).

Rows are handed over unsaved and come back saved. Tokens are looked up by their checksum
(sha256 of the token), codes by their digest: neither is ever stored in clear.
"""

from dataclasses import dataclass
from functools import cache

from django.core.checks import Error, register
from django.db import connections, router
from django.test.signals import setting_changed
from django.utils.module_loading import import_string
from oauth2_provider.models import get_access_token_model

from ..conf import oidc_settings

FAST_VENDORS = ("postgresql", "sqlite")
IMPLEMENTATIONS = {"orm": "oidc_provider.store.orm.OrmStore", "fast": "oidc_provider.store.fast.FastStore"}


@dataclass
class Tokens:
    """What one grant issues, as unsaved rows: an access token, and maybe an ID token (the
    access token's ``id_token``) and a refresh token (whose ``access_token`` is it)."""

    access_token: object
    id_token: object = None
    refresh_token: object = None


class Store:
    """The operations; every implementation keeps each promise on its own, atomically."""

    def save_code(self, grant):
        """Keep an authorization code (a Grant whose ``code`` is the code's digest)."""
        raise NotImplementedError

    def read_code(self, digest):
        """The Grant with this digest, its user and the user's subject joined, or None."""
        raise NotImplementedError

    def redeem_code(self, digest, application, tokens):
        """Spend the code and save its tokens, all or nothing. Single use: of any number of
        concurrent calls for one code, exactly one returns True; the others write nothing.
        An exchange without a refresh token leaves a RedeemedCode row, so that a replay can
        find its access token."""
        raise NotImplementedError

    def revoke_redeemed_code(self, digest, family, application):
        """A spent code came back (RFC 6749 §4.1.2): revoke what its exchange issued (the
        refresh token ``family``, or the access token its RedeemedCode names). False when
        the code was never redeemed by ``application``."""
        raise NotImplementedError

    def issue_access_token(self, tokens):
        """Save an access token issued with no refresh token (client credentials, AK/SK,
        implicit, a password grant without refresh), and its ID token if any. In a request
        that assumed config_cache's version, only while that version holds (else
        ``config_cache.Changed``, nothing written)."""
        raise NotImplementedError

    def rotate_refresh_token(self, previous, tokens):
        """Revoke ``previous`` (its access token deleted) and save its successors, in its
        family, all or nothing. Of any number of concurrent calls for one refresh token,
        exactly one returns True; the others write nothing."""
        raise NotImplementedError

    def revoke_family(self, family):
        """Revoke every refresh token of this family and delete their access tokens."""
        raise NotImplementedError

    def read_access_token(self, checksum):
        """The access token with this checksum, its user and the user's subject joined, or None."""
        raise NotImplementedError

    def read_refresh_token(self, checksum):
        """The refresh token with this checksum (live or revoked), its access token, user and
        the user's subject joined, ``family_born`` (its family's first ``created``) and ``sid``
        (the login session its family began in, or None), or None."""
        raise NotImplementedError

    def save_id_token(self, id_token):
        """Keep an ID token's row (its ``jti``), issued without an access token to hang from."""
        raise NotImplementedError

    def read_id_token(self, jti):
        """The ID token row with this ``jti``, or None."""
        raise NotImplementedError

    def read_config_version(self):
        """The ConfigVersion row's value (config_cache's version), or None when the row is absent."""
        raise NotImplementedError


def default_store(vendor):
    """What ``STORE`` means when unset: the fast store where it can run."""
    return "fast" if vendor in FAST_VENDORS else "orm"


def tokens_vendor():
    return connections[router.db_for_write(get_access_token_model())].vendor


@cache
def get_store():
    """The configured store (one per process; a settings change in a test picks another)."""
    name = oidc_settings.STORE or default_store(tokens_vendor())
    return import_string(IMPLEMENTATIONS[name])()


@register()
def check_store(app_configs, **kwargs):
    name = oidc_settings.STORE
    if name is not None and name not in IMPLEMENTATIONS:
        return [Error(f"OIDC_PROVIDER['STORE'] is {name!r}.", hint='Use "orm", "fast" or leave it unset.',
                      id="oidc_provider.E014")]
    if name == "fast" and tokens_vendor() not in FAST_VENDORS:
        return [Error(
            f"OIDC_PROVIDER['STORE'] is 'fast', which runs only on PostgreSQL and SQLite, not {tokens_vendor()}.",
            hint='Use "orm", or leave it unset.', id="oidc_provider.E015",
        )]
    return []


def _forget(*, setting, **kwargs):
    if setting in ("OIDC_PROVIDER", "DATABASES"):
        get_store.cache_clear()


setting_changed.connect(_forget, dispatch_uid="oidc_provider.store.settings")


class _Current:
    """``store.redeem_code(...)``: the configured store, looked up at each call."""

    def __getattr__(self, name):
        return getattr(get_store(), name)


store = _Current()
