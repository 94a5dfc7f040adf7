"""The audit log: ``record()``, and the receivers that record what the provider announces.

``oidc_provider`` announces what happens through signals and never imports this module.
"""

from urllib.parse import urlsplit

from django.contrib.auth.signals import user_login_failed
from django.dispatch import receiver
from django.utils.translation import gettext_lazy as _

from oidc_provider import refusals, signals
from oidc_provider.logs import current_request_id
from oidc_provider.models import GrantPolicy
from oidc_provider.throttle import client_address

from . import token_counts
from .models import AuditEvent


# The actions, one vocabulary for the admin, the API, the CLI and the receivers below.
APPLICATION_CREATED = "application.created"
APPLICATION_CHANGED = "application.changed"
APPLICATION_DELETED = "application.deleted"
APPLICATION_SECRET_REGENERATED = "application.secret_regenerated"
POLICY_CHANGED = "policy.changed"
ACCESS_ACCOUNT_CREATED = "access_account.created"
ACCESS_ACCOUNT_CHANGED = "access_account.changed"
ACCESS_KEY_ISSUED = "access_key.issued"
ACCESS_KEY_REVOKED = "access_key.revoked"
ACCESS_KEY_ROTATED = "access_key.rotated"
SIGNING_KEY_ROTATED = "signing_key.rotated"
SIGNING_KEY_RETIRED = "signing_key.retired"
SIGNING_KEY_IMPORTED = "signing_key.imported"
SIGNING_KEY_EXPORTED = "signing_key.exported"
SIGNING_KEYS_REENCRYPTED = "signing_key.reencrypted"
TOKENS_REVOKED = "tokens.revoked"
CONSENT_REVOKED = "consent.revoked"
CONSENT_DENIED = "consent.denied"
API_TOKEN_CREATED = "api_token.created"
API_TOKEN_REVOKED = "api_token.revoked"
LOGIN_FAILED = "login.failed"
LOGIN_LOCKED_OUT = "login.locked_out"
GRANT_REFUSED = "grant.refused"
CODE_REPLAYED = "code.replayed"
REFRESH_TOKEN_REPLAYED = "refresh_token.replayed"
CLIENT_AUTH_FAILED = "client_auth.failed"
CLIENT_AUTH_THROTTLED = "client_auth.throttled"
SESSION_ENDED = "session.ended"
CLIENT_REGISTERED = "registration.registered"
CLIENT_REGISTRATION_UPDATED = "registration.updated"
CLIENT_REGISTRATION_DELETED = "registration.deleted"
REGISTRATION_TOKEN_ISSUED = "registration_token.issued"
REGISTRATION_TOKEN_REVOKED = "registration_token.revoked"
BACKCHANNEL_LOGOUT_DELIVERED = "backchannel_logout.delivered"
BACKCHANNEL_LOGOUT_FAILED = "backchannel_logout.failed"

