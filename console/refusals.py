"""Refused requests: the record of each authorization or token request the provider refused,
and for each the one-sentence fix and the page that makes it.

The provider announces a refusal (``oidc_provider.signals.request_refused``) with the rule
that refused it and the facts beside it; the receiver here keeps it, bounded three ways so a
flood of bad requests cannot become a flood of writes: at most ``CONSOLE_REFUSALS_PER_MINUTE``
records a minute per process, rows older than ``CONSOLE_REFUSAL_RETENTION_DAYS`` days and
beyond the newest ``CONSOLE_REFUSALS_MAX_ROWS`` deleted at most once a minute per process, by
a range of keys. The fix is worked out when read, in the reader's language.
"""

import logging
import threading
import time
from datetime import timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.db import DatabaseError, router, transaction
from django.dispatch import receiver
from django.urls import NoReverseMatch
from django.utils import timezone
from django.utils.translation import gettext as _

from oidc_provider import refusals as rules
from oidc_provider import signals
from oidc_provider.logs import current_request_id
from oidc_provider.models import AccessAccount

from .models import Refusal
from .views.common import admin_url

log = logging.getLogger(__name__)

# setting -> (default, least value, what it is); console.checks reports a bad value.
LIMITS = {
    "CONSOLE_REFUSAL_RETENTION_DAYS": (7, 1, "days a record is kept"),
    "CONSOLE_REFUSALS_MAX_ROWS": (10_000, 1, "records kept at most"),
    "CONSOLE_REFUSALS_PER_MINUTE": (600, 0, "records written per minute and process at most"),
}
PRUNE_INTERVAL = 60  # seconds between two prunings in one process


def _limit(name):
    default, minimum, _meaning = LIMITS[name]
    try:
        return max(int(getattr(settings, name, default)), minimum)
    except (TypeError, ValueError):  # reported by console.checks; a refusal must still be answered
        return default


def retention_days():
    return _limit("CONSOLE_REFUSAL_RETENTION_DAYS")


def max_rows():
    return _limit("CONSOLE_REFUSALS_MAX_ROWS")


def per_minute():
    return _limit("CONSOLE_REFUSALS_PER_MINUTE")


# -- keeping them --------------------------------------------------------------------------------

_lock = threading.Lock()
_window = {"start": 0.0, "count": 0, "dropped": 0}
_pruned = {"at": 0.0}


def _admitted():
    """Whether this process may write one more record this minute."""
    now = time.monotonic()
    with _lock:
        if now - _window["start"] >= 60:
            _window.update(start=now, count=0)
        if _window["count"] >= per_minute():
            _window["dropped"] += 1
            return False
        _window["count"] += 1
        return True


def _prune_due():
    now = time.monotonic()
    with _lock:
        if now - _pruned["at"] < PRUNE_INTERVAL:
            return False
        _pruned["at"] = now
        return True


def reset_limits():
    """Forget this process's rate window and pruning clock (tests, or after changing the settings)."""
    with _lock:
        _window.update(start=0.0, count=0, dropped=0)
        _pruned["at"] = 0.0


def prune():
    """Delete records past retention and beyond the size bound; returns how many. Each is one
    DELETE of a range of keys (rows are written in the order of their time)."""
    deleted = 0
    cutoff = timezone.now() - timedelta(days=retention_days())
    newest_expired = Refusal.objects.filter(at__lt=cutoff).order_by("-at", "-id").values_list("id", flat=True).first()
    if newest_expired is not None:
        deleted += Refusal.objects.filter(id__lte=newest_expired).delete()[0]
    bound = max_rows()
    beyond = list(Refusal.objects.order_by("-id").values_list("id", flat=True)[bound:bound + 1])
    if beyond:
        deleted += Refusal.objects.filter(id__lte=beyond[0]).delete()[0]
    return deleted


@receiver(signals.request_refused, dispatch_uid="console.refusals.request_refused")
def _request_refused(sender, application=None, client_id="", endpoint="", error="", description="", rule="",
                     sent=None, registered=None, **kwargs):
    if not _admitted():
        return
    row = Refusal(
        application=application if getattr(application, "pk", None) else None, client_id=client_id[:200],
        endpoint=endpoint[:16], error=error[:64], description=description[:500], rule=rule[:64],
        sent=sent or {}, registered=registered or {}, request_id=current_request_id()[:128],
    )
    try:
        if transaction.get_connection(router.db_for_write(Refusal)).in_atomic_block:
            with transaction.atomic():  # a savepoint: a failed write must not spoil the request's transaction
                row.save()
        else:
            row.save()
        if _prune_due():
            prune()
    except DatabaseError:
        # The refusal is answered all the same; only its record is lost.
        log.warning("Could not record a refused %s request (%s)", endpoint, rule, exc_info=True)


