"""Why a relying party's authorization or token request was refused, as data.

Each refusal is announced once (``signals.request_refused``) with the rule that refused it, a
short stable name, and what the request carried beside what is configured. Those are facts,
never values that grant anything: a secret, code, token, verifier or password is named only
by what was wrong with it ("wrong", "already used").

The validator notes the rule where it decides (``note``); the token grants and the
authorization view announce it where the error response is made, and classify from the error
itself what oauthlib decided alone. A successful request notes and announces nothing.
"""

import json
from weakref import WeakKeyDictionary

from oauthlib.oauth2.rfc6749 import errors

from . import config_cache, policy, signals
from .applications import CLIENT_ID_MAX_LENGTH, cached_application
from .models import Application

AUTHORIZE = "authorize"
TOKEN = "token"

# The rules, one name per check.
CLIENT_ID_MISSING = "client_id_missing"
CLIENT_UNKNOWN = "client_unknown"
CLIENT_SECRET_MISSING = "client_secret_missing"
CLIENT_SECRET_WRONG = "client_secret_wrong"
PUBLIC_CLIENT_SENT_SECRET = "public_client_sent_secret"
ACCESS_KEY_INVALID = "access_key_invalid"
CLIENT_AUTH_THROTTLED = "client_auth_throttled"
REDIRECT_URI_MISSING = "redirect_uri_missing"
REDIRECT_URI_NOT_REGISTERED = "redirect_uri_not_registered"
REDIRECT_URI_INVALID = "redirect_uri_invalid"
REDIRECT_URI_MISMATCH = "redirect_uri_mismatch"
GRANT_NOT_ENABLED = "grant_not_enabled"
GRANT_FORBIDDEN_BY_POLICY = "grant_forbidden_by_policy"
RESPONSE_TYPE_UNSUPPORTED = "response_type_unsupported"
GRANT_TYPE_UNSUPPORTED = "grant_type_unsupported"
PKCE_MISSING = "pkce_missing"
PKCE_METHOD_NOT_S256 = "pkce_method_not_s256"
PKCE_CHALLENGE_MALFORMED = "pkce_challenge_malformed"
PKCE_MISMATCH = "pkce_mismatch"
PKCE_DOWNGRADE = "pkce_downgrade"
CODE_INVALID_OR_EXPIRED = "code_invalid_or_expired"
CODE_EXPIRED = "code_expired"
CODE_ISSUED_TO_ANOTHER_CLIENT = "code_issued_to_another_client"
CODE_REPLAYED = "code_replayed"
REFRESH_TOKEN_INVALID_OR_EXPIRED = "refresh_token_invalid_or_expired"
REFRESH_TOKEN_ISSUED_TO_ANOTHER_CLIENT = "refresh_token_issued_to_another_client"
REFRESH_TOKEN_REPLAYED = "refresh_token_replayed"
SCOPE_NOT_ALLOWED = "scope_not_allowed"
NONCE_MISSING = "nonce_missing"
USER_CREDENTIALS_WRONG = "user_credentials_wrong"
USER_LOCKED_OUT = "user_locked_out"
LOGIN_THROTTLED = "login_throttled"
LOGIN_REQUIRED = "login_required"
CONSENT_REQUIRED = "consent_required"
CONSENT_DENIED = "consent_denied"
ID_TOKEN_HINT_INVALID = "id_token_hint_invalid"
OTHER_USER = "other_user_requested"
REQUEST_OBJECT_NOT_SUPPORTED = "request_object_not_supported"
RESPONSE_MODE_NOT_ALLOWED = "response_mode_not_allowed"
CORS_ORIGIN_NOT_ALLOWED = "cors_origin_not_allowed"
REQUEST_INVALID = "request_invalid"

MAX_TEXT = 500  # characters kept of any value the request carried


def text(value, limit=MAX_TEXT):
    """A value the request carried as it may be kept: printable text, bounded."""
    if not isinstance(value, str):
        return ""
    return "".join(c if c.isprintable() else "?" for c in value[:limit])


def listed(value):
    """A registered space-separated list (redirect URIs, origins) as it may be kept: bounded,
    since registrants choose them."""
    return [text(item, 500) for item in (value or "").split()][:20]


def scopes_of(value):
    return [text(s, 100) for s in (value or "").split()][:50] if isinstance(value, str) else []


# -- the rule, noted where it is decided -------------------------------------------------------

# oauthlib's request -> (rule, sent, registered), for the request's lifetime only.
_noted = WeakKeyDictionary()


def note(request, rule, sent=None, registered=None):
    """The validator's word on why it refuses ``request``; the first note stands."""
    _noted.setdefault(request, (rule, sent or {}, registered or {}))


def grant_refusal(application, grant):
    """(rule, registered) for an application refused ``grant``: the policy forbids it for the
    type, or the application does not hold it."""
    registered = {
        "application_type": application.application_type,
        "grant_types": list(application.grant_types or []),
        "policy": policy.state_of(application.application_type, grant) if grant in policy.GRANTS else None,
    }
    if registered["policy"] == policy.FORBIDDEN:
        return GRANT_FORBIDDEN_BY_POLICY, registered
    return GRANT_NOT_ENABLED, registered