# What each action is called on the console's pages (the API and the CSV keep the codes).
ACTION_LABELS = {
    APPLICATION_CREATED: _("Application created"),
    APPLICATION_CHANGED: _("Application changed"),
    APPLICATION_DELETED: _("Application deleted"),
    APPLICATION_SECRET_REGENERATED: _("Client secret regenerated"),
    POLICY_CHANGED: _("Grant policy changed"),
    ACCESS_ACCOUNT_CREATED: _("Access account created"),
    ACCESS_ACCOUNT_CHANGED: _("Access account changed"),
    ACCESS_KEY_ISSUED: _("Key pair issued"),
    ACCESS_KEY_REVOKED: _("Key pair revoked"),
    ACCESS_KEY_ROTATED: _("Key pair rotated"),
    SIGNING_KEY_ROTATED: _("Signing key rotated"),
    SIGNING_KEY_RETIRED: _("Signing key retired"),
    SIGNING_KEY_IMPORTED: _("Signing key imported"),
    SIGNING_KEY_EXPORTED: _("Signing key exported"),
    SIGNING_KEYS_REENCRYPTED: _("Signing keys re-encrypted"),
    TOKENS_REVOKED: _("Tokens revoked"),
    CONSENT_REVOKED: _("Consent revoked"),
    CONSENT_DENIED: _("Consent denied by the user"),
    API_TOKEN_CREATED: _("API token created"),
    API_TOKEN_REVOKED: _("API token revoked"),
    LOGIN_FAILED: _("Sign-in failed"),
    LOGIN_LOCKED_OUT: _("Sign-in locked"),
    GRANT_REFUSED: _("Grant refused"),
    CODE_REPLAYED: _("Authorization code replayed"),
    REFRESH_TOKEN_REPLAYED: _("Refresh token replayed"),
    CLIENT_AUTH_FAILED: _("Client authentication failed"),
    CLIENT_AUTH_THROTTLED: _("Client authentication throttled"),
    SESSION_ENDED: _("Session ended"),
    CLIENT_REGISTERED: _("Client registered"),
    CLIENT_REGISTRATION_UPDATED: _("Client registration updated"),
    CLIENT_REGISTRATION_DELETED: _("Client registration deleted"),
    REGISTRATION_TOKEN_ISSUED: _("Registration token issued"),
    REGISTRATION_TOKEN_REVOKED: _("Registration token revoked"),
    BACKCHANNEL_LOGOUT_DELIVERED: _("Back-channel logout delivered"),
    BACKCHANNEL_LOGOUT_FAILED: _("Back-channel logout failed"),
}


def _ip(request):
    # The client's address as the provider's throttle sees it (behind trusted proxies too).
    meta = getattr(request, "META", None) or getattr(request, "headers", None) or {}
    return client_address(meta)


def record(action, *, actor=None, actor_label=None, target=None, target_label=None, request=None, anonymous=False,
           **details):
    """Append one event. ``actor`` is a user; ``target`` any model instance (or None).
    ``anonymous``: the requester is nobody, whoever is signed in (``request`` gives the address)."""
    if actor is None and request is not None and not anonymous:
        user = getattr(request, "user", None)
        actor = user if getattr(user, "is_authenticated", False) else None
    if actor_label is None:
        actor_label = actor.get_username() if actor is not None else "anonymous"
    return AuditEvent.objects.create(
        actor=actor,
        actor_label=actor_label[:150],
        action=action,
        target_type=target._meta.label_lower if target is not None else "",
        target_id=str(target.pk) if target is not None else "",
        target_label=(target_label or (str(target) if target is not None else ""))[:255],
        ip_address=_ip(request),
        request_id=current_request_id(),
        details=details,
    )


# -- security events from the provider and from authentication -------------------------


def _client(application):
    return getattr(application, "client_id", "") or ""


@receiver(signals.token_issued, dispatch_uid="console.audit.token_issued")
def _token_issued(sender, application=None, grant=None, **kwargs):
    token_counts.count_token(grant or "unknown")


@receiver(signals.grant_refused, dispatch_uid="console.audit.grant_refused")
def _grant_refused(sender, application=None, grant=None, reason=None, request=None, **kwargs):
    # Anyone may send a client_id: the requester is anonymous, the application only its target.
    record(
        GRANT_REFUSED, actor_label="anonymous", anonymous=True, target=application, request=request,
        client_id=_client(application), grant=grant, reason=reason,
    )


@receiver(signals.request_refused, dispatch_uid="console.audit.consent_denied")
def _consent_denied(sender, application=None, rule="", sent=None, request=None, **kwargs):
    # The user who chose Deny is the actor (the request's signed-in user).
    if rule == refusals.CONSENT_DENIED:
        record(
            CONSENT_DENIED, target=application, request=request, client_id=_client(application),
            scope=(sent or {}).get("scope", ""),
        )


@receiver(signals.code_replayed, dispatch_uid="console.audit.code_replayed")
def _code_replayed(sender, application=None, request=None, **kwargs):
    record(CODE_REPLAYED, actor_label=_client(application), target=application, request=request)


@receiver(signals.refresh_token_replayed, dispatch_uid="console.audit.refresh_replayed")
def _refresh_replayed(sender, application=None, token_family=None, request=None, **kwargs):
    record(REFRESH_TOKEN_REPLAYED, actor_label=_client(application), target=application, request=request, token_family=str(token_family))


