"""The provider's rules, plugged into django-oauth-toolkit's OAuth2Validator."""

import base64
import hashlib
import json
import logging
import uuid
from contextlib import nullcontext
from contextvars import ContextVar
from datetime import timedelta
from urllib.parse import unquote_plus

import jwt
from django.db import router, transaction
from django.db.models import Min
from django.utils import timezone
from oauth2_provider.models import (
    AbstractAccessToken,
    AbstractRefreshToken,
    get_access_token_model,
    get_grant_model,
    get_id_token_model,
    get_refresh_token_model,
    refresh_token_expire_timedelta,
    revoke_access_token,
)
from oauth2_provider.oauth2_validators import OAuth2Validator
from oauth2_provider.settings import oauth2_settings
from oauthlib.oauth2.rfc6749 import errors

from . import (
    access_keys,
    claims,
    config_cache,
    keys,
    policy,
    secrets,
    signals,
    statements,
    throttle,
)
from .conf import oidc_settings
from .models import AccessAccount, Application, RedeemedCode

log = logging.getLogger(__name__)

# The access token this request's exchange saved, for the token view's app_authorized signal.
issued_access_token = ContextVar("issued_access_token", default=None)


# The token a request names, read before its client was authenticated (read_ahead()):
# (checksum, row or None) of the access token an introspection asks about, and of the live
# refresh token a refresh presents.
_introspected = ContextVar("introspected_access_token", default=None)
_presented_refresh = ContextVar("presented_refresh_token", default=None)


def token_checksum(token):
    """The stored digest of an access or refresh token (DOT's ``token_checksum``)."""
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


def _read_access_token(checksum):
    """The access token with this checksum (user and ``sub`` joined), or None; when this
    request has yet to read config_cache's version, it comes in the same SELECT."""
    return statements.first(
        get_access_token_model(), "token_checksum", checksum, related=("user", "oidc_subject"), config_version=True
    )


def _read_live_refresh_token(checksum):
    """The unrevoked refresh token with this checksum (its access token, user and ``sub``
    joined, its family's birth when families have a maximum lifetime), or None; locked
    inside a transaction; config_cache's version in the same SELECT, as above."""
    model = get_refresh_token_model()
    born = (("family_born", (_family_born_sql, model._meta.get_field("created"))),)
    return statements.first(
        model, "token_checksum", checksum, related=(("access_token",), ("user", "oidc_subject")), config_version=True,
        null=("revoked",), annotations=born if oidc_settings.REFRESH_TOKEN_MAX_TTL else (), lock=True,
    )


def _family_born_sql(qn):
    """When the refresh token's family began: its first token's ``created``."""
    meta = get_refresh_token_model()._meta
    table, created, family = qn(meta.db_table), qn(meta.get_field("created").column), qn(meta.get_field("token_family").column)
    return f"(SELECT f.{created} FROM {table} f WHERE f.{family} = t0.{family} ORDER BY f.{created} LIMIT 1)"


class read_ahead:
    """Read the token a request names before its client is authenticated. That SELECT then
    carries config_cache's version, which the client's authentication needs first: one
    round trip, not two. Nothing of the row is used unless the client authenticates.

    ``read_ahead.introspection(token)`` around an introspection, ``read_ahead.refresh(token)``
    around a refresh request's first attempt (not its serialised retry, which locks the row).
    """

    def __init__(self, var, read, token):
        self.var, self.read = var, read
        self.token = token if isinstance(token, str) and token else None

    @classmethod
    def introspection(cls, token):
        return cls(_introspected, _read_access_token, token)

    @classmethod
    def refresh(cls, token):
        return cls(_presented_refresh, _read_live_refresh_token, token)

    def __enter__(self):
        if self.token is not None:
            checksum = token_checksum(self.token)
            self._reset = self.var.set((checksum, self.read(checksum)))
        return self

    def __exit__(self, *exc):
        if self.token is not None:
            self.var.reset(self._reset)

    @staticmethod
    def take(var, read, checksum):
        """The row read ahead for this checksum, else ``read(checksum)`` now."""
        ahead = var.get()
        return ahead[1] if ahead is not None and ahead[0] == checksum else read(checksum)


