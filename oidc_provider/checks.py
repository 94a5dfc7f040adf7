"""System checks: misconfiguration caught by `manage.py check`, with a way to fix it."""

from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import Error, register

from .conf import oidc_settings


@register()
def check_issuer(app_configs, **kwargs):
    issuer = oidc_settings.issuer
    if not issuer:
        return [Error("OIDC_PROVIDER['ISSUER'] is not set.", hint="Set it to the issuer URL, e.g. https://id.example.com/oidc.", id="oidc_provider.E001")]
    parts = urlsplit(issuer)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return [Error(f"The issuer {issuer!r} is not an http(s) URL.", id="oidc_provider.E002")]
    if parts.scheme == "http" and not settings.DEBUG and parts.hostname not in ("127.0.0.1", "::1", "localhost"):
        return [Error(
            f"The issuer {issuer!r} uses http on a non-loopback host while DEBUG is off.",
            hint="Serve the provider over https and set the issuer to its https URL.",
            id="oidc_provider.E003",
        )]
    return []


@register()
def check_application_model(app_configs, **kwargs):
    model = getattr(settings, "OAUTH2_PROVIDER_APPLICATION_MODEL", None)
    if model != "oidc_provider.Application":
        return [Error(
            f"OAUTH2_PROVIDER_APPLICATION_MODEL is {model!r}; the provider needs 'oidc_provider.Application'.",
            hint="Set OAUTH2_PROVIDER_APPLICATION_MODEL = 'oidc_provider.Application' before the first migrate.",
            id="oidc_provider.E004",
        )]
    return []