@receiver(signals.client_authentication_failed, dispatch_uid="console.audit.client_auth_failed")
def _client_auth_failed(sender, client_id="", ip_address=None, throttled=False, request=None, **kwargs):
    # The oauthlib request carries the endpoint's URI and the HTTP headers (REMOTE_ADDR...).
    record(
        CLIENT_AUTH_THROTTLED if throttled else CLIENT_AUTH_FAILED, actor_label=client_id or "anonymous",
        request=request, path=urlsplit(getattr(request, "uri", "") or "").path,
    )


@receiver(signals.session_ended, dispatch_uid="console.audit.session_ended")
def _session_ended(sender, session=None, applications=(), reason="", actor=None, **kwargs):
    record(
        SESSION_ENDED, actor=actor, actor_label=None if actor else session.user.get_username(), target=session.user,
        reason=reason, sid=session.sid, applications=[a.client_id for a in applications],
    )


@receiver(signals.client_registration_changed, dispatch_uid="console.audit.client_registration")
def _client_registration(sender, application=None, action="", initial_access_token=None, request=None, **kwargs):
    event = {"registered": CLIENT_REGISTERED, "updated": CLIENT_REGISTRATION_UPDATED, "deleted": CLIENT_REGISTRATION_DELETED}[action]
    details = {"initial_access_token": str(initial_access_token)} if initial_access_token is not None else {}
    record(event, actor_label=application.client_id, target=application, **details)


@receiver(signals.registration_token_issued, dispatch_uid="console.audit.registration_token_issued")
def _registration_token_issued(sender, token=None, actor=None, **kwargs):
    record(REGISTRATION_TOKEN_ISSUED, **_by(actor), target=token, expires_at=token.expires_at.isoformat())


@receiver(signals.registration_token_revoked, dispatch_uid="console.audit.registration_token_revoked")
def _registration_token_revoked(sender, token=None, actor=None, **kwargs):
    record(REGISTRATION_TOKEN_REVOKED, **_by(actor), target=token)


@receiver(signals.backchannel_logout_attempted, dispatch_uid="console.audit.backchannel_logout")
def _backchannel_logout(sender, notice=None, delivered=False, given_up=False, detail="", **kwargs):
    record(
        BACKCHANNEL_LOGOUT_DELIVERED if delivered else BACKCHANNEL_LOGOUT_FAILED, actor_label="system",
        target=notice.application, sid=notice.sid, attempt=notice.attempts, answer=detail, given_up=given_up,
    )


# -- configuration changes, from the console or the command line --------------------------------
#
# The console's operations (console.services) and the CLI change the configuration through
# the provider's operations, which announce each change; these receivers are the one place
# its audit event is written. ``actor`` is the user who asked, or None (the CLI, the system).


def _by(actor):
    return {"actor": actor, "actor_label": None if actor else "system"}


@receiver(signals.grant_policy_changed, dispatch_uid="console.audit.policy_changed")
def _policy_changed(sender, application_type=None, grant=None, previous=None, state=None, actor=None, **kwargs):
    """policy.changed: target the GrantPolicy row; details ``application_type``, ``grant``,
    ``previous`` (the state before, or None) and ``state`` (the state now)."""
    row = GrantPolicy.objects.filter(application_type=application_type, grant=grant).first()
    record(
        POLICY_CHANGED, **_by(actor), target=row, target_label=f"{application_type} / {grant}",
        application_type=application_type, grant=grant, previous=previous, state=state,
    )


@receiver(signals.application_created, dispatch_uid="console.audit.application_created")
def _application_created(sender, application=None, actor=None, **kwargs):
    """application.created: details ``client_id``, ``application_type``, ``grant_types``."""
    record(
        APPLICATION_CREATED, **_by(actor), target=application, client_id=application.client_id,
        application_type=application.application_type, grant_types=list(application.grant_types or []),
    )


