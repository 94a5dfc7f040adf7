"""Scopes -> claims (OIDC Core 5.4) and the one hook that maps a user to claims."""

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