def _application(client_id):
    if isinstance(client_id, str) and client_id and client_id.isprintable() and len(client_id) <= CLIENT_ID_MAX_LENGTH:
        return cached_application(client_id)
    return None


def _read_application(client_id):
    if isinstance(client_id, str) and client_id and client_id.isprintable() and len(client_id) <= CLIENT_ID_MAX_LENGTH:
        return Application.objects.filter(client_id=client_id).first()
    return None


def unknown_client_id(client_id):
    """A client_id that names no application, as it may be kept: its first characters only.
    A client that mixes up its id and its secret sends the secret here, and these records
    are read by every console role."""
    client_id = text(client_id, 200)
    return client_id if len(client_id) <= 8 else client_id[:6] + "…"


def _announce(*, application, client_id, endpoint, error, description, rule, sent, registered, request):
    if application is None:
        client_id = unknown_client_id(client_id)
        if isinstance(sent, dict) and "client_id" in sent:
            sent = {**sent, "client_id": unknown_client_id(sent["client_id"])}
    signals.request_refused.send(
        sender=__name__, application=application, client_id=text(client_id, 200), endpoint=endpoint,
        error=text(error, 64), description=text(description), rule=rule, sent=sent, registered=registered,
        request=request,
    )


# -- the token endpoint ----------------------------------------------------------------------


def token_refused(request, error, description, validator):
    """Announce a refused token request: oauthlib's ``request``, the error it answered."""
    config_cache.confirm()  # a refusal is announced only on the current configuration
    client = request.client if isinstance(getattr(request, "client", None), Application) else None
    client_id = client.client_id if client is not None else validator.presented_client_id(request)
    noted = _noted.pop(request, None)
    if client is None and noted is None:
        # Refused before the client was looked at (a malformed request): one SELECT whether
        # or not the client_id exists, so that the answer's cost tells nothing about it. A
        # noted refusal came after the validator looked, and has the client it found.
        client = _read_application(client_id)
    rule, sent, registered = noted if noted else _classify_token_error(request, error, description, client)
    sent, registered = dict(sent), dict(registered)
    sent.setdefault("grant_type", text(request.grant_type, 100))
    origin = _refused_origin(request.headers.get("Origin"), client)
    if origin:
        sent["origin"] = origin
        registered["allowed_origins"] = listed(client.allowed_origins)
    _announce(application=client, client_id=client_id, endpoint=TOKEN, error=error, description=description,
              rule=rule, sent=sent, registered=registered, request=request)


def token_response_refused(request, body, validator):
    """``token_refused`` for an error response's JSON ``body``."""
    try:
        answer = json.loads(body)
    except (TypeError, ValueError):
        answer = {}
    if not isinstance(answer, dict):
        answer = {}
    token_refused(request, answer.get("error") or "", answer.get("error_description") or "", validator)


def _refused_origin(origin, client):
    if origin and client is not None and origin not in client.allowed_origins.split():
        return text(origin, 200)
    return ""


def _classify_token_error(request, error, description, client):
    """What oauthlib decided without the validator saying why, from the error it raised."""
    if error == "unsupported_grant_type":
        return GRANT_TYPE_UNSUPPORTED, {"grant_type": text(request.grant_type, 100)}, {"grant_types": list(policy.TOKEN_GRANT_TYPES)}
    if error == "invalid_scope":
        asked = scopes_of(request.scope)
        return SCOPE_NOT_ALLOWED, {"scope": asked}, {"scope": "what the authorization (or the refresh token's first grant) granted"}
    if error == "invalid_request" and description == errors.MissingCodeVerifierError.description:
        return PKCE_MISSING, {"code_verifier": "missing"}, {"code_challenge": "sent in the authorization request (S256)"}
    if error == "invalid_request" and description == errors.MissingRedirectURIError.description:
        return REDIRECT_URI_MISSING, {"redirect_uri": None}, {"redirect_uri": "the one sent in the authorization request"}
    if error == "invalid_grant" and not description and request.grant_type == "authorization_code" and request.code_verifier:
        # validate_code passed (or it would have noted why): the PKCE check refused it.
        return PKCE_MISMATCH, {"code_verifier": "does not match"}, {"code_challenge_method": "S256"}
    return REQUEST_INVALID, {}, {}


def origin_refused(http_request, client_id):
    """A token request answered, but from a browser origin its client does not list: the
    browser keeps the answer from the application."""
    client = _application(client_id)
    if client is None:
        return
    origin = text(http_request.META.get("HTTP_ORIGIN"), 200)
    _announce(
        application=client, client_id=client_id, endpoint=TOKEN, error="", description="", rule=CORS_ORIGIN_NOT_ALLOWED,
        sent={"origin": origin, "grant_type": text(http_request.POST.get("grant_type"), 100)},
        registered={"allowed_origins": listed(client.allowed_origins)}, request=http_request,
    )


# -- the authorization endpoint --------------------------------------------------------------


