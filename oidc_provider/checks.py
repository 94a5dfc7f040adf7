"""System checks: misconfiguration caught by `manage.py check`, with a way to fix it."""

from urllib.parse import urlsplit

from django.apps import apps
from django.conf import settings
from django.core.checks import Error, Tags, Warning, register
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError
from django.urls import NoReverseMatch, reverse
from django.utils.module_loading import import_string

from . import keys
from .conf import oidc_settings
from .models import SigningKey
from .throttle import parse_networks
from .validators import OIDCValidator


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


@register()
def check_dot_settings(app_configs, **kwargs):
    """django-oauth-toolkit settings that would silently bypass the provider's rules."""
    dot = getattr(settings, "OAUTH2_PROVIDER", {})
    errors = []
    validator = dot.get("OAUTH2_VALIDATOR_CLASS", "oidc_provider.validators.OIDCValidator")
    cls = import_string(validator) if isinstance(validator, str) else validator
    if not (isinstance(cls, type) and issubclass(cls, OIDCValidator)):
        errors.append(Error(
            f"OAUTH2_PROVIDER['OAUTH2_VALIDATOR_CLASS'] is {validator!r}, which does not extend the provider's validator.",
            hint="Remove it, or subclass oidc_provider.validators.OIDCValidator.",
            id="oidc_provider.E005",
        ))
    if dot.get("COMPLIANT_BCP_RFC9700_PKCE_METHOD") is False:
        errors.append(Error(
            "OAUTH2_PROVIDER['COMPLIANT_BCP_RFC9700_PKCE_METHOD'] is False: PKCE 'plain' would be accepted.",
            hint="Remove the setting; the provider accepts only S256.", id="oidc_provider.E006",
        ))
    if dot.get("REFRESH_TOKEN_REUSE_PROTECTION") is False:
        errors.append(Error(
            "OAUTH2_PROVIDER['REFRESH_TOKEN_REUSE_PROTECTION'] is False: a replayed refresh token would not revoke its family.",
            hint="Remove the setting.", id="oidc_provider.E007",
        ))
    if dot.get("COMPLIANT_BCP_RFC9700_TOKEN_STORAGE") is False:
        errors.append(Error(
            "OAUTH2_PROVIDER['COMPLIANT_BCP_RFC9700_TOKEN_STORAGE'] is False: access and refresh tokens would be "
            "stored in plaintext, usable by anyone who reads the database.",
            hint="Remove the setting; the provider stores tokens only as digests.", id="oidc_provider.E013",
        ))
    return errors


@register()
def check_issuer_matches_urls(app_configs, **kwargs):
    """The issuer's path must be where the site mounted the provider, or discovery would lie."""
    issuer = oidc_settings.issuer
    if not issuer:
        return []
    try:
        discovery = reverse("oidc_provider:discovery")
    except NoReverseMatch:
        return [Warning(
            "The provider's URLs are not included in the site's URLconf.",
            hint="Add path('oidc/', include('oidc_provider.urls')) to your urls.py (any prefix; make the issuer end with it).",
            id="oidc_provider.W001",
        )]
    mount = discovery[: -len("/.well-known/openid-configuration")]
    if urlsplit(issuer).path.rstrip("/") != mount.rstrip("/"):
        return [Error(
            f"The issuer {issuer!r} does not end with the path the provider is mounted at ({mount!r}).",
            hint=f"Set OIDC_PROVIDER['ISSUER'] to https://<your host>{mount}, or mount the URLs at the issuer's path.",
            id="oidc_provider.E008",
        )]
    return []


@register()
def check_key_encryption_keys(app_configs, **kwargs):
    """The keys that encrypt the signing keys at rest must be usable Fernet keys."""
    try:
        keys._fernet()
    except ImproperlyConfigured as e:
        return [Error(str(e), id="oidc_provider.E009")]
    return []


@register(deploy=True)
def check_key_encryption_keys_set(app_configs, **kwargs):
    if oidc_settings.KEY_ENCRYPTION_KEYS is None:
        return [Warning(
            "OIDC_PROVIDER['KEY_ENCRYPTION_KEYS'] is not set: the signing keys are encrypted under a key derived "
            "from SECRET_KEY, so changing SECRET_KEY locks them away and whoever has it can decrypt them.",
            hint="Set OIDC_PROVIDER['KEY_ENCRYPTION_KEYS'] to [a key from Fernet.generate_key()], read from a secret "
                 "store, and run manage.py oidc_keys reencrypt.",
            id="oidc_provider.W004",
        )]
    return []


