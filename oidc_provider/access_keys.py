"""AK/SK pairs of programmatic access accounts: issue, authenticate, revoke, rotate.

The AK is sent as client_id and the SK as client_secret with grant_type=client_credentials.
The SK is shown once and stored as a keyed digest (secrets.py), checked in constant time.
"""

import secrets as _random

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from . import config_cache, secrets, signals
from .models import AccessAccount, AccessKey
from .scopes import OIDC_SCOPE_DESCRIPTIONS, all_scopes

PREFIX = "AK"


def generate_access_key():
    return PREFIX + _random.token_hex(12).upper()


def validate_scopes(scopes):
    """Error messages for scopes an account may not hold (resource scopes only)."""
    known = [s for s in all_scopes() if s not in OIDC_SCOPE_DESCRIPTIONS]
    errors = []
    for scope in scopes:
        if scope in OIDC_SCOPE_DESCRIPTIONS:
            errors.append(_("'%(scope)s' is an end-user scope; an access account has no end user. Resource scopes: %(known)s.") % {"scope": scope, "known": ", ".join(known)})
        elif scope not in known:
            errors.append(_("Unknown scope '%(scope)s'. Resource scopes: %(known)s.") % {"scope": scope, "known": ", ".join(known)})
    return errors


def _new_pair(account):
    sk = secrets.generate_secret()
    return AccessKey.objects.create(account=account, access_key=generate_access_key(), secret_key=sk), sk


def _stamp_revoked(key):
    """Mark the pair revoked; False when it already was."""
    if key.revoked_at is not None:
        return False
    key.revoked_at = timezone.now()
    key.save(update_fields=["revoked_at"])
    return True


@transaction.atomic
def issue(account, actor=None):
    """A new AK/SK pair for the account; returns (AccessKey, sk). The SK is never seen again.

    Sends ``access_key_issued``; ``actor`` is the user who asked, or None for the CLI.
    """
    key, sk = _new_pair(account)
    signals.access_key_issued.send(sender=AccessKey, key=key, actor=actor)
    return key, sk


@transaction.atomic
def revoke(key, actor=None):
    """Refuse the pair from the next request on; sends ``access_key_revoked`` unless it
    already was."""
    if _stamp_revoked(key):
        signals.access_key_revoked.send(sender=AccessKey, key=key, actor=actor)
    return key


@transaction.atomic
def rotate(key, actor=None):
    """Replace one pair with a new one on the same account; the other pairs are untouched.

    One event, ``access_key_rotated``, not an issue and a revocation: it is one admin act.
    """
    new_key, sk = _new_pair(key.account)
    _stamp_revoked(key)
    signals.access_key_rotated.send(sender=AccessKey, key=new_key, previous=key, actor=actor)
    return new_key, sk


def is_access_key(client_id):
    return isinstance(client_id, str) and client_id.startswith(PREFIX)


# last_used_at is written at most once a minute per key and process: a hot key would
# otherwise turn every token request into a write on one contended row.
LAST_USED_PRECISION = 60
_last_written = {}


def _load_key(access_key):
    return AccessKey.objects.select_related("account__application").filter(access_key=access_key).first()


def authenticate(access_key, secret_key):
    """The active AccessKey for this AK/SK, or None; records its use.

    A refusal costs the same whether the AK exists or not, so timing does not tell which
    AKs exist: one database read of the AK (one found in the per-process copy is read
    again) and one digest (against a dummy for an unknown AK).
    """
    read = []

    def load():
        read.append(True)
        return _load_key(access_key)

    key = config_cache.get(("access_key", access_key), load)
    if key is None:
        secrets.verify(secret_key or "", secrets.DUMMY_DIGEST)
        return None
    if not secrets.verify(secret_key or "", key.secret_key) or not key.is_active:
        if not read:
            _load_key(access_key)
        return None
    now = timezone.now()
    last = _last_written.get(key.access_key)
    if last is None or (now - last).total_seconds() >= LAST_USED_PRECISION:
        _last_written[key.access_key] = now
        AccessKey.objects.filter(pk=key.pk).update(last_used_at=now)
    return key


def get_or_create_account(name, scopes=()):
    account = AccessAccount.objects.filter(name=name).first()
    if account is None:
        account = AccessAccount.objects.create(name=name, scopes=list(dict.fromkeys(scopes)))
    return account