def recent(application, limit=5):
    """The newest records of ``application``."""
    return list(Refusal.objects.filter(application=application).order_by("-at", "-id")[:limit])


# -- explaining them -----------------------------------------------------------------------------

# rule -> (fix, where it is made). A fix names the values of ``sent`` and ``registered``; where
# is one of the pages below, or None when the fix is the client's to make.
APPLICATION, REDIRECT_URIS, ORIGINS, GRANTS, CONSENT, SECRET, POLICY, APPLICATIONS, ACCOUNT, ACCESS_KEYS, AUDIT = (
    "application", "redirect_uris", "allowed_origins", "grant_types", "skip_authorization", "secret", "policy",
    "applications", "account", "access_keys", "audit",
)


def _fixes():
    # A function, not a constant: each sentence in the language of the reader.
    return {
        rules.CLIENT_ID_MISSING: (_("Send the client_id of the application with the request."), None),
        rules.CLIENT_UNKNOWN: (
            _("No application has the client_id “{client_id}”: send the client_id shown on the application's page, "
              "or register the application."), APPLICATIONS),
        rules.CLIENT_SECRET_MISSING: (
            _("Send the client secret (HTTP Basic, or client_secret in the form body): this is a confidential client."),
            SECRET),
        rules.CLIENT_SECRET_WRONG: (
            _("Put the application's current client secret in the client's configuration, or regenerate the secret "
              "here and update the client."), SECRET),
        rules.PUBLIC_CLIENT_SENT_SECRET: (
            _("Send no client_secret: this is a public client; it proves the exchange with PKCE instead."), None),
        rules.ACCESS_KEY_INVALID: (
            _("The access key {access_key} is unknown or revoked, its account inactive, or the secret key wrong: "
              "issue a new key pair on the account's page and update the caller."), ACCESS_KEYS),
        rules.CLIENT_AUTH_THROTTLED: (
            _("Too many failed client authentications for this client or address: correct the credentials the "
              "client sends, then retry after {retry_after_seconds} seconds."), AUDIT),
        rules.REDIRECT_URI_MISSING: (
            _("Send redirect_uri with the request, exactly one of the application's registered redirect URIs."),
            REDIRECT_URIS),
        rules.REDIRECT_URI_INVALID: (
            _("The redirect_uri “{redirect_uri}” is not an absolute URI: send one of the registered redirect URIs "
              "exactly."), REDIRECT_URIS),
        rules.REDIRECT_URI_MISMATCH: (
            _("Send the token request the same redirect_uri as the authorization request ({registered_redirect_uri})."),
            None),
        rules.GRANT_NOT_ENABLED: (_("Turn on {grant} for this application."), GRANTS),
        rules.GRANT_FORBIDDEN_BY_POLICY: (
            _("The policy forbids {grant} for {application_type} applications: change it in the grant policy, or "
              "use a grant the policy allows."), POLICY),
        rules.RESPONSE_TYPE_UNSUPPORTED: (
            _("This provider does not offer response_type={response_type}: use code, or another response type "
              "listed in discovery."), None),
        rules.GRANT_TYPE_UNSUPPORTED: (
            _("This provider does not offer grant_type={grant_type}: use authorization_code, refresh_token, "
              "client_credentials or password."), None),
        rules.PKCE_MISSING: (
            _("Send a code_challenge (S256) with the authorization request and its code_verifier with the token "
              "request: PKCE is required here."), None),
        rules.PKCE_METHOD_NOT_S256: (
            _("Send code_challenge_method=S256 with code_challenge = BASE64URL(SHA256(code_verifier)): plain is "
              "not accepted."), None),
        rules.PKCE_CHALLENGE_MALFORMED: (
            _("Send code_challenge as BASE64URL(SHA256(code_verifier)) without padding: 43 to 128 characters of "
              "A-Z, a-z, 0-9, '-', '.', '_' and '~'."), None),
        rules.PKCE_MISMATCH: (
            _("Send the code_verifier of the same authorization request: its S256 hash does not match the "
              "code_challenge sent then."), None),
        rules.PKCE_DOWNGRADE: (
            _("The code was issued without a code_challenge: send code_challenge (S256) in the authorization "
              "request, or no code_verifier."), None),
        rules.CODE_INVALID_OR_EXPIRED: (
            _("The code is unknown or expired: exchange each code once, at once (it lives {code_lifetime_seconds} "
              "seconds), with the client that asked for it."), None),
        rules.CODE_EXPIRED: (
            _("The code expired: exchange it at once, within {code_lifetime_seconds} seconds of the redirect."), None),
        rules.CODE_ISSUED_TO_ANOTHER_CLIENT: (
            _("The code was issued to another application ({code_issued_to}): exchange it with the client_id that "
              "asked for it."), None),
        rules.CODE_REPLAYED: (
            _("The code was already used, so the tokens it gave were revoked: exchange each code exactly once and "
              "never retry an exchange that succeeded."), None),
        rules.REFRESH_TOKEN_INVALID_OR_EXPIRED: (
            _("The refresh token is unknown, expired or revoked: have the user sign in again."), None),
        rules.REFRESH_TOKEN_ISSUED_TO_ANOTHER_CLIENT: (
            _("The refresh token belongs to another application ({refresh_token_issued_to}): use it with the "
              "client_id it was issued to."), None),
        rules.REFRESH_TOKEN_REPLAYED: (
            _("A refresh token is single-use: keep the new refresh token each refresh returns. The replay revoked "
              "the whole family, so the user must sign in again."), None),
        rules.SCOPE_NOT_ALLOWED: (
            _("Ask only for scopes this client may have ({allowed}); {not_allowed} is not among them."), None),
        rules.NONCE_MISSING: (
            _("Send a nonce: response_type={response_type} requires one (OIDC Core 3.2.2.1)."), None),
        rules.USER_CREDENTIALS_WRONG: (
            _("The username or password was wrong (password grant): nothing to change here unless the user's "
              "account needs a password reset."), None),
        rules.USER_LOCKED_OUT: (
            _("The username is locked for this address after too many failed logins: wait 15 minutes, and look "
              "in the audit log for an attack."), AUDIT),
        rules.LOGIN_THROTTLED: (
            _("Too many failed logins from this address: wait 15 minutes, and look in the audit log for an attack."),
            AUDIT),
        rules.LOGIN_REQUIRED: (
            _("The user was not logged in (or the login was older than max_age) and prompt=none forbids asking: "
              "send the request without prompt=none to let the user log in."), None),
        rules.CONSENT_REQUIRED: (
            _("The user has not consented to these scopes and prompt=none forbids asking: send the request without "
              "prompt=none, or turn on “skip consent” for a first-party application."), CONSENT),
        rules.CONSENT_DENIED: (
            _("The user chose Deny on the consent page: nothing to change here; the client should handle "
              "error=access_denied."), None),
        rules.ID_TOKEN_HINT_INVALID: (
            _("Send as id_token_hint an ID token this provider issued, or leave it out."), None),
        rules.OTHER_USER: (
            _("The signed-in user is not the one the request names (id_token_hint or claims sub): send the request "
              "without it, or let the user switch accounts."), None),
        rules.REQUEST_OBJECT_NOT_SUPPORTED: (
            _("Send the authorization parameters themselves: this provider takes no request object (request, "
              "request_uri)."), None),
        rules.RESPONSE_MODE_NOT_ALLOWED: (
            _("Use response_mode query (for code only), fragment or form_post: tokens never travel in a query "
              "string."), None),
        # Anyone with an account can get a token from any page: the origin is offered, not urged.
        rules.CORS_ORIGIN_NOT_ALLOWED: (
            _("If {origin} is your application's own address, add it to the allowed origins; otherwise change "
              "nothing (any web page can send this request)."), ORIGINS),
        rules.REQUEST_INVALID: (_("Correct the request: {description}"), None),
    }