# True while an introspection request is answered (IntrospectionView).
_introspecting = ContextVar("introspecting", default=False)


class introspecting:
    """Around an introspection: its caller must authenticate as a confidential client."""

    def __enter__(self):
        self._reset = _introspecting.set(True)
        return self

    def __exit__(self, *exc):
        _introspecting.reset(self._reset)


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


CLIENT_ID_MAX_LENGTH = Application._meta.get_field("client_id").max_length


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


class RefreshTokenRaced(Exception):
    """Another request rotated this refresh token between its validation and its rotation.

    The token view runs the request again, serialised, so DOT's rules see a replay.
    """


def _locking(queryset):
    # Row locks exist only inside a transaction, and only where the database has them
    # (PostgreSQL; on SQLite the IMMEDIATE transaction is the lock).
    connection = transaction.get_connection(router.db_for_write(queryset.model))
    if connection.in_atomic_block and connection.features.has_select_for_update:
        return queryset.select_for_update(of=("self",))
    return queryset


def _stock_revoke(refresh_token_model):
    """Whether revoking a refresh token is DOT's own (stamp it, delete its access token), so
    the rotation may do it in two statements; a swapped model that overrides revoke() is
    revoked through it."""
    return (
        refresh_token_model.revoke is AbstractRefreshToken.revoke
        and get_access_token_model().revoke is AbstractAccessToken.revoke
    )


def cached_application(client_id):
    """The Application with this client_id, or None, from the per-process copy (config_cache)."""
    return config_cache.get(("application", client_id), lambda: Application.objects.filter(client_id=client_id).first())


def code_digest(code):
    """What is stored of an authorization code (the Grant's ``code``, a RedeemedCode): its
    sha256, looked up by the digest of the code presented. A code is some 178 random bits
    from the system's CSPRNG (oauthlib's generate_token), so neither a dictionary nor brute
    force can invert an unkeyed digest (DOT's token_checksum relies on the same); a key or
    a slow hash would buy nothing but time on every exchange."""
    return hashlib.sha256(code.encode("utf-8", "replace")).hexdigest()


def _stored_code(code, request):
    """What the Grant row keeps of ``code``: the digest the row validated in this request
    was read by, else computed."""
    grant = request.__dict__.get("_grant_cache", {}).get(code)
    return grant.code if grant is not None else code_digest(code)


def code_token_family(code):
    """The refresh token family of the tokens a code's exchange issues, derived from the
    code: a replay of the code finds what to revoke by it, with no row of its own."""
    return uuid.UUID(bytes=hashlib.sha256(b"oidc_provider token family\x00" + code.encode()).digest()[:16], version=4)