def authorization_refused(http_request, params, error, description, application=None, rule=None):
    """Announce a refused authorization request. ``params``: what it carried (query or form);
    ``error``: the OAuth error code; ``rule``: the view's check, or None to classify ``error``
    (an oauthlib error instance, or its code)."""
    client_id = params.get("client_id")
    if application is None:
        application = _application(client_id)
    sent = {}
    for name in ("response_type", "scope", "redirect_uri"):
        if params.get(name) is not None:
            sent[name] = text(params.get(name))
    registered = {}
    if rule is None:
        rule, extra_sent, registered = _classify_authorization_error(error, params, application)
        sent.update(extra_sent)
    else:
        extra_sent, registered = _authorization_facts(rule, params, application)
        sent.update(extra_sent)
    code = error.error if isinstance(error, errors.OAuth2Error) else error
    _announce(application=application, client_id=client_id, endpoint=AUTHORIZE, error=code or "",
              description=description, rule=rule, sent=sent, registered=registered, request=http_request)


def _classify_authorization_error(error, params, application):
    if isinstance(error, errors.MissingClientIdError):
        return CLIENT_ID_MISSING, {}, {}
    if isinstance(error, errors.InvalidClientIdError):
        return CLIENT_UNKNOWN, {"client_id": text(params.get("client_id"), 200)}, {}
    uris = {"redirect_uris": listed(application.redirect_uris)} if application is not None else {}
    if isinstance(error, errors.MissingRedirectURIError):
        return REDIRECT_URI_MISSING, {"redirect_uri": None}, uris
    if isinstance(error, errors.MismatchingRedirectURIError):
        return REDIRECT_URI_NOT_REGISTERED, {}, uris
    if isinstance(error, errors.InvalidRedirectURIError):
        return REDIRECT_URI_INVALID, {}, uris
    if isinstance(error, errors.AccessDeniedError):
        return CONSENT_DENIED, {"consent": "denied"}, {"skip_consent": bool(application and application.skip_authorization)}
    if isinstance(error, errors.MissingCodeChallengeError):
        return PKCE_MISSING, {"code_challenge": "missing"}, _pkce_registered(application)
    if isinstance(error, errors.UnsupportedCodeChallengeMethodError):
        return PKCE_METHOD_NOT_S256, {"code_challenge_method": text(params.get("code_challenge_method"), 20) or "plain"}, \
            {"code_challenge_methods": ["S256"]}
    if isinstance(error, errors.UnsupportedResponseTypeError) and application is not None:
        response_type = policy.normalise_response_type(params.get("response_type") or "")
        grant = policy.RESPONSE_TYPE_GRANTS.get(response_type)
        if grant is None:
            return RESPONSE_TYPE_UNSUPPORTED, {}, {"response_types": list(policy.RESPONSE_TYPES)}
        rule, registered = grant_refusal(application, grant)
        return rule, {"grant": grant}, registered
    if isinstance(error, errors.InvalidScopeError):
        return _scope_refusal(params, application)
    if isinstance(error, errors.InvalidRequestError) and "nonce" in (error.description or ""):
        return NONCE_MISSING, {"nonce": "missing"}, {"nonce": "required for this response_type"}
    return REQUEST_INVALID, {}, {}


def _pkce_registered(application):
    if application is None:
        return {}
    required = application.application_type in policy.PKCE_REQUIRED_TYPES
    return {"application_type": application.application_type, "pkce": "required (S256)" if required else "optional (S256)"}


def _scope_refusal(params, application):
    from .scopes import ProviderScopes

    asked = scopes_of(params.get("scope"))
    available = ProviderScopes().get_available_scopes(application=application)
    return SCOPE_NOT_ALLOWED, {"scope": asked, "not_allowed": [s for s in asked if s not in available]}, {"scopes": available}


def _authorization_facts(rule, params, application):
    """(sent, registered) beside a rule the authorization view decided itself."""
    if rule in (LOGIN_REQUIRED, CONSENT_REQUIRED, OTHER_USER):
        sent = {"prompt": text(params.get("prompt"), 100)}
        if params.get("max_age"):
            sent["max_age"] = text(params.get("max_age"), 20)
        return sent, ({"skip_consent": bool(application and application.skip_authorization)} if rule == CONSENT_REQUIRED else {})
    if rule == PKCE_CHALLENGE_MALFORMED:
        challenge = params.get("code_challenge") or ""
        return {"code_challenge": f"{len(challenge)} characters, not all of them allowed"}, {"code_challenge": "43-128 of A-Z a-z 0-9 - . _ ~"}
    if rule == RESPONSE_MODE_NOT_ALLOWED:
        return {"response_mode": text(params.get("response_mode"), 50)}, {"response_modes": ["query", "fragment", "form_post"]}
    if rule == REQUEST_OBJECT_NOT_SUPPORTED:
        return {name: "sent" for name in ("request", "request_uri") if params.get(name)}, {"request_objects": "not supported"}
    if rule == ID_TOKEN_HINT_INVALID:
        return {"id_token_hint": "not an ID token of this provider"}, {}
    return {}, {}