class Explanation:
    def __init__(self, fix, link):
        self.fix, self.link = fix, link


def explain(refusal):
    """The fix (one sentence) and the link to where it is made, for ``refusal``."""
    cached = getattr(refusal, "_explanation", None)
    if cached is not None:
        return cached
    fix, where = _fixes().get(refusal.rule, (_("Correct the request: {description}"), None))
    if refusal.rule == rules.REDIRECT_URI_NOT_REGISTERED:
        fix, where = _redirect_uri_fix(refusal)
    elif refusal.rule == rules.SCOPE_NOT_ALLOWED and (refusal.registered or {}).get("account"):
        fix, where = _(
            "Add {not_allowed} to the resource permissions of the access account {account}, or stop asking for it."
        ), ACCOUNT
    explanation = Explanation(fix.format_map(_Values(refusal)), _link(refusal, where))
    refusal._explanation = explanation
    return explanation


class _Values(dict):
    """The values a fix names: from ``sent``, ``registered`` (prefixed ``registered_`` where both
    have one), the refusal itself; a missing one reads as "?"."""

    def __init__(self, refusal):
        sent, registered = _as_dict(refusal.sent), _as_dict(refusal.registered)
        super().__init__()
        for source in (registered, sent):
            for key, value in source.items():
                self[key] = _shown(value)
        for key, value in registered.items():
            self[f"registered_{key}"] = _shown(value)
        self.update(
            client_id=refusal.client_id, description=refusal.description or refusal.error or "?",
            allowed=_shown(registered.get("scopes")), grant=_shown(sent.get("grant") or sent.get("grant_type")),
        )

    def __missing__(self, key):
        return "?"


def _as_dict(value):
    return value if isinstance(value, dict) else {}


