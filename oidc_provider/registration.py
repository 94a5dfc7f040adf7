"""Dynamic client registration (RFC 7591, RFC 7592, OpenID Connect Dynamic Registration 1.0).

A client registers itself with an initial access token an admin issued; it lands as an
application of one of the four types, under the same grant policy as one an admin creates,
and gets a registration access token to read, update and delete its registration. Both
tokens are kept as digests only.
"""

import ipaddress
import socket
from datetime import timedelta
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from . import applications, grants, keys, policy, secrets, signals
from .conf import oidc_settings
from .models import Application, ClientRegistration, InitialAccessToken

# What the provider supports, as registration metadata names it.
AUTH_METHODS = ("client_secret_basic", "client_secret_post", "none")
# grant_types values -> the provider's grant names (hybrid is read from response_types).
GRANT_TYPES = {
    "authorization_code": policy.AUTHORIZATION_CODE,
    "implicit": policy.IMPLICIT,
    "refresh_token": policy.REFRESH_TOKEN,
    "client_credentials": policy.CLIENT_CREDENTIALS,
    "password": policy.PASSWORD,
}
CODE_RESPONSE_TYPES = ("code",)
IMPLICIT_RESPONSE_TYPES = ("id_token", "id_token token", "token")
HYBRID_RESPONSE_TYPES = ("code id_token", "code token", "code id_token token")
DEFAULT_NAME = "Dynamically registered client"


class RegistrationError(Exception):
    """A refused registration: ``error`` is RFC 7591 §3.2.2's code, ``description`` says what to fix."""

    def __init__(self, error, description):
        super().__init__(description)
        self.error, self.description = error, description


# -- initial access tokens -----------------------------------------------------------------


def issue_initial_token(*, actor=None, expires_in=None, note="", row=None):
    """A new initial access token (on ``row``, an unsaved InitialAccessToken, if given);
    returns (its row, the token, shown only now)."""
    token = secrets.generate_secret()
    seconds = oidc_settings.REGISTRATION_TOKEN_TTL if expires_in is None else expires_in
    row = row or InitialAccessToken()
    row.digest, row.note, row.created_by = secrets.digest(token), note, actor
    row.expires_at = timezone.now() + timedelta(seconds=seconds)
    with transaction.atomic():
        row.save()
        signals.registration_token_issued.send(sender=InitialAccessToken, token=row, actor=actor)
    return row, token


def usable_initial_token(token):
    """The live initial access token presented, or None."""
    if not token:
        return None
    row = InitialAccessToken.objects.filter(digest=secrets.digest(token)).first()
    return row if row is not None and row.is_usable() else None


def revoke_initial_token(row, actor=None):
    """Revoke an initial access token: no client registers with it any more (those that did stay)."""
    with transaction.atomic():
        if InitialAccessToken.objects.filter(pk=row.pk, revoked_at__isnull=True).update(revoked_at=timezone.now()):
            signals.registration_token_revoked.send(sender=InitialAccessToken, token=row, actor=actor)


# -- metadata <-> applications ---------------------------------------------------------------


def _strings(metadata, name, default=()):
    value = metadata.get(name, list(default))
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise RegistrationError("invalid_client_metadata", f"{name} must be an array of strings.")
    return value


def _string(metadata, name, default=""):
    value = metadata.get(name, default)
    if value is None:
        return default
    if not isinstance(value, str):
        raise RegistrationError("invalid_client_metadata", f"{name} must be a string.")
    return value


def _application_type(metadata, auth_method, grant_types):
    kind = _string(metadata, "application_type", "web")
    if kind not in ("web", "native"):
        raise RegistrationError("invalid_client_metadata", "application_type must be 'web' or 'native' "
                                "(OpenID Connect Dynamic Registration 2).")
    if auth_method == "none":
        return policy.NATIVE if kind == "native" else policy.SPA
    if kind == "native":
        raise RegistrationError("invalid_client_metadata", "A native application is a public client: register it "
                                "with token_endpoint_auth_method 'none' and use PKCE.")
    return policy.SERVICE if set(grant_types) == {"client_credentials"} else policy.WEB


