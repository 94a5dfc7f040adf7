"""The console's operations, one function each, called by the admin, its pages and the REST API.

Each takes the acting user first and leaves exactly one audit event. A configuration change
(the grant policy, a client secret, an AK/SK pair, an application created or deleted) goes
through an operation that announces it with a signal of ``oidc_provider.signals``; the
receivers in ``console.audit`` record it, so a change made from the command line (the same
operations, with no actor) is recorded the same way. Revoking tokens and consents is the
console's own operation and is recorded here.

Callers check the permission first (``console.permissions``); these functions do not.
"""

from dataclasses import asdict, astuple, dataclass, field

from django.db import transaction
from django.utils import timezone
from oauth2_provider.models import get_access_token_model, get_grant_model, get_refresh_token_model, revoke_access_token

from oidc_provider import access_keys, applications, keys, policy, sessions
from oidc_provider.models import Consent

from . import audit

# -- applications ------------------------------------------------------------------------------


def create_application(actor, application):
    """Save a new (validated) application and announce it; returns it, its secret in
    ``plaintext_secret`` when it is confidential."""
    return applications.register(application, actor=actor)


def delete_application(actor, application):
    """Delete an application with its tokens, codes and consents."""
    applications.delete(application, actor=actor)


def regenerate_client_secret(actor, application):
    """A new secret for a confidential application; the old one stops working at once.

    Returns the new secret: the only time it is seen. ValueError for a public client.
    """
    return applications.regenerate_secret(application, actor=actor)


# -- the grant policy --------------------------------------------------------------------------


@dataclass(frozen=True)
class PolicyChange:
    application_type: str
    grant: str
    previous: str
    state: str
    # When the grant became forbidden: the applications of the type that still list it.
    holders: list = field(default_factory=list)


def set_grant_policy(actor, application_type, grant, state):
    """Set the state of one (type, grant) pair; it holds from the next request."""
    previous = policy.set_state(application_type, grant, state, actor=actor)
    holders = policy.applications_holding(application_type, grant) if state == policy.FORBIDDEN else []
    return PolicyChange(application_type, grant, previous, state, holders)


# -- programmatic access: AK/SK pairs ----------------------------------------------------------


def issue_access_key(actor, account):
    """A new pair for the account; returns (AccessKey, SK). The SK is never seen again."""
    return access_keys.issue(account, actor=actor)


def revoke_access_key(actor, key):
    """Stop one pair at once; returns False when it was already revoked (nothing recorded)."""
    if key.revoked_at is not None:
        return False
    access_keys.revoke(key, actor=actor)
    return True


def rotate_access_key(actor, key):
    """Replace one active pair with a new one on the same account; returns (new AccessKey, SK)."""
    if key.revoked_at is not None:
        raise ValueError(f"{key.access_key} is already revoked.")
    return access_keys.rotate(key, actor=actor)


# -- signing keys ------------------------------------------------------------------------------


def rotate_signing_key(actor):
    """Make a new key active; the previous one stays published until retired."""
    return keys.rotate(actor=actor)


def retire_signing_key(actor, key):
    """Take a key out of the JWKS; ValueError (saying why) for the active key."""
    return keys.retire(key, actor=actor)


# -- tokens and consents -----------------------------------------------------------------------


@dataclass(frozen=True)
class Revoked:
    access_tokens: int = 0
    refresh_tokens: int = 0
    codes: int = 0
    consents: int = 0

    def __add__(self, other):
        return Revoked(*(a + b for a, b in zip(astuple(self), astuple(other))))


def _revoke_all(**filters):
    """Revoke every live token and pending code matching the filters.

    Refresh tokens are revoked with ``RefreshToken.revoke()``: it deletes the bound access
    token and keeps the revoked row that replay detection needs.
    """
    AccessToken = get_access_token_model()
    RefreshToken = get_refresh_token_model()
    access = AccessToken.objects.filter(**filters).count()
    refresh = 0
    for token in RefreshToken.objects.filter(revoked__isnull=True, **filters):
        token.revoke()
        refresh += 1
    for token in AccessToken.objects.filter(**filters):
        revoke_access_token(token)
    codes, _by_model = get_grant_model().objects.filter(**filters).delete()
    return Revoked(access, refresh, codes)


def revoke_tokens(actor, *, user=None, application=None, forget_consents=False, request=None):
    """Revoke every token and pending code of a user, of an application, or of both; with
    ``forget_consents``, their consents go too (the users are asked again).

    ``request`` gives the audit event the caller's address.
    """
    filters = {k: v for k, v in (("user", user), ("application", application)) if v is not None}
    if not filters:
        raise ValueError("revoke_tokens needs a user or an application")
    with transaction.atomic():
        revoked = _revoke_all(**filters)
        if forget_consents:
            consents, _by_model = Consent.objects.filter(**filters).delete()
            revoked = Revoked(revoked.access_tokens, revoked.refresh_tokens, revoked.codes, consents)
        audit.record(
            audit.TOKENS_REVOKED, actor=actor, request=request, target=application if user is None else user,
            scope="+".join(filters), **asdict(revoked),
        )
    return revoked


def revoke_selected_tokens(actor, tokens, *, request=None):
    """Revoke the given access or refresh tokens (one model per call); returns how many."""
    tokens = list(tokens)
    if not tokens:
        return 0
    refresh = isinstance(tokens[0], get_refresh_token_model())
    with transaction.atomic():
        for token in tokens:
            if refresh:
                token.revoke()
            else:
                revoke_access_token(token)
        noun = "refresh" if refresh else "access"
        audit.record(
            audit.TOKENS_REVOKED, actor=actor, request=request,
            target_label=f"{len(tokens)} {noun} token(s)", scope="selected",
            users=sorted({t.user.get_username() for t in tokens if t.user}),
            applications=sorted({t.application.client_id for t in tokens if t.application}),
            **{f"{noun}_token_ids": [t.pk for t in tokens]},
        )
    return len(tokens)


def revoke_consent(actor, consent, *, request=None):
    """Forget one consent (the user is asked again) and revoke the tokens it let through."""
    with transaction.atomic():
        revoked = _revoke_all(user=consent.user, application=consent.application)
        audit.record(
            audit.CONSENT_REVOKED, actor=actor, request=request, target=consent.application,
            target_label=f"{consent.user.get_username()} → {consent.application.name or consent.application.client_id}",
            user=consent.user.get_username(), scope=consent.scope,
            access_tokens=revoked.access_tokens, refresh_tokens=revoked.refresh_tokens, codes=revoked.codes,
        )
        consent.delete()
    return Revoked(revoked.access_tokens, revoked.refresh_tokens, revoked.codes, 1)


def end_sessions(actor, login_sessions):
    """End the given login sessions: each browser is signed out, the applications it signed
    into are told (back- and front-channel logout) and their tokens from it revoked. Each
    end is audited; returns how many ended."""
    return sum(sessions.sign_out(session, reason="ended_by_admin", actor=actor) for session in login_sessions)


def live_token_counts(application):
    """(live access tokens, live refresh tokens, consents) of an application, for its pages."""
    return (
        get_access_token_model().objects.filter(application=application, expires__gt=timezone.now()).count(),
        get_refresh_token_model().objects.filter(application=application, revoked__isnull=True).count(),
        Consent.objects.filter(application=application).count(),
    )