def _shown(value):
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value) or "—"
    return "—" if value is None or value == "" else str(value)


def _link(refusal, where):
    try:
        if where in (APPLICATION, REDIRECT_URIS, ORIGINS, GRANTS, CONSENT) and refusal.application_id:
            fragment = "" if where == APPLICATION else f"#id_{where}"
            return admin_url("oidc_provider_application_change", refusal.application_id) + fragment
        if where == SECRET and refusal.application_id:
            return admin_url("oidc_provider_application_regenerate_secret", refusal.application_id)
        if where == POLICY:
            return admin_url("oidc_provider_grantpolicy_matrix")
        if where == APPLICATIONS:
            return admin_url("oidc_provider_application_changelist")
        if where == ACCOUNT:
            name = _as_dict(refusal.registered).get("account")
            account = AccessAccount.objects.filter(name=name).values_list("pk", flat=True).first() if name else None
            return admin_url("oidc_provider_accessaccount_change", account) if account else None
        if where == ACCESS_KEYS:
            return admin_url("oidc_provider_accesskey_changelist", query={"q": _as_dict(refusal.sent).get("access_key", "")})
        if where == AUDIT:
            return admin_url("console_auditevent_changelist")
    except NoReverseMatch:  # a site without that admin page
        return None
    return None


# -- redirect URIs side by side -----------------------------------------------------------------


def redirect_uri_differences(sent, registered):
    """[(registered URI, [what differs from ``sent``])], the closest first."""
    compared = [(uri, _differences(sent or "", uri)) for uri in registered or []]
    return sorted(compared, key=lambda pair: len(pair[1]))


def _differences(sent, registered):
    if sent == registered:
        return []
    if sent.lower() == registered.lower():
        return [_("letter case")]
    try:
        a, b = urlsplit(sent), urlsplit(registered)
        a_port, b_port = a.port, b.port
    except ValueError:
        return [_("not a URL")]
    found = []
    if a.scheme.lower() != b.scheme.lower():
        found.append(_("scheme: %(sent)s instead of %(registered)s") % {"sent": a.scheme or "—", "registered": b.scheme})
    if (a.hostname or "") != (b.hostname or ""):
        found.append(_("host: %(sent)s instead of %(registered)s") % {"sent": a.hostname or "—", "registered": b.hostname or "—"})
    if a_port != b_port:
        found.append(_("port: %(sent)s instead of %(registered)s") % {
            "sent": a_port or _("default"), "registered": b_port or _("default")})
    if a.path != b.path:
        if a.path.rstrip("/") == b.path.rstrip("/"):
            found.append(_("trailing slash"))
        else:
            found.append(_("path: %(sent)s instead of %(registered)s") % {"sent": a.path or "/", "registered": b.path or "/"})
    if a.query != b.query:
        found.append(_("query string"))
    if a.fragment != b.fragment:
        found.append(_("fragment"))
    return found or [_("letter case")]


def _redirect_uri_fix(refusal):
    """(fix, where). Anyone can send a request naming any client with any redirect URI, so the
    fix never tells the admin to register a URI on a host the application does not already
    use, and gives no link to do it: only a near miss on a registered host (a trailing slash,
    a port, a path) is offered as something to add."""
    sent = _as_dict(refusal.sent).get("redirect_uri") or ""
    compared = redirect_uri_differences(sent, _as_dict(refusal.registered).get("redirect_uris") or [])
    try:
        sent_host = (urlsplit(sent).hostname or "").lower()
    except ValueError:
        sent_host = ""
    near = [(uri, differences) for uri, differences in compared if sent_host and _host(uri) == sent_host]
    if not near:
        return _("The request named {redirect_uri}, whose host is in none of this application's redirect URIs. "
                 "If that is where your application runs, register it; if you do not know it, change nothing: "
                 "anyone can send a request naming any client."), None
    closest, differences = near[0]
    return _("Send the registered %(closest)s exactly from the client (it differs by: %(differences)s), or, if "
             "{redirect_uri} is also your application's, add it to the redirect URIs.") % {
        "closest": closest.replace("{", "{{").replace("}", "}}"),
        "differences": ", ".join(differences).replace("{", "{{").replace("}", "}}"),
    }, REDIRECT_URIS


def _host(uri):
    try:
        return (urlsplit(uri).hostname or "").lower()
    except ValueError:
        return ""


# -- one item, as the API and the CLI give it --------------------------------------------------


def as_item(refusal):
    explanation = explain(refusal)
    return {
        "id": refusal.pk,
        "at": refusal.at.isoformat(),
        "client_id": refusal.client_id,
        "endpoint": refusal.endpoint,
        "error": refusal.error,
        "rule": refusal.rule,
        "sent": refusal.sent,
        "registered": refusal.registered,
        "fix": explanation.fix,
        "link": explanation.link,
        "request_id": refusal.request_id,
    }