def _grants(grant_types, response_types):
    """The provider's grants for these grant_types and response_types, checked for
    consistency (RFC 7591 §2.1)."""
    unknown = [g for g in grant_types if g not in GRANT_TYPES]
    if unknown:
        raise RegistrationError("invalid_client_metadata", f"Unsupported grant type {unknown[0]!r}; this provider "
                                f"supports {', '.join(GRANT_TYPES)}.")
    unknown = [r for r in response_types if r not in policy.RESPONSE_TYPES]
    if unknown:
        raise RegistrationError("invalid_client_metadata", f"Unsupported response type {unknown[0]!r}; this provider "
                                f"supports {', '.join(policy.RESPONSE_TYPES)}.")
    chosen = {GRANT_TYPES[g] for g in grant_types}
    needs = {"authorization_code": [r for r in response_types if "code" in r.split()],
             "implicit": [r for r in response_types if set(r.split()) & {"token", "id_token"}]}
    for grant_type, responses in needs.items():
        if responses and grant_type not in grant_types:
            raise RegistrationError("invalid_client_metadata", f"response_types {responses[0]!r} needs the grant type "
                                    f"{grant_type!r} in grant_types (RFC 7591 2.1).")
    if any(r in HYBRID_RESPONSE_TYPES for r in response_types):
        chosen.add(policy.HYBRID)
        if not any(r in IMPLICIT_RESPONSE_TYPES for r in response_types):
            chosen.discard(policy.IMPLICIT)  # implicit was asked for only as hybrid's front half
    if "authorization_code" in grant_types and not any(r in CODE_RESPONSE_TYPES for r in response_types):
        if not any(r in HYBRID_RESPONSE_TYPES for r in response_types):
            raise RegistrationError("invalid_client_metadata", "grant_types 'authorization_code' needs the response "
                                    "type 'code' in response_types (RFC 7591 2.1).")
    return sorted(chosen, key=policy.GRANTS.index)


def _reachable_from_outside(uri):
    """The provider POSTs to a back-channel logout URI itself: one a client registers must not
    name this machine or a private network (the admin's own applications may)."""
    try:
        host = (urlsplit(uri).hostname or "").lower() if uri else ""
    except ValueError:
        raise RegistrationError("invalid_client_metadata", "backchannel_logout_uri is not a URL.")
    internal = host == "localhost" or host.endswith(".localhost") or not _is_global(host)
    if internal:
        raise RegistrationError("invalid_client_metadata", "backchannel_logout_uri must name a public host: the "
                                "provider calls it, and does not call loopback or private addresses for "
                                "registered clients.")
    return uri


def _is_global(host):
    """False for an address that is not public, however it is written (127.1, 2130706433 and
    0x7f000001 all reach 127.0.0.1); True for a name."""
    try:
        return ipaddress.ip_address(host).is_global
    except ValueError:
        pass
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host)).is_global
    except OSError:
        return True


def _check_unsupported(metadata):
    for name, supported in (("id_token_signed_response_alg", keys.ALGORITHM), ("subject_type", "public")):
        value = metadata.get(name)
        if value is not None and value != supported:
            raise RegistrationError("invalid_client_metadata", f"{name} {value!r} is not supported; use {supported!r}.")
    for name in ("userinfo_signed_response_alg", "userinfo_encrypted_response_alg", "id_token_encrypted_response_alg",
                 "request_object_signing_alg", "request_uris"):
        if metadata.get(name) not in (None, [], "none"):
            raise RegistrationError("invalid_client_metadata", f"{name} is not supported by this provider; leave it out.")


def fill(application, metadata):
    """Set an application from registration metadata (every field: a registration, or its
    full replacement, RFC 7592 §2.2). Raises RegistrationError."""
    if not isinstance(metadata, dict):
        raise RegistrationError("invalid_client_metadata", "The request body must be a JSON object.")
    _check_unsupported(metadata)
    auth_method = _string(metadata, "token_endpoint_auth_method", "client_secret_basic")
    if auth_method not in AUTH_METHODS:
        raise RegistrationError("invalid_client_metadata", f"token_endpoint_auth_method {auth_method!r} is not "
                                f"supported; use one of {', '.join(AUTH_METHODS)}.")
    grant_types = _strings(metadata, "grant_types", ["authorization_code"])
    response_types = _strings(metadata, "response_types", ["code"] if "authorization_code" in grant_types else [])
    application_type = _application_type(metadata, auth_method, grant_types)
    if not application._state.adding and application_type != application.application_type:
        raise RegistrationError("invalid_client_metadata", f"This client is a '{application.application_type}' "
                                "application; its type (application_type, token_endpoint_auth_method) cannot change.")
    application.application_type = application_type
    application.grant_types = _grants(grant_types, response_types)
    application.name = _string(metadata, "client_name")[:255].strip() or DEFAULT_NAME
    application.redirect_uris = " ".join(_strings(metadata, "redirect_uris"))
    application.post_logout_redirect_uris = " ".join(_strings(metadata, "post_logout_redirect_uris"))
    application.backchannel_logout_uri = _reachable_from_outside(_string(metadata, "backchannel_logout_uri"))
    application.frontchannel_logout_uri = _string(metadata, "frontchannel_logout_uri")
    application.allowed_origins = ""  # an SPA's or native app's default to its redirect URIs' origins
    forbidden = grants.validate_grants(application_type, application.grant_types, policy.current_policy())
    if forbidden:
        raise RegistrationError("invalid_client_metadata", " ".join(str(m) for m in forbidden))
    try:
        application.full_clean(exclude=applications.DERIVED_FIELDS)
    except ValidationError as e:
        fields = e.message_dict
        error = "invalid_redirect_uri" if {"redirect_uris", "post_logout_redirect_uris"} & set(fields) else "invalid_client_metadata"
        raise RegistrationError(error, " ".join(f"{NAMES.get(f, f)}: {' '.join(m)}" for f, m in fields.items()))
    return application