@register(Tags.database)
def check_signing_key(app_configs, databases=None, **kwargs):
    """Without an active key no ID token can be signed (`manage.py check --database default`)."""
    if not databases:
        return []
    try:
        stored = SigningKey.objects.exclude(status=SigningKey.RETIRED).values_list("kid", "private_key")
        for kid, private_key in stored:
            try:
                keys.decrypt_pem(private_key, kid)
            except ImproperlyConfigured as e:
                return [Error(str(e), id="oidc_provider.E010")]
        if SigningKey.objects.filter(status=SigningKey.ACTIVE).exists():
            return []
    except DatabaseError:
        return []  # not migrated yet: `migrate` runs this check before it creates the tables
    return [Warning(
        "There is no active signing key; one is made at the next migrate or first token request.",
        hint="Run manage.py oidc_keys rotate to make one now.", id="oidc_provider.W002",
    )]


@register()
def check_app_order(app_configs, **kwargs):
    """``cleartokens`` is django-oauth-toolkit's unless oidc_provider comes first."""
    names = [config.name for config in apps.get_app_configs()]
    if "oauth2_provider" in names and names.index("oidc_provider") > names.index("oauth2_provider"):
        return [Warning(
            "'oidc_provider' comes after 'oauth2_provider' in INSTALLED_APPS, so manage.py cleartokens is "
            "django-oauth-toolkit's alone and redeemed authorization codes are never deleted.",
            hint="Move 'oidc_provider' above 'oauth2_provider' in INSTALLED_APPS.", id="oidc_provider.W003",
        )]
    return []


PER_PROCESS_CACHES = (
    "django.core.cache.backends.locmem.LocMemCache",
    "django.core.cache.backends.dummy.DummyCache",
)


@register()
def check_throttle_store(app_configs, **kwargs):
    """Brute-force limits counted per process would be multiplied by the number of workers."""
    alias = oidc_settings.THROTTLE_CACHE
    if not alias:
        return []  # the database: shared by every worker
    backend = settings.CACHES.get(alias, {}).get("BACKEND", "")
    if alias not in settings.CACHES:
        return [Error(
            f"OIDC_PROVIDER['THROTTLE_CACHE'] is {alias!r}, which is not in CACHES.",
            hint="Name a cache that every worker shares (Redis), or set it to None to count in the database.",
            id="oidc_provider.E011",
        )]
    if backend in PER_PROCESS_CACHES and not settings.DEBUG:
        return [Warning(
            f"The brute-force throttle counts failures in the cache {alias!r} ({backend.rsplit('.', 1)[-1]}), "
            "which each worker process keeps for itself: every limit is multiplied by the number of workers.",
            hint="Set REDIS_URL (or point OIDC_PROVIDER['THROTTLE_CACHE'] at a shared cache), "
            "or set THROTTLE_CACHE to None to count in the database.",
            id="oidc_provider.W005",
        )]
    return []


@register()
def check_trusted_proxies(app_configs, **kwargs):
    _, invalid = parse_networks(oidc_settings.TRUSTED_PROXIES)
    if invalid:
        return [Error(
            f"OIDC_TRUSTED_PROXIES has entries that are not IP addresses or networks: {', '.join(invalid)}.",
            hint="List addresses or networks separated by commas, e.g. 10.0.0.1,192.168.0.0/16.",
            id="oidc_provider.E012",
        )]
    return []


@register()
def check_metrics_networks(app_configs, **kwargs):
    _, invalid = parse_networks(oidc_settings.METRICS_ALLOWED_NETWORKS)
    if invalid:
        return [Error(
            f"OIDC_PROVIDER['METRICS_ALLOWED_NETWORKS'] has entries that are not IP addresses or networks: "
            f"{', '.join(invalid)}.",
            hint="List addresses or networks separated by commas (OIDC_METRICS_ALLOWED), e.g. 10.0.0.0/8.",
            id="oidc_provider.E016",
        )]
    return []


@register()
def check_clear_expired_every(app_configs, **kwargs):
    every = oidc_settings.CLEAR_EXPIRED_EVERY
    if every is not None and (isinstance(every, bool) or not isinstance(every, int | float) or every <= 0):
        return [Error(
            f"OIDC_PROVIDER['CLEAR_EXPIRED_EVERY'] must be a number of seconds above zero, or None; it is {every!r}.",
            hint="Set it to how often the server should delete expired tokens (OIDC_CLEAR_EXPIRED_EVERY), "
                 "e.g. 3600, or leave it unset and run manage.py cleartokens from cron.",
            id="oidc_provider.E017",
        )]
    return []
