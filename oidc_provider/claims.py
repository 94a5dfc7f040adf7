"""Scopes -> claims (OIDC Core 5.4), the claims request parameter (5.5), and the one hook
that maps a user to claims."""

import json

from django.contrib.auth import get_user_model
from django.utils.module_loading import import_string

from .conf import oidc_settings
from .models import Subject

# OIDC Core 5.4: which scope releases which standard claim.
CLAIM_SCOPES = {
    **{
        c: "profile"
        for c in (
            "name", "family_name", "given_name", "middle_name", "nickname", "preferred_username",
            "profile", "picture", "website", "gender", "birthdate", "zoneinfo", "locale", "updated_at",
        )
    },
    "email": "email",
    "email_verified": "email",
    "address": "address",
    "phone_number": "phone",
    "phone_number_verified": "phone",
}
OIDC_SCOPES = ("openid", "profile", "email", "phone", "address", "offline_access")


def subject(user):
    """The `sub` claim: stable per user, never reassigned (OIDC Core 2).

    SUBJECT_TYPE "opaque" (the default) gives each user a random identifier on first use;
    "pk" uses the database id, for sites that already hand it out.
    """
    if oidc_settings.SUBJECT_TYPE == "pk":
        return str(user.pk)
    cached = getattr(user, "_oidc_subject", None)
    if cached is None:
        try:
            # No query when the caller loaded the user with select_related("…oidc_subject").
            cached = user.oidc_subject.value
        except Subject.DoesNotExist:
            cached = Subject.objects.get_or_create(user=user)[0].value
        user._oidc_subject = cached
    return cached


def user_for_subject(sub):
    """The user a `sub` names, or None."""
    if oidc_settings.SUBJECT_TYPE == "pk":
        return get_user_model()._default_manager.filter(pk=sub).first() if str(sub).isdigit() else None
    row = Subject.objects.select_related("user").filter(value=sub).first()
    return row.user if row else None


def default_user_claims(user):
    """Standard claims from a Django user; custom user models may carry more fields."""
    claims = {"preferred_username": user.get_username()}
    full_name = user.get_full_name() if hasattr(user, "get_full_name") else ""
    if full_name:
        claims["name"] = full_name
    for claim, attr in (("given_name", "first_name"), ("family_name", "last_name")):
        if getattr(user, attr, ""):
            claims[claim] = getattr(user, attr)
    email_field = getattr(user, "get_email_field_name", lambda: "email")()
    if getattr(user, email_field, ""):
        claims["email"] = getattr(user, email_field)
        claims["email_verified"] = bool(getattr(user, "email_verified", False))
    for claim in ("phone_number", "phone_number_verified", "address", "picture", "locale", "zoneinfo", "birthdate"):
        value = getattr(user, claim, None)
        if value not in (None, ""):
            claims[claim] = value
    updated = getattr(user, "updated_at", None) or getattr(user, "date_joined", None)
    if updated:
        claims["updated_at"] = int(updated.timestamp())
    return claims


def user_claims(user):
    return import_string(oidc_settings.USER_CLAIMS)(user)


def claims_for_scopes(user, scopes):
    """`sub` plus every claim the granted scopes release."""
    scopes = set(scopes)
    released = {k: v for k, v in user_claims(user).items() if CLAIM_SCOPES.get(k) in scopes}
    return {"sub": subject(user), **released}


# A claims request names a handful of claims; this bounds what a code carries to the token endpoint.
CLAIMS_REQUEST_MAX_LENGTH = 4000
CLAIMS_REQUEST_EXAMPLE = '{"id_token": {"email": {"essential": true}}}'


def parse_claims_request(value):
    """The claims request parameter (OIDC Core 5.5) as ``{"id_token": {...}, "userinfo": {...}}``
    (either member may be absent), each claim mapped to null or to its request object.

    Members other than id_token and userinfo are ignored, as 5.5 says. Raises ValueError
    saying what is wrong and how to send it.
    """
    if value in (None, "", {}):
        return {}
    if isinstance(value, str):
        if len(value) > CLAIMS_REQUEST_MAX_LENGTH:
            raise ValueError(f"The claims parameter is longer than {CLAIMS_REQUEST_MAX_LENGTH} characters; ask for fewer claims.")
        try:
            value = json.loads(value)
        except (ValueError, RecursionError):
            raise ValueError(f"The claims parameter is not JSON; send a JSON object such as {CLAIMS_REQUEST_EXAMPLE} (OIDC Core 5.5).")
    if not isinstance(value, dict):
        raise ValueError(f"The claims parameter must be a JSON object such as {CLAIMS_REQUEST_EXAMPLE} (OIDC Core 5.5).")
    parsed = {}
    for member in ("id_token", "userinfo"):
        requested = value.get(member)
        if requested is None:
            continue
        if not isinstance(requested, dict):
            raise ValueError(f"claims.{member} must be a JSON object whose members are claim names (OIDC Core 5.5).")
        for name, request in requested.items():
            if request is None:
                continue
            if not isinstance(request, dict):
                raise ValueError(f"claims.{member}.{name} must be null or an object with essential, value or values (OIDC Core 5.5.1).")
            if not isinstance(request.get("essential", False), bool):
                raise ValueError(f"claims.{member}.{name}.essential must be true or false (OIDC Core 5.5.1).")
            if not isinstance(request.get("values", []), list):
                raise ValueError(f"claims.{member}.{name}.values must be a JSON array (OIDC Core 5.5.1).")
        parsed[member] = requested
    return parsed


def requested_subject(claims_request):
    """The `sub` value a claims request demands for the ID token, or None (OIDC Core 5.5.1)."""
    sub = (claims_request or {}).get("id_token", {}).get("sub")
    return sub.get("value") if isinstance(sub, dict) else None


def requested_claims(user, scopes, claims_request, member):
    """The claims a claims request asks for in ``member`` ("id_token" or "userinfo"), among
    those the granted scopes release: a claims request picks claims, it never widens what
    the user consented to."""
    asked = (claims_request or {}).get(member) or {}
    if not asked:
        return {}
    released = claims_for_scopes(user, scopes)
    return {name: released[name] for name in asked if name in released}
