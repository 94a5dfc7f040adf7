"""The scopes the provider knows and which application may ask for which."""

from django.utils.translation import gettext_lazy as _
from oauth2_provider.scopes import BaseScopes

from . import policy
from .conf import oidc_settings

OIDC_SCOPE_DESCRIPTIONS = {
    "openid": _("Sign you in with your account"),
    "profile": _("See your name and basic profile"),
    "email": _("See your email address"),
    "phone": _("See your phone number"),
    "address": _("See your postal address"),
    "offline_access": _("Stay signed in to keep access when you are away"),
}


def all_scopes():
    """{scope: description} for every scope the provider offers."""
    return {**OIDC_SCOPE_DESCRIPTIONS, **oidc_settings.RESOURCE_SCOPES}


def describe(scope):
    return all_scopes().get(scope, scope)


class ProviderScopes(BaseScopes):
    def get_all_scopes(self):
        return all_scopes()

    def get_available_scopes(self, application=None, request=None, *args, **kwargs):
        scopes = list(all_scopes())
        if application is not None and application.application_type == policy.SERVICE:
            # No end user behind a service: identity scopes would mean nothing.
            scopes = [s for s in scopes if s not in OIDC_SCOPE_DESCRIPTIONS]
        return scopes

    def get_default_scopes(self, application=None, request=None, *args, **kwargs):
        if application is not None and application.application_type == policy.SERVICE:
            return []
        return ["openid"]
