"""The provider's rules, plugged into django-oauth-toolkit's OAuth2Validator.

Every code and token is read and written through ``store``; what passes between oauthlib's
calls travels on the attributes oauthlib and DOT define for it (``request.user``,
``request.scopes``, ``request.refresh_token_instance``, ``request.id_token``, ...); the rows a
request names are read once per request (``OIDCValidator._row``).
"""

import base64
import hashlib
import json
import uuid
from datetime import timedelta
from urllib.parse import unquote_plus
from weakref import WeakKeyDictionary

import jwt
from django.utils import timezone
from oauth2_provider.models import (
    get_access_token_model,
    get_grant_model,
    get_id_token_model,
    get_refresh_token_model,
    refresh_token_expire_timedelta,
    set_token_value,
)
from oauth2_provider.oauth2_validators import OAuth2Validator
from oauth2_provider.scopes import get_scopes_backend
from oauth2_provider.settings import oauth2_settings
from oauthlib.oauth2.rfc6749 import errors

from . import access_keys, claims, config_cache, keys, policy, refusals, secrets, sessions, signals, throttle
from .applications import CLIENT_ID_MAX_LENGTH, cached_application
from .conf import oidc_settings
from .models import AccessAccount, Application
from .store import Tokens, store


def token_checksum(token):
    """The stored digest of an access or refresh token (DOT's ``token_checksum``)."""
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


class ClientAuthenticationThrottled(errors.OAuth2Error):
    """Too many failed client authentications for this client or from this address."""

    error = "invalid_client"
    status_code = 429

    def __init__(self, retry_after, request=None):
        self.retry_after = int(retry_after)
        super().__init__(
            description=f"Too many failed client authentications for this client or from this address; "
            f"retry after {self.retry_after} seconds.",
            request=request,
        )

    @property
    def headers(self):
        return {"Retry-After": str(self.retry_after)}




def _printable(client_id):
    """A presented client_id as it may be kept in the audit log: printable text, bounded."""
    if not isinstance(client_id, str):
        return ""
    return "".join(c if c.isprintable() else "?" for c in client_id[:200])


def _looked_up(key, load):
    """(config_cache's value for key, whether the database was read for it)."""
    read = []

    def loader():
        read.append(True)
        return load()

    return config_cache.get(key, loader), bool(read)




def code_digest(code):
    """What is stored of an authorization code (the Grant's ``code``, a RedeemedCode): its
    sha256, looked up by the digest of the code presented. A code is some 178 random bits
    from the system's CSPRNG (oauthlib's generate_token), so neither a dictionary nor brute
    force can invert an unkeyed digest (DOT's token_checksum relies on the same); a key or
    a slow hash would buy nothing but time on every exchange."""
    return hashlib.sha256(code.encode("utf-8", "replace")).hexdigest()


# The member of a code's stored claims request that holds its login session's sid.
SID = "sid"


def code_token_family(code):
    """The refresh token family of the tokens a code's exchange issues, derived from the
    code: a replay of the code finds what to revoke by it, with no row of its own."""
    return uuid.UUID(bytes=hashlib.sha256(b"oidc_provider token family\x00" + code.encode()).digest()[:16], version=4)


def _scope_facts(asked, allowed):
    asked = [refusals.text(s, 100) for s in asked][:50]
    return {"scope": asked, "not_allowed": [s for s in asked if s not in set(allowed)]}