NAMES = {"name": "client_name", "grant_types": "grant_types", "__all__": "metadata"}


def metadata_of(application):
    """The registered metadata of an application, as registration responses carry it."""
    held = set(application.grant_types or [])
    response_types = []
    if policy.AUTHORIZATION_CODE in held:
        response_types.append("code")
    if policy.IMPLICIT in held:
        response_types += ["id_token", "id_token token"]
    if policy.HYBRID in held:
        response_types += list(HYBRID_RESPONSE_TYPES)
    grant_types = [name for name, grant in GRANT_TYPES.items() if grant in held]
    if policy.HYBRID in held:
        grant_types += [g for g in ("authorization_code", "implicit") if g not in grant_types]
    data = {
        "client_id": application.client_id,
        "client_id_issued_at": int(application.created.timestamp()),
        "client_name": application.name,
        "application_type": "native" if application.application_type == policy.NATIVE else "web",
        "token_endpoint_auth_method": "none" if application.is_public else "client_secret_basic",
        "grant_types": grant_types,
        "response_types": response_types,
        "redirect_uris": application.redirect_uris.split(),
        "post_logout_redirect_uris": application.post_logout_redirect_uris.split(),
        "subject_type": "public",
        "id_token_signed_response_alg": keys.ALGORITHM,
    }
    for name in ("backchannel_logout_uri", "frontchannel_logout_uri"):
        if getattr(application, name):
            data[name] = getattr(application, name)
            data[name.replace("_uri", "_session_required")] = True
    if not application.is_public:
        data["client_secret_expires_at"] = 0  # never
    return data


# -- the operations ----------------------------------------------------------------------------


def register(metadata, initial_token):
    """Register a client (RFC 7591 §3.1); returns (application, registration access token).
    The application's secret, if any, is on ``plaintext_secret``. Raises RegistrationError."""
    application = fill(Application(), metadata)
    token = secrets.generate_secret()
    with transaction.atomic():
        applications.register(application)
        ClientRegistration.objects.create(application=application, access_token_digest=secrets.digest(token),
                                          initial_access_token=initial_token)
        signals.client_registration_changed.send(sender=Application, application=application, action="registered",
                                                 initial_access_token=initial_token)
    return application, token


def registered_application(client_id, token):
    """The application a registration access token manages, if it is this client's."""
    if not token:
        return None
    row = ClientRegistration.objects.select_related("application").filter(access_token_digest=secrets.digest(token)).first()
    if row is None or row.application.client_id != client_id:
        return None
    return row.application


def update(application, metadata):
    """Replace a registered client's metadata (RFC 7592 §2.2). Raises RegistrationError."""
    if not isinstance(metadata, dict):
        raise RegistrationError("invalid_client_metadata", "The request body must be a JSON object.")
    if metadata.get("client_id", application.client_id) != application.client_id:
        raise RegistrationError("invalid_client_metadata", "client_id in the body must be this client's.")
    fill(application, metadata)
    applications.default_origins(application)
    with transaction.atomic():
        application.save()
        signals.client_registration_changed.send(sender=Application, application=application, action="updated",
                                                 initial_access_token=None)
    return application


def delete(application):
    """Delete a registered client with its tokens (RFC 7592 §2.3)."""
    with transaction.atomic():
        signals.client_registration_changed.send(sender=Application, application=application, action="deleted",
                                                 initial_access_token=None)
        applications.delete(application)