@receiver(signals.application_deleted, dispatch_uid="console.audit.application_deleted")
def _application_deleted(sender, application=None, actor=None, **kwargs):
    """application.deleted: details ``client_id``, ``application_type``."""
    record(
        APPLICATION_DELETED, **_by(actor), target=application, client_id=application.client_id,
        application_type=application.application_type,
    )


@receiver(signals.client_secret_regenerated, dispatch_uid="console.audit.secret_regenerated")
def _secret_regenerated(sender, application=None, actor=None, **kwargs):
    """application.secret_regenerated: details ``client_id`` (never the secret)."""
    record(APPLICATION_SECRET_REGENERATED, **_by(actor), target=application, client_id=application.client_id)


@receiver(signals.access_key_issued, dispatch_uid="console.audit.access_key_issued")
def _access_key_issued(sender, key=None, actor=None, **kwargs):
    """access_key.issued: target the pair (labelled by its AK); details ``account``."""
    record(ACCESS_KEY_ISSUED, **_by(actor), target=key, target_label=key.access_key, account=key.account.name)


@receiver(signals.access_key_revoked, dispatch_uid="console.audit.access_key_revoked")
def _access_key_revoked(sender, key=None, actor=None, **kwargs):
    """access_key.revoked: target the pair (labelled by its AK); details ``account``."""
    record(ACCESS_KEY_REVOKED, **_by(actor), target=key, target_label=key.access_key, account=key.account.name)


@receiver(signals.access_key_rotated, dispatch_uid="console.audit.access_key_rotated")
def _access_key_rotated(sender, key=None, previous=None, actor=None, **kwargs):
    """access_key.rotated: target the new pair; details ``account`` and ``previous`` (the
    AK it replaced, now revoked)."""
    record(
        ACCESS_KEY_ROTATED, **_by(actor), target=key, target_label=key.access_key,
        account=key.account.name, previous=previous.access_key,
    )


@receiver(signals.signing_key_rotated, dispatch_uid="console.audit.key_rotated")
def _key_rotated(sender, key=None, previous=(), actor=None, **kwargs):
    """signing_key.rotated: target the new key (by kid); details ``previous`` (kids)."""
    record(SIGNING_KEY_ROTATED, **_by(actor), target=key, target_label=key.kid, previous=[k.kid for k in previous])


@receiver(signals.signing_key_retired, dispatch_uid="console.audit.key_retired")
def _key_retired(sender, key=None, actor=None, **kwargs):
    record(SIGNING_KEY_RETIRED, **_by(actor), target=key, target_label=key.kid)


@receiver(signals.signing_key_imported, dispatch_uid="console.audit.key_imported")
def _key_imported(sender, key=None, actor=None, **kwargs):
    record(SIGNING_KEY_IMPORTED, **_by(actor), target=key, target_label=key.kid)


@receiver(signals.signing_key_exported, dispatch_uid="console.audit.key_exported")
def _key_exported(sender, key=None, actor=None, **kwargs):
    record(SIGNING_KEY_EXPORTED, **_by(actor), target=key, target_label=key.kid)


@receiver(signals.signing_keys_reencrypted, dispatch_uid="console.audit.keys_reencrypted")
def _keys_reencrypted(sender, count=0, actor=None, **kwargs):
    record(SIGNING_KEYS_REENCRYPTED, **_by(actor), count=count)


# -- authentication ------------------------------------------------------------------------------


@receiver(user_login_failed, dispatch_uid="console.audit.login_failed")
def _login_failed(sender, credentials=None, request=None, **kwargs):
    # Credentials arrive cleansed of the password; keep only the username.
    username = str((credentials or {}).get("username", ""))[:150]
    record(LOGIN_FAILED, actor_label=username or "anonymous", request=request, path=getattr(request, "path", ""))


def _locked_out(sender, request=None, username=None, ip_address=None, **kwargs):
    record(LOGIN_LOCKED_OUT, actor_label=str(username or "")[:150], request=request, ip_address=ip_address)


try:  # django-axes is optional: a site may protect its login another way.
    from axes.signals import user_locked_out
except ImportError:  # pragma: no cover
    pass
else:
    user_locked_out.connect(_locked_out, dispatch_uid="console.audit.locked_out")