class OIDCValidator(OAuth2Validator):
    oidc_claim_scope = claims.CLAIM_SCOPES

    # -- client authentication ---------------------------------------------------

    @staticmethod
    def _application(pk):
        """An Application by primary key, from the per-process copy (config_cache)."""
        return config_cache.get(("application.pk", pk), lambda: Application.objects.filter(pk=pk).first())

    def _load_application(self, client_id, request):
        """The usable Application for client_id, from the per-process copy (config_cache)."""
        client = request.client
        if not (isinstance(client, Application) and client.client_id == client_id):
            if not isinstance(client_id, str):
                return None
            client = cached_application(client_id)
        request.client = client if client is not None and client.is_usable(request) else None
        return request.client

    def authenticate_client(self, request, *args, **kwargs):
        """The client's credentials (HTTP Basic or the form body), throttled.

        A client or address with too many recent failures is answered 429 before its
        credentials are checked, from the per-process copy of the blocks: a success pays no
        round trip for the throttle. Only a failure is counted (and announced).
        """
        self._read_named_row(request)
        client_id, client_secret = self._presented_credentials(request)
        self._refuse_if_blocked(request, client_id)
        if self._check_client_credentials(request, client_id, client_secret) and self.may_authenticate(request.client):
            return True
        return self._client_auth_failed(request, client_id, client_secret)

    def may_authenticate(self, client):
        """Whether this endpoint answers a client whose credentials are right."""
        return True

    def _refuse_if_blocked(self, request, client_id):
        retry_after = throttle.client_auth_blocked(client_id, request.headers)
        if retry_after:
            config_cache.confirm()  # a refusal is announced only on the current configuration
            refusals.note(request, refusals.CLIENT_AUTH_THROTTLED, {"client_id": refusals.text(client_id, 200)},
                          {"retry_after_seconds": int(retry_after)})
            signals.client_authentication_failed.send(
                sender=type(self), client_id=_printable(client_id), ip_address=throttle.client_address(request.headers),
                throttled=True, request=request,
            )
            raise ClientAuthenticationThrottled(retry_after, request=request)

    def _client_auth_failed(self, request, client_id, client_secret=None):
        """Count and announce a failed client authentication; False, or 429 once too many."""
        config_cache.confirm()  # a refusal is counted only on the current configuration
        refusals.note(request, *self._client_auth_refusal(request, client_id, client_secret))
        ip = throttle.client_ip(request.headers)
        retry_after = throttle.record_client_auth_failure(client_id, ip)
        # An id that names no client may be a secret sent in its place: announced cut short.
        presented = _printable(client_id) if request.client is not None else refusals.unknown_client_id(client_id)
        signals.client_authentication_failed.send(
            sender=type(self), client_id=presented, ip_address=throttle.client_address(request.headers),
            throttled=bool(retry_after), request=request,
        )
        if retry_after:
            raise ClientAuthenticationThrottled(retry_after, request=request)
        return False

    @staticmethod
    def _client_auth_refusal(request, client_id, client_secret):
        """(rule, sent, registered) of a failed client authentication: facts, never the secret."""
        client = request.client if isinstance(request.client, Application) else None
        if client is None:
            if isinstance(client_id, str) and access_keys.is_access_key(client_id):
                return refusals.ACCESS_KEY_INVALID, {"access_key": refusals.text(client_id, 200), "secret_key": "wrong, or the pair revoked"}, {}
            return refusals.CLIENT_UNKNOWN, {"client_id": refusals.text(client_id, 200)}, {}
        method = "client_secret_basic" if request.headers.get("Authorization") else "client_secret_post"
        registered = {"application_type": client.application_type, "client_type": client.client_type}
        if client.is_public:
            return refusals.PUBLIC_CLIENT_SENT_SECRET, {"client_secret": "sent", "method": method}, {**registered, "client_secret": None}
        if not client_secret:
            return refusals.CLIENT_SECRET_MISSING, {"client_secret": "missing"}, {**registered, "client_secret": "set"}
        return refusals.CLIENT_SECRET_WRONG, {"client_secret": "wrong", "method": method}, {**registered, "client_secret": "set"}

    def presented_client_id(self, request):
        """The client_id a token request names (HTTP Basic or the form body), unchecked."""
        return self._presented_credentials(request)[0]

    def _check_client_credentials(self, request, client_id, client_secret):
        """Whether the credentials are an active AK/SK pair or a client's id and secret.

        Every failure costs the same whether the id exists or not, or an attacker could
        time which AKs and client_ids exist: each kind of id is looked up in the database
        once (an id found in the per-process copy is read again) and one digest computed
        (against a dummy for an unknown id).
        """
        if not isinstance(client_id, str) or not client_id.isprintable() or len(client_id) > CLIENT_ID_MAX_LENGTH:
            return False  # no client has such an id (nor could the database compare it)
        if access_keys.is_access_key(client_id):
            key = access_keys.authenticate(client_id, client_secret)
            if key is not None:
                request.access_key = key
                request.client = key.account.application
                request.client_id = request.client.client_id
                return True
            # Not a valid pair: it may still be an application's client_id that starts with "AK".
        client, read = _looked_up(("application", client_id), lambda: Application.objects.filter(client_id=client_id).first())
        if client is not None and client.client_id == client_id and client.is_usable(request):
            request.client = client
            if secrets.verify(client_secret, client.client_secret):
                return True
        else:
            request.client = None
            secrets.verify(client_secret or "", secrets.DUMMY_DIGEST)
        if not read:
            Application.objects.filter(client_id=client_id).first()
        return False

    def authenticate_client_id(self, client_id, request, *args, **kwargs):
        # A public client names itself without a secret; an unknown name is a failure like
        # a wrong secret, counted and throttled the same way.
        self._read_named_row(request)
        self._refuse_if_blocked(request, client_id)
        if super().authenticate_client_id(client_id, request, *args, **kwargs):
            return True
        return self._client_auth_failed(request, client_id)


    def _presented_credentials(self, request):
        """(client_id, client_secret) from HTTP Basic or the form body, without checking them."""
        auth = self._extract_basic_auth(request)
        if auth:
            try:
                decoded = base64.b64decode(auth, validate=True).decode("utf-8")
                client_id, colon, secret = decoded.partition(":")
                if not colon:
                    return None, None  # RFC 7617: "client_id:secret"
                return unquote_plus(client_id), unquote_plus(secret)
            except (ValueError, UnicodeDecodeError):
                return None, None
        return getattr(request, "client_id", None), getattr(request, "client_secret", None)


    def validate_scopes(self, client_id, scopes, client, request, *args, **kwargs):
        key = getattr(request, "access_key", None)
        if key is not None:
            # An AK/SK token may carry only scopes among its account's resource permissions.
            if set(scopes) <= set(key.account.scopes):
                return True
            refusals.note(request, refusals.SCOPE_NOT_ALLOWED, _scope_facts(scopes, key.account.scopes),
                          {"account": key.account.name, "scopes": list(key.account.scopes)})
            return False
        if request.grant_type == "client_credentials" and "openid" in scopes:
            # No end user, no identity: an application's token is for access only, and openid
            # is dropped from what is granted rather than refused.
            scopes = request.scopes = [scope for scope in scopes if scope != "openid"]
        if super().validate_scopes(client_id, scopes, client, request, *args, **kwargs):
            return True
        available = get_scopes_backend().get_available_scopes(application=client, request=request)
        refusals.note(request, refusals.SCOPE_NOT_ALLOWED, _scope_facts(scopes, available), {"scopes": list(available)})
        return False

    def get_default_scopes(self, client_id, request, *args, **kwargs):
        key = getattr(request, "access_key", None)
        if key is not None:
            return list(key.account.scopes)
        return super().get_default_scopes(client_id, request, *args, **kwargs)

    # -- policy, as it stands at the moment of each request ------------------------

    def validate_grant_type(self, client_id, grant_type, client, request, *args, **kwargs):
        grant = policy.TOKEN_GRANT_TYPES.get(grant_type)
        if grant and policy.may_use(client, grant):
            return True
        config_cache.confirm()  # a refusal is announced only on the current configuration
        rule, registered = refusals.grant_refusal(client, grant)
        refusals.note(request, rule, {"grant_type": refusals.text(grant_type, 100)}, registered)
        signals.grant_refused.send(sender=type(self), application=client, grant=grant_type, reason="unauthorized_client", request=request)
        raise errors.UnauthorizedClientError(
            description=f"This client may not use grant_type={grant_type}: the application does not hold that grant, "
            f"or the grant policy forbids it for '{client.application_type}' applications.",
            request=request,
        )

    def validate_response_type(self, client_id, response_type, client, request, *args, **kwargs):
        self._parse_claims_request(request)
        grant = policy.RESPONSE_TYPE_GRANTS.get(policy.normalise_response_type(response_type))
        if grant and policy.may_use(client, grant):
            return True
        signals.grant_refused.send(sender=type(self), application=client, grant=grant, reason="unsupported_response_type", request=request)
        raise errors.UnsupportedResponseTypeError(
            description=f"This client may not use response_type={response_type}: it needs the '{grant}' grant, "
            f"which the application does not hold or the grant policy forbids for '{client.application_type}' applications.",
            request=request,
        )

    @staticmethod
    def _parse_claims_request(request):
        """The claims parameter, parsed where oauthlib has checked the redirect URI (this is
        the first hook after it), so that a malformed one goes back to the client as
        invalid_request (OIDC Core 5.5) rather than to an error page."""
        try:
            request.claims = claims.parse_claims_request(request.claims)
        except ValueError as e:
            raise errors.InvalidRequestError(description=str(e), request=request)

    def validate_user(self, username, password, client, request, *args, **kwargs):
        # oauthlib checks the password before the grant type; a client that may not use
        # this grant must not get to test passwords at all.
        self.validate_grant_type(client.client_id, "password", client, request)
        if throttle.is_throttled(throttle.client_ip(request.headers)):
            refusals.note(request, refusals.LOGIN_THROTTLED, {"address": "too many failed logins"}, {})
            raise errors.CustomOAuth2Error(
                error="slow_down", status_code=429, request=request,
                description="Too many failed logins from this address; wait 15 minutes and try again.",
            )
        if super().validate_user(username, password, client, request, *args, **kwargs):
            return True
        if getattr(getattr(request, "http_request", None), "axes_locked_out", False):
            refusals.note(request, refusals.USER_LOCKED_OUT, {"username": "locked for this address"}, {})
            raise errors.InvalidGrantError(
                description="Too many failed logins for this username from this address: it is locked for 15 minutes.",
                request=request,
            )
        refusals.note(request, refusals.USER_CREDENTIALS_WRONG, {"password": "wrong, or no such user"}, {})
        return False

    def build_http_request(self, request):
        # Kept so validate_user can see what django-axes decided about it.
        request.http_request = super().build_http_request(request)
        return request.http_request

    def is_pkce_required(self, client_id, request):
        client = request.client or self._load_application(client_id, request)
        return client is not None and client.application_type in policy.PKCE_REQUIRED_TYPES

    # -- the authorization endpoint leaves these to the view, which knows the session --

    def validate_silent_login(self, request):
        return True

    def validate_silent_authorization(self, request):
        return True

    def validate_user_match(self, id_token_hint, scopes, claims, request):
        return True

    # -- the row a request names, read once ------------------------------------------

    # oauthlib asks for a code's row up to six times per exchange, and the row a request
    # names is read before its client is authenticated: each is read once per request, and
    # forgotten with the request.
    _rows = WeakKeyDictionary()

    def _row(self, request, read, key):
        """``store.<read>(key)`` (``read`` names a store read), once per request."""
        rows = self._rows.setdefault(request, {})
        if (read, key) not in rows:
            rows[(read, key)] = getattr(store, read)(key)
        return rows[(read, key)]

    def _read_named_row(self, request):
        """Read the code or refresh token a token request names before its client is
        authenticated: the fast store's SELECT then carries config_cache's version, which
        the authentication would otherwise read in a round trip of its own."""
        if request.grant_type == "authorization_code" and isinstance(request.code, str):
            self._grant(request.code, request)
        elif request.grant_type == "refresh_token" and isinstance(request.refresh_token, str):
            self._refresh_token_row(request.refresh_token, request)

    # -- codes: single use, and a replay revokes what the first exchange issued ----

    def _grant(self, code, request):
        """The Grant row of this code (its user and subject joined), or None."""
        return self._row(request, "read_code", code_digest(code))

    def save_authorization_code(self, client_id, code, request, *args, **kwargs):
        if request.code_challenge_method == "plain":  # RFC 9700 §2.1.1 (our server refuses it earlier)
            raise errors.InvalidRequestError(description='Unsupported "plain" code_challenge_method; use "S256".', request=request)
        store.save_code(get_grant_model()(
            application=request.client,
            user=request.user,
            code=code_digest(code["code"]),
            expires=timezone.now() + timedelta(seconds=oauth2_settings.AUTHORIZATION_CODE_EXPIRE_SECONDS),
            redirect_uri=request.redirect_uri,
            scope=" ".join(request.scopes),
            code_challenge=request.code_challenge or "",
            code_challenge_method=request.code_challenge_method or "",
            nonce=request.nonce or "",
            claims=json.dumps(self._code_claims(request)),
            resource=getattr(request, "resource", []),
        ))
        session = getattr(request, "login_session", None)
        if session is not None:
            sessions.record_sign_in(session, request.client, code_digest=code_digest(code["code"]),
                                    token_family=code_token_family(code["code"]), offline="offline_access" in request.scopes)

    @staticmethod
    def _code_claims(request):
        """What a code's claims column carries to the token endpoint: the claims request, and
        the sid of the login session it was issued in (its ID tokens carry it)."""
        stored = claims.parse_claims_request(request.claims)
        session = getattr(request, "login_session", None)
        if session is not None:
            stored[SID] = session.sid
        return stored

    def get_authorization_code_scopes(self, client_id, code, redirect_uri, request):
        grant = self._grant(code, request)
        return grant.scope.split() if grant and grant.scope else []

    def get_authorization_code_nonce(self, client_id, code, redirect_uri, request):
        grant = self._grant(code, request)
        return (grant.nonce or None) if grant else None

    def get_code_challenge(self, code, request):
        grant = self._grant(code, request)
        return (grant.code_challenge or None) if grant else None

    def get_code_challenge_method(self, code, request):
        grant = self._grant(code, request)
        return (grant.code_challenge_method or None) if grant else None

    def confirm_redirect_uri(self, client_id, code, redirect_uri, client, request, *args, **kwargs):
        grant = self._grant(code, request)
        if grant is not None and grant.application_id == client.pk and grant.redirect_uri_allowed(redirect_uri):
            return True
        refusals.note(request, refusals.REDIRECT_URI_MISMATCH, {"redirect_uri": refusals.text(redirect_uri)},
                      {"redirect_uri": grant.redirect_uri if grant is not None else None})
        return False

    def validate_code(self, client_id, code, client, request, *args, **kwargs):
        grant = self._grant(code, request)
        if grant is not None and grant.application_id == client.pk and not grant.is_expired():
            if request.code_verifier is not None and not grant.code_challenge:
                # A verifier for a code issued without a challenge: the code may have been
                # injected into this client's session (PKCE downgrade, RFC 9700 §2.1.1).
                refusals.note(request, refusals.PKCE_DOWNGRADE, {"code_verifier": "sent"}, {"code_challenge": None})
                raise errors.InvalidGrantError(request=request, description=(
                    "This code was issued without a code_challenge, so the token request must not send a "
                    "code_verifier. Send code_challenge (S256) in the authorization request, or leave "
                    "code_verifier out."))
            request.scopes = grant.scope.split(" ")
            request.user = grant.user
            if grant.nonce:
                request.nonce = grant.nonce
            if grant.claims:
                request.claims = json.loads(grant.claims)
                request.sid = request.claims.pop(SID, None)
            return True
        if self._code_replayed(code, client, request):
            refusals.note(request, refusals.CODE_REPLAYED, {"code": "already used"}, {"code": "redeemed; its tokens now revoked"})
        elif grant is None:
            refusals.note(request, refusals.CODE_INVALID_OR_EXPIRED, {"code": "unknown"},
                          {"code_lifetime_seconds": oauth2_settings.AUTHORIZATION_CODE_EXPIRE_SECONDS})
        elif grant.application_id != client.pk:
            refusals.note(request, refusals.CODE_ISSUED_TO_ANOTHER_CLIENT, {"code": "issued to another client"},
                          {"code_issued_to": getattr(self._application(grant.application_id), "client_id", None)})
        else:
            refusals.note(request, refusals.CODE_EXPIRED, {"code": "expired"},
                          {"code_lifetime_seconds": oauth2_settings.AUTHORIZATION_CODE_EXPIRE_SECONDS})
        return False

    def _code_replayed(self, code, client, request):
        """A spent code presented again (RFC 6749 §4.1.2): revoke the tokens it issued. True
        when it was one."""
        if store.revoke_redeemed_code(code_digest(code), code_token_family(code), client):
            signals.code_replayed.send(sender=type(self), application=client, request=request)
            return True
        return False

    def invalidate_authorization_code(self, client_id, code, request, *args, **kwargs):
        """Nothing left to do: save_bearer_token redeemed the code with its tokens."""

    def _check_and_set_request_resource(self, request):
        if request.grant_type != "authorization_code":
            return super()._check_and_set_request_resource(request)
        # DOT would read the Grant by the code in clear; we keep its digest, read already.
        request.grant_type = None
        try:
            super()._check_and_set_request_resource(request)
        finally:
            request.grant_type = "authorization_code"
        grant = self._grant(request.code, request)
        granted = (grant.resource or []) if grant else []
        if request.resource and granted:
            for resource in request.resource:
                if resource not in granted:
                    raise errors.CustomOAuth2Error(
                        error="invalid_target", request=request,
                        description=f"The requested resource '{resource}' is not allowed: a token request cannot "
                        "ask for more than the authorization granted.",
                    )
        elif granted:
            self._validate_resource_uris(request, granted)
            request.resource = granted

    # -- refresh tokens: rotation, replay detection, lifetimes -------------------------

    def validate_refresh_token(self, refresh_token, client, request, *args, **kwargs):
        """A live refresh token of this client, within its lifetimes. A revoked one coming
        back is a replay (RFC 9700 §4.14.2): its whole family is revoked."""
        rt = self._refresh_token_row(refresh_token, request)
        if rt is None:
            refusals.note(request, refusals.REFRESH_TOKEN_INVALID_OR_EXPIRED, {"refresh_token": "unknown"}, {})
            return False
        if rt.application_id != client.pk:
            refusals.note(request, refusals.REFRESH_TOKEN_ISSUED_TO_ANOTHER_CLIENT, {"refresh_token": "issued to another client"},
                          {"refresh_token_issued_to": getattr(self._application(rt.application_id), "client_id", None)})
            return False
        if rt.revoked is not None:
            self._refresh_token_replayed(rt, client, request)
            refusals.note(request, refusals.REFRESH_TOKEN_REPLAYED, {"refresh_token": "already used"},
                          {"refresh_token": "rotated or revoked; its family now revoked"})
            return False
        # A live token is paired with an access token, and dies REFRESH_TOKEN_IDLE_TTL after
        # that expired (DOT's rule); its family dies REFRESH_TOKEN_MAX_TTL after it began.
        expire_delta = refresh_token_expire_timedelta()
        now = timezone.now()
        if rt.access_token is None or (expire_delta and rt.access_token.expires + expire_delta <= now):
            refusals.note(request, refusals.REFRESH_TOKEN_INVALID_OR_EXPIRED, {"refresh_token": "expired (idle)"}, {})
            return False
        max_ttl = oidc_settings.REFRESH_TOKEN_MAX_TTL
        if max_ttl and rt.family_born and rt.family_born + timedelta(seconds=max_ttl) <= now:
            refusals.note(request, refusals.REFRESH_TOKEN_INVALID_OR_EXPIRED, {"refresh_token": "expired (family lifetime)"},
                          {"refresh_token_max_ttl_seconds": max_ttl})
            return False
        rt.application = client
        request.user = rt.user
        request.sid = rt.sid  # the login session its family began in
        request.refresh_token = refresh_token
        request.refresh_token_instance = rt
        return True

    def _refresh_token_row(self, refresh_token, request):
        """The row of this refresh token (live or revoked; see store.read_refresh_token), or None."""
        return self._row(request, "read_refresh_token", token_checksum(refresh_token))

    def _refresh_token_replayed(self, rt, client, request):
        if rt.token_family and oauth2_settings.REFRESH_TOKEN_REUSE_PROTECTION:
            store.revoke_family(rt.token_family)
        signals.refresh_token_replayed.send(sender=type(self), application=client, token_family=rt.token_family, request=request)

    # -- tokens ---------------------------------------------------------------------

    def save_bearer_token(self, token, request, *args, **kwargs):
        """Save what the grant issued, in one call to the store: a code's redemption, a
        refresh token's rotation, or an access token alone."""
        if "refresh_token" in token and not policy.may_use(request.client, policy.REFRESH_TOKEN):
            # A refresh token only for applications that may refresh.
            del token["refresh_token"]
        if "scope" not in token:
            raise errors.FatalClientError("Failed to renew access token: missing scope")
        self._check_and_set_request_resource(request)
        if request.grant_type == "client_credentials":
            request.user = None
        previous = request.refresh_token_instance if request.grant_type == "refresh_token" else None
        tokens = self._tokens(token, request, previous)
        if not token["scope"]:
            del token["scope"]  # nothing granted but access: RFC 6749 §5.1 makes scope optional, never ""
        if request.grant_type == "authorization_code":
            if not store.redeem_code(code_digest(request.code), request.client, tokens):
                # Spent meanwhile by a concurrent exchange: this one is its replay.
                self._code_replayed(request.code, request.client, request)
                refusals.note(request, refusals.CODE_REPLAYED, {"code": "already used"}, {"code": "redeemed"})
                raise errors.InvalidGrantError(description="The authorization code has already been used.", request=request)
        elif previous is not None:
            if not store.rotate_refresh_token(previous, tokens):
                # Rotated meanwhile by a concurrent request: this one is its replay.
                self._refresh_token_replayed(previous, request.client, request)
                refusals.note(request, refusals.REFRESH_TOKEN_REPLAYED, {"refresh_token": "already used"},
                              {"refresh_token": "rotated; its family now revoked"})
                raise errors.InvalidGrantError(description="The refresh token has already been used.", request=request)
        else:
            store.issue_access_token(tokens)
            session = getattr(request, "login_session", None)
            if session is not None:  # issued at the authorization endpoint (implicit, hybrid), or a password grant's
                family = tokens.refresh_token.token_family if tokens.refresh_token is not None else None
                sessions.record_sign_in(session, request.client, access_token_id=tokens.access_token.pk,
                                        token_family=family, offline="offline_access" in request.scopes)
        token["expires_in"] = oauth2_settings.ACCESS_TOKEN_EXPIRE_SECONDS
        signals.token_issued.send(
            sender=type(self), application=request.client, grant=request.grant_type or request.response_type,
            user=request.user, request=request,
        )

    def _tokens(self, token, request, previous):
        """The rows for what oauthlib generated, unsaved: the ID token finalize_id_token made,
        the access token, and the refresh token (in the family of ``previous``, or of the code)."""
        id_token = request.id_token if token.get("id_token") and isinstance(request.id_token, get_id_token_model()) else None
        expires = timezone.now() + timedelta(seconds=token.get("expires_in", oauth2_settings.ACCESS_TOKEN_EXPIRE_SECONDS))
        resource = getattr(request, "resource", [])
        access_token = get_access_token_model()(
            user=request.user, scope=token["scope"], expires=expires, id_token=id_token, application=request.client,
            source_refresh_token=previous, resource=resource,
        )
        set_token_value(access_token, token["access_token"])
        refresh_token = None
        if "refresh_token" in token:
            if previous is not None:
                family = previous.token_family
            elif request.grant_type == "authorization_code":
                family = code_token_family(request.code)
            else:
                family = uuid.uuid4()
            refresh_token = get_refresh_token_model()(
                user=request.user, application=request.client, access_token=access_token, token_family=family,
                resource=resource,
            )
            set_token_value(refresh_token, token["refresh_token"])
        return Tokens(access_token=access_token, id_token=id_token, refresh_token=refresh_token)

    def _load_access_token(self, token):
        # DOT's lookup, with the user's `sub` in the same query (userinfo needs it) and the
        # application from config_cache rather than a join.
        return self._with_application(store.read_access_token(token_checksum(token)))

    def _with_application(self, token):
        if token is not None:
            token.application = self._application(token.application_id)
        return token

    # -- introspection (RFC 7662) ------------------------------------------------------

    def introspect_token(self, token, token_type_hint, request, *args, **kwargs):
        """Claims of an active token the caller may see, else None (-> {"active": false}).

        A client sees its own tokens only; an application marked as a resource server sees all.
        """
        checksum = token_checksum(token)
        lookups = [self._introspect_access_token, self._introspect_refresh_token]
        if token_type_hint == "refresh_token":
            lookups.reverse()
        caller = request.client
        for lookup in lookups:
            found = lookup(checksum, request)
            if found is None:
                continue
            owner, claims_ = found
            if owner.pk != caller.pk and not caller.is_resource_server:
                return None
            return claims_
        return None

    def _token_claims(self, token, token_type, scope):
        data = {
            "scope": scope,
            "client_id": token.application.client_id,
            "token_type": token_type,
            "iss": oidc_settings.issuer,
            "iat": int(token.created.timestamp()),
        }
        if token.user_id is not None:
            data["sub"] = claims.subject(token.user)
            data["username"] = token.user.get_username()
        if token.application.application_type == policy.SERVICE:
            account = self._account_name(token.application_id)
            if account:
                data["account"] = account
        return data

    @staticmethod
    def _account_name(application_id):
        """The name of the access account behind a service application, or "" (kept in
        config_cache: a resource server introspects machine tokens on every call)."""
        return config_cache.get(
            ("access_account.name", application_id),
            lambda: AccessAccount.objects.filter(application_id=application_id).values_list("name", flat=True).first() or "",
        )


    def _introspect_access_token(self, checksum, request):
        token = self._with_application(self._row(request, "read_access_token", checksum))
        if token is None or token.is_expired():
            return None
        data = self._token_claims(token, "Bearer", token.scope)
        data.update(exp=int(token.expires.timestamp()), aud=token.application.client_id)
        return token.application, data

    def _introspect_refresh_token(self, checksum, request):
        token = self._with_application(store.read_refresh_token(checksum))
        if token is None or token.revoked is not None or token.access_token is None:
            return None
        data = self._token_claims(token, "refresh_token", token.access_token.scope)
        return token.application, data

    # -- ID tokens (OIDC Core 2, 3.1.3.6, 5.4) ----------------------------------------

    def get_oidc_issuer_endpoint(self, request):
        return oidc_settings.issuer

    def get_claim_dict(self, request):
        return {"sub": claims.subject(request.user), **claims.user_claims(request.user)}

    def get_discovery_claims(self, request):
        return ["sub", *claims.CLAIM_SCOPES]

    def get_oidc_claims(self, token, token_handler, request):
        return claims.claims_for_scopes(request.user, request.scopes)

    def get_userinfo_claims(self, request):
        if request.user is None:
            raise errors.InsufficientScopeError(description="This access token has no end user behind it.", request=request)
        return claims.claims_for_scopes(request.user, request.scopes)

    def get_id_token_dictionary(self, token, token_handler, request):
        user = request.user
        if policy.normalise_response_type(request.response_type) == "id_token":
            # No access token to call userinfo with: the scopes' claims go in the ID token.
            id_claims = claims.claims_for_scopes(user, request.scopes)
        else:
            id_claims = {"sub": claims.subject(user)}
            id_claims.update(claims.requested_claims(user, request.scopes, request.claims, "id_token"))
        now = timezone.now()
        expires = now + timedelta(seconds=oidc_settings.ID_TOKEN_TTL)
        auth_time = user.last_login or now
        if request.grant_type == "password":
            request.login_session = sessions.begin_without_browser(user)
        session = getattr(request, "login_session", None)
        sid = session.sid if session is not None else getattr(request, "sid", None)
        if sid:
            id_claims["sid"] = sid
        id_claims.update(
            iss=oidc_settings.issuer,
            exp=int(expires.timestamp()),
            auth_time=int(auth_time.timestamp()),
            jti=str(uuid.uuid4()),
            azp=request.client.client_id,
        )
        return id_claims, expires

    def finalize_id_token(self, id_token, token, token_handler, request):
        id_claims, expires = self.get_id_token_dictionary(token, token_handler, request)
        id_token.update(id_claims)
        if "nonce" not in id_token and request.nonce:
            id_token["nonce"] = request.nonce
        signed = keys.active_key().sign(id_token, headers={"typ": "JWT"})
        row = get_id_token_model()(
            user=request.user, scope=request.scope or " ".join(request.scopes), expires=expires, jti=id_token["jti"],
            application=request.client,
        )
        if "access_token" not in token:
            row = store.save_id_token(row)  # nothing else to hang from (response_type=id_token, code id_token)
        # Else save_bearer_token saves it with the access token that points at it.
        request.id_token = request.access_token = row
        return signed

    def _load_id_token(self, token):
        """The IDToken row of an ID token we signed with any published key (not only the active one)."""
        try:
            id_claims = keys.verify(token)
        except jwt.InvalidTokenError:
            return None
        return store.read_id_token(id_claims.get("jti"))

    def _get_key_for_token(self, token):
        try:
            key = keys.key_for_kid(jwt.get_unverified_header(token).get("kid"))
        except jwt.InvalidTokenError:
            return None
        return key.jwcrypto_key if key else None


class ConfidentialClientsOnly:
    """Mixed into the configured validator for the introspection endpoint (RFC 7662 §2.1):
    it tells a token's owner only to a client that proved who it is, and a public client
    can prove nothing."""

    def client_authentication_required(self, request, *args, **kwargs):
        return True

    def _read_named_row(self, request):
        # The access token an introspection names (unless hinted to be a refresh token).
        if isinstance(request.token, str) and request.token_type_hint != "refresh_token":
            self._row(request, "read_access_token", token_checksum(request.token))

    def may_authenticate(self, client):
        return client.client_type == Application.CLIENT_CONFIDENTIAL