class OIDCValidator(OAuth2Validator):
    oidc_claim_scope = claims.CLAIM_SCOPES

    # -- client authentication ---------------------------------------------------

    def _check_secret(self, provided_secret, stored_secret):
        return secrets.verify(provided_secret, stored_secret)

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
        client_id, client_secret = self._presented_credentials(request)
        self._refuse_if_blocked(request, client_id)
        if self._check_client_credentials(request, client_id, client_secret):
            if not _introspecting.get() or request.client.client_type == Application.CLIENT_CONFIDENTIAL:
                return True
            # RFC 7662 §2.1: the endpoint tells a token's owner only to a client that proved
            # who it is; a public client can prove nothing.
        return self._client_auth_failed(request, client_id)

    def _refuse_if_blocked(self, request, client_id):
        retry_after = throttle.client_auth_blocked(client_id, request.headers)
        if retry_after:
            signals.client_authentication_failed.send(
                sender=type(self), client_id=_printable(client_id), ip_address=throttle.client_address(request.headers),
                throttled=True, request=request,
            )
            raise ClientAuthenticationThrottled(retry_after, request=request)

    def _client_auth_failed(self, request, client_id):
        """Count and announce a failed client authentication; False, or 429 once too many."""
        # Judged on the configuration as it stands, not an assumed copy (the secret may have
        # just been regenerated): when it moved, the request runs again before anything is counted.
        config_cache.confirm()
        ip = throttle.client_ip(request.headers)
        retry_after = throttle.record_client_auth_failure(client_id, ip)
        signals.client_authentication_failed.send(
            sender=type(self), client_id=_printable(client_id), ip_address=throttle.client_address(request.headers),
            throttled=bool(retry_after), request=request,
        )
        if retry_after:
            raise ClientAuthenticationThrottled(retry_after, request=request)
        return False

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
        self._refuse_if_blocked(request, client_id)
        if super().authenticate_client_id(client_id, request, *args, **kwargs):
            return True
        return self._client_auth_failed(request, client_id)

    def client_authentication_required(self, request, *args, **kwargs):
        # Introspection answers only clients that authenticate with a secret.
        return _introspecting.get() or super().client_authentication_required(request, *args, **kwargs)

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
            # CONTRACT §5: every requested scope must be among the account's resource permissions.
            return set(scopes) <= set(key.account.scopes)
        return super().validate_scopes(client_id, scopes, client, request, *args, **kwargs)

    def get_default_scopes(self, client_id, request, *args, **kwargs):
        key = getattr(request, "access_key", None)
        if key is not None:
            return list(key.account.scopes)
        return super().get_default_scopes(client_id, request, *args, **kwargs)

    # -- policy, at the moment of each request (CONTRACT §5) ----------------------

    def validate_grant_type(self, client_id, grant_type, client, request, *args, **kwargs):
        grant = policy.TOKEN_GRANT_TYPES.get(grant_type)
        if grant and policy.may_use(client, grant):
            return True
        config_cache.confirm()  # the refusal is recorded: not on an assumed configuration
        signals.grant_refused.send(sender=type(self), application=client, grant=grant_type, reason="unauthorized_client", request=request)
        raise errors.UnauthorizedClientError(
            description=f"This client may not use grant_type={grant_type}: the application does not hold that grant, "
            f"or the grant policy forbids it for '{client.application_type}' applications.",
            request=request,
        )

    def validate_response_type(self, client_id, response_type, client, request, *args, **kwargs):
        grant = policy.RESPONSE_TYPE_GRANTS.get(policy.normalise_response_type(response_type))
        if grant and policy.may_use(client, grant):
            return True
        signals.grant_refused.send(sender=type(self), application=client, grant=grant, reason="unsupported_response_type", request=request)
        raise errors.UnsupportedResponseTypeError(
            description=f"This client may not use response_type={response_type}: it needs the '{grant}' grant, "
            f"which the application does not hold or the grant policy forbids for '{client.application_type}' applications.",
            request=request,
        )

    def validate_user(self, username, password, client, request, *args, **kwargs):
        # oauthlib checks the password before the grant type; a client that may not use
        # this grant must not get to test passwords at all.
        self.validate_grant_type(client.client_id, "password", client, request)
        if throttle.is_throttled(throttle.client_ip(request.headers)):
            raise errors.CustomOAuth2Error(
                error="slow_down", status_code=429, request=request,
                description="Too many failed logins from this address; wait 15 minutes and try again.",
            )
        if super().validate_user(username, password, client, request, *args, **kwargs):
            return True
        if getattr(getattr(request, "http_request", None), "axes_locked_out", False):
            raise errors.InvalidGrantError(
                description="Too many failed logins for this username from this address: it is locked for 15 minutes.",
                request=request,
            )
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

    # -- codes: single use, and a replay revokes what the first exchange issued ----

    def _grant(self, code, request):
        """The Grant row of this code, read once per request (oauthlib asks for it six times)."""
        cache = request.__dict__.setdefault("_grant_cache", {})
        if code not in cache:
            cache[code] = statements.first(
                get_grant_model(), "code", code_digest(code), related=("user", "oidc_subject"), config_version=True
            )
        return cache[code]

    def _create_authorization_code(self, request, code, expires=None):
        # DOT's, written with the prepared INSERT: the ORM's create() cost a login some
        # 0.15 ms, and on PostgreSQL a wait for the disk that a code does not need (see
        # ASYNC_COMMIT_AUTHORIZATION_CODES).
        if request.code_challenge_method == "plain":  # RFC 9700 §2.1.1 (our server refuses it earlier)
            raise errors.InvalidRequestError(description='Unsupported "plain" code_challenge_method; use "S256".', request=request)
        if not expires:
            expires = timezone.now() + timedelta(seconds=oauth2_settings.AUTHORIZATION_CODE_EXPIRE_SECONDS)
        grant = get_grant_model()(
            application=request.client,
            user=request.user,
            code=code_digest(code["code"]),
            expires=expires,
            redirect_uri=request.redirect_uri,
            scope=" ".join(request.scopes),
            code_challenge=request.code_challenge or "",
            code_challenge_method=request.code_challenge_method or "",
            nonce=request.nonce or "",
            claims=json.dumps(request.claims or {}),
            resource=getattr(request, "resource", []),
        )
        return statements.insert(grant, durable=not oidc_settings.ASYNC_COMMIT_AUTHORIZATION_CODES)

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
        return grant is not None and grant.application_id == client.pk and grant.redirect_uri_allowed(redirect_uri)

    def validate_code(self, client_id, code, client, request, *args, **kwargs):
        grant = self._grant(code, request)
        if grant is not None and grant.application_id == client.pk and not grant.is_expired():
            request.scopes = grant.scope.split(" ")
            request.user = grant.user
            if grant.nonce:
                request.nonce = grant.nonce
            if grant.claims:
                request.claims = json.loads(grant.claims)
            return True
        if self._revoke_what_it_issued(code, client):
            signals.code_replayed.send(sender=type(self), application=client, request=request)
        return False

    @staticmethod
    def _revoke_what_it_issued(code, client):
        """A spent code presented again (RFC 6749 §4.1.2): revoke the tokens it issued; False
        when it was never redeemed. An exchange that issued a refresh token is found by its
        token family (code_token_family), one that did not by its RedeemedCode row."""
        RefreshToken = get_refresh_token_model()
        family = code_token_family(code)
        if RefreshToken.objects.filter(token_family=family, application=client).exists():
            RefreshToken.revoke_family(family)
            return True
        spent = RedeemedCode.objects.filter(code_digest=code_digest(code), application=client).first()
        if spent is None:
            return False
        for token in get_access_token_model().objects.filter(pk=spent.access_token_id):
            revoke_access_token(token)
        if spent.token_family:  # a row written before families came from the code
            RefreshToken.revoke_family(spent.token_family)
        return True

    def invalidate_authorization_code(self, client_id, code, request, *args, **kwargs):
        # Done by save_bearer_token, in the transaction that saves the tokens.
        if getattr(request, "redeemed_code", None) != code:
            self._redeem_code(code, request)
            self._record_redeemed(code, request)

    def _redeem_code(self, code, request, deleted=None):
        """Delete the Grant (or take what a Chain deleted); only one request can, so only one
        gets tokens for a code."""
        if deleted is None:
            deleted = statements.delete(get_grant_model(), code=_stored_code(code, request), application=request.client)
        if not deleted:
            raise errors.InvalidGrantError(description="The authorization code has already been used.", request=request)
        request.redeemed_code = code

    def _record_redeemed(self, code, request):
        # Only for an exchange without a refresh token; one with is found by its family.
        access_token = getattr(request, "issued_access_token", None)
        statements.insert(
            RedeemedCode(code_digest=code_digest(code), application=request.client),
            links={"access_token_id": access_token} if access_token else None,
        )

    def _check_and_set_request_resource(self, request):
        if request.grant_type != "authorization_code":
            return super()._check_and_set_request_resource(request)
        # DOT reads the Grant again for its resources (RFC 8707); it is deleted by now
        # (_redeem_code), and _grant() has it from validation.
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
        # DOT revokes the family when a rotated-out token comes back (REUSE_PROTECTION);
        # we announce it, and bound the family's whole life. A live token is validated
        # without a lock; save_bearer_token claims it, and a request that loses that race
        # is run again serialised (RefreshTokenRaced), its token's row locked first.
        checksum = token_checksum(refresh_token)
        if not self._accept_live_refresh_token(refresh_token, checksum, client, request):
            # Revoked, rotated, expired or unknown: DOT's rules (grace period, reuse
            # protection) decide, after the rows are locked.
            list(_locking(get_refresh_token_model().objects.filter(token_checksum=checksum)).values_list("pk", flat=True))
            if not super().validate_refresh_token(refresh_token, client, request, *args, **kwargs):
                self._announce_replay(refresh_token, client, request)
                return False
        rt = request.refresh_token_instance
        max_ttl = oidc_settings.REFRESH_TOKEN_MAX_TTL
        if max_ttl and rt.token_family:
            # The live token's query brought its family's birth along.
            born = getattr(rt, "family_born", None) or (
                get_refresh_token_model().objects.filter(token_family=rt.token_family).aggregate(born=Min("created"))["born"]
            )
            if born and born + timedelta(seconds=max_ttl) <= timezone.now():
                return False
        return True

    def _accept_live_refresh_token(self, refresh_token, checksum, client, request):
        """The common case in one locking query: a live, unrevoked token of this client.

        Accepts only what DOT's validate_refresh_token accepts for an unrevoked token (an
        access token is still paired with it and REFRESH_TOKEN_EXPIRE_SECONDS has not run
        out since that access token expired); anything else goes to DOT's own checks.
        """
        rt = read_ahead.take(_presented_refresh, _read_live_refresh_token, checksum)
        if rt is None or rt.access_token is None or rt.application_id != client.pk:
            return False
        expire_delta = refresh_token_expire_timedelta()
        if expire_delta and rt.access_token.expires + expire_delta <= timezone.now():
            return False
        rt.application = client
        request.user = rt.user
        request.refresh_token = refresh_token
        request.refresh_token_instance = rt
        request.refresh_token_live = True
        return True

    def _claim_live_refresh_token(self, request, rotation=None):
        """Inside the saving transaction: is the token validated as live still unrevoked?

        On PostgreSQL the row lock makes a parallel request wait here and then find it
        rotated; on SQLite the IMMEDIATE transaction already holds the database's write lock.
        With DOT's own token models this is also the rotation's revocation (see
        :meth:`_save_rotated_tokens`): one UPDATE, judged by the rows it changed. ``rotation``:
        that UPDATE is this chain's first statement (:meth:`_rotation_chain`), written with
        the new tokens when the block closes.
        """
        rt = request.refresh_token_instance
        if rotation is not None:
            now = rotation.values["revoked"]
        else:
            live = type(rt).objects.filter(pk=rt.pk, revoked__isnull=True)
            if not (_stock_revoke(type(rt)) and self.rotate_refresh_token(request)):
                if not list(_locking(live).values_list("pk", flat=True)):
                    raise RefreshTokenRaced
                return
            # DOT's RefreshToken.revoke(): revoked stamped, its access token deleted.
            now = timezone.now()
            if not live.update(revoked=now, access_token=None):
                raise RefreshTokenRaced
            access_token_model = get_access_token_model()
            released = type(rt)._meta.get_field("access_token")
            statements.delete(access_token_model, cleared=[released], **{access_token_model._meta.pk.name: rt.access_token_id})
        rt.revoked, rt.access_token = now, None
        request.rotated_refresh_token = rt

    def _announce_replay(self, refresh_token, client, request):
        checksum = token_checksum(refresh_token)
        replayed = (
            get_refresh_token_model().objects.filter(token_checksum=checksum, revoked__isnull=False)
            .values_list("token_family", flat=True).first()
        )
        if replayed is not None:
            signals.refresh_token_replayed.send(sender=type(self), application=client, token_family=replayed, request=request)

    # -- tokens ---------------------------------------------------------------------

    def save_bearer_token(self, token, request, *args, **kwargs):
        if "refresh_token" in token and not policy.may_use(request.client, policy.REFRESH_TOKEN):
            # CONTRACT §4: a refresh token only for applications that may refresh.
            del token["refresh_token"]
        code = request.code if request.grant_type == "authorization_code" else None
        # Everything is validated and signed by now. A code's writes are a Chain (one
        # statement on PostgreSQL, one short transaction on SQLite); other writes, one
        # transaction (on SQLite, the database's write lock). A lone access token needs neither.
        chain = self._code_exchange_chain(code, request) or self._rotation_chain(token, request)
        writes = [code, token.get("refresh_token"), getattr(request, "pending_id_token", None)]
        if chain is not None:
            writing = chain
        elif any(writes):
            config_cache.confirm()  # a Changed raised inside the transaction would spoil its retry
            writing = transaction.atomic(using=router.db_for_write(get_access_token_model()), savepoint=False)
        else:
            writing = nullcontext()
            # Nothing else to write: the token may be answered before its commit is on disk.
            request.lone_access_token = oidc_settings.ASYNC_COMMIT_LONE_ACCESS_TOKENS
        with writing:
            if getattr(request, "refresh_token_live", False):
                self._claim_live_refresh_token(request, rotation=None if code else chain)
            if code and chain is None:
                self._redeem_code(code, request)
            if getattr(request, "pending_id_token", None):
                request.id_token = request.access_token = self._save_id_token(*request.pending_id_token)
            if getattr(request, "rotated_refresh_token", None) is not None and "refresh_token" in token:
                result = self._save_rotated_tokens(token, request)
            else:
                result = self._save_bearer_token(token, request, *args, **kwargs)
            if code and getattr(request, "issued_refresh_token", None) is None:
                self._record_redeemed(code, request)
        if chain is not None and code:
            self._redeem_code(code, request, deleted=chain.deleted)
        elif chain is not None and not chain.deleted:
            raise RefreshTokenRaced  # revoked by another request since it was validated: nothing written
        signals.token_issued.send(
            sender=type(self), application=request.client, grant=request.grant_type or request.response_type,
            user=request.user, request=request,
        )
        return result

    def _save_rotated_tokens(self, token, request):
        """DOT's _save_bearer_token for a refresh token rotated by _claim_live_refresh_token:
        the new access token comes from the presented refresh token, the new refresh token
        joins its family. DOT's own would lock and read the presented token and its access
        token again and revoke them row by row: seven statements more."""
        if "scope" not in token:
            raise errors.FatalClientError("Failed to renew access token: missing scope")
        previous = request.rotated_refresh_token
        self._check_and_set_request_resource(request)
        expires = timezone.now() + timedelta(seconds=token.get("expires_in", oauth2_settings.ACCESS_TOKEN_EXPIRE_SECONDS))
        access_token = self._create_access_token(expires, request, token, source_refresh_token=previous)
        self._create_refresh_token(request, token["refresh_token"], access_token, previous)
        request.refresh_token_instance = None

    @staticmethod
    def _code_exchange_chain(code, request):
        """The Grant's DELETE and the exchange's INSERTs, written when the block closes, the
        INSERTs only if this request deleted the Grant (single use). On PostgreSQL one
        statement, one round trip where a transaction makes seven; on SQLite the write lock
        is held for those statements alone. None where that cannot be done."""
        models = [get_id_token_model(), get_access_token_model(), get_refresh_token_model(), RedeemedCode]
        if not code or not statements.can_chain(router.db_for_write(get_grant_model()), get_grant_model(), models):
            return None
        return statements.Chain(get_grant_model(), code=_stored_code(code, request), application=request.client)

    def _rotation_chain(self, token, request):
        """A live refresh token's rotation as a Chain: its revocation (DOT's ``revoke()``:
        stamped, access token unlinked and deleted) decides, judged by the rows it changed,
        and the new ID, access and refresh tokens follow it. On PostgreSQL one statement, one
        round trip where a transaction makes seven. None where that cannot be done."""
        rt = getattr(request, "refresh_token_instance", None)
        if not (getattr(request, "refresh_token_live", False) and "refresh_token" in token and rt is not None):
            return None
        refresh_token_model, access_token_model = type(rt), get_access_token_model()
        if not (_stock_revoke(refresh_token_model) and self.rotate_refresh_token(request)):
            return None
        released = refresh_token_model._meta.get_field("access_token")
        using = router.db_for_write(refresh_token_model)
        models = [get_id_token_model(), access_token_model, refresh_token_model]
        if not statements.can_chain(using, None, models, updated_model=refresh_token_model,
                                    also_deleted=[(access_token_model, [released])]):
            return None
        chain = statements.Chain.updating(
            refresh_token_model, {"revoked": timezone.now(), "access_token": None}, null=("revoked",),
            **{refresh_token_model._meta.pk.name: rt.pk},
        )
        chain.also_delete(access_token_model, **{access_token_model._meta.pk.name: rt.access_token_id})
        return chain

    def _create_access_token(self, expires, request, token, source_refresh_token=None):
        # DOT re-verifies the ID token it was just handed to find its row; we signed it, we have the row.
        id_token = getattr(request, "id_token", None) if token.get("id_token") else None
        access_token = get_access_token_model()(
            user=request.user,
            scope=token["scope"],
            expires=expires,
            id_token=id_token if isinstance(id_token, get_id_token_model()) else None,
            application=request.client,
            source_refresh_token=source_refresh_token,
            resource=getattr(request, "resource", []),
        )
        self._set_token_value(access_token, token["access_token"])
        statements.insert(access_token, durable=not getattr(request, "lone_access_token", False))
        request.issued_access_token = access_token
        issued_access_token.set(access_token)
        return access_token

    def _create_refresh_token(self, request, refresh_token_code, access_token, previous_refresh_token):
        # DOT's, written with the prepared INSERT.
        refresh_token = get_refresh_token_model()(
            user=request.user,
            application=request.client,
            access_token=access_token,
            token_family=self._token_family(request, previous_refresh_token),
            resource=getattr(request, "resource", []),
        )
        self._set_token_value(refresh_token, refresh_token_code)
        request.issued_refresh_token = statements.insert(refresh_token)
        return refresh_token

    @staticmethod
    def _token_family(request, previous_refresh_token):
        if previous_refresh_token is not None:
            return previous_refresh_token.token_family
        if request.grant_type == "authorization_code" and request.code:
            return code_token_family(request.code)
        return uuid.uuid4()

    def _load_access_token(self, token):
        # DOT's lookup, with the user's `sub` in the same query (userinfo needs it) and the
        # application from config_cache rather than a join.
        return self._with_application(_read_access_token(token_checksum(token)))

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
            found = lookup(checksum)
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

    def _introspect_access_token(self, checksum):
        token = self._with_application(read_ahead.take(_introspected, _read_access_token, checksum))
        if token is None or token.is_expired():
            return None
        data = self._token_claims(token, "Bearer", token.scope)
        data.update(exp=int(token.expires.timestamp()), aud=token.application.client_id)
        return token.application, data

    def _introspect_refresh_token(self, checksum):
        token = (
            get_refresh_token_model().objects.select_related("application", "user", "access_token")
            .filter(token_checksum=checksum, revoked__isnull=True).first()
        )
        if token is None or token.access_token is None:
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
        now = timezone.now()
        expires = now + timedelta(seconds=oidc_settings.ID_TOKEN_TTL)
        auth_time = user.last_login or now
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
        if request.grant_type:
            # The token endpoint saves the row with the tokens, in save_bearer_token's transaction.
            request.pending_id_token = (id_token["jti"], request, expires)
        else:
            request.id_token = request.access_token = self._save_id_token(id_token["jti"], request, expires)
        return signed

    def _save_id_token(self, jti, request, expires, *args, **kwargs):
        # DOT's, written with the prepared INSERT.
        return statements.insert(get_id_token_model()(
            user=request.user, scope=request.scope or " ".join(request.scopes), expires=expires, jti=jti,
            application=request.client,
        ))

    def _load_id_token(self, token):
        """The IDToken row of an ID token we signed with any published key (not only the active one)."""
        try:
            id_claims = keys.verify(token)
        except jwt.InvalidTokenError:
            return None
        return get_id_token_model().objects.filter(jti=id_claims.get("jti")).first()

    def _get_key_for_token(self, token):
        try:
            key = keys.key_for_kid(jwt.get_unverified_header(token).get("kid"))
        except jwt.InvalidTokenError:
            return None
        return key.jwcrypto_key if key else None
