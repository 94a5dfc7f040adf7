from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


def _record_auth_time(sender, request, user, **kwargs):
    # auth_time and max_age need when this session really authenticated (OIDC Core 2).
    import time

    from .views.authorize import SESSION_AUTH_TIME

    if request is not None and hasattr(request, "session"):
        request.session[SESSION_AUTH_TIME] = int(time.time())


def _ensure_signing_key(sender, using="default", **kwargs):
    from django.db import connections

    from . import keys
    from .models import ConfigVersion, SigningKey

    # After `migrate oidc_provider zero` (or to a migration before ours) the tables are gone,
    # and that is fine: the next migrate forward creates the key.
    tables = connections[using].introspection.table_names()
    if SigningKey._meta.db_table not in tables or ConfigVersion._meta.db_table not in tables:
        return
    statuses = set(SigningKey.objects.using(using).values_list("status", flat=True).distinct())
    if not {SigningKey.ACTIVE, SigningKey.NEXT} <= statuses:
        keys.ensure_active_key()


def _configure_django_oauth_toolkit():
    """Give django-oauth-toolkit our configuration under whatever the site set itself.

    A site installing the apps need not write an OAUTH2_PROVIDER dict; one it writes wins
    key by key, and checks.py reports choices that contradict the provider.
    """
    from django.conf import settings
    from oauth2_provider.settings import oauth2_settings

    from .conf import dot_settings

    settings.OAUTH2_PROVIDER = {**dot_settings(), **getattr(settings, "OAUTH2_PROVIDER", {})}
    oauth2_settings.reload()


class OIDCProviderConfig(AppConfig):
    name = "oidc_provider"
    verbose_name = _("OpenID Connect provider")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from django.contrib.auth.signals import user_logged_in

        _configure_django_oauth_toolkit()

        from . import checks, config_cache, store, throttle  # noqa: F401  registers the system checks and receivers

        from oauth2_provider.models import get_application_model

        from .models import AccessAccount, AccessKey, ConfigVersion, GrantPolicy, SigningKey

        config_cache.connect(ConfigVersion, (get_application_model(), GrantPolicy, SigningKey, AccessAccount, AccessKey))
        throttle.connect()

        user_logged_in.connect(_record_auth_time, dispatch_uid="oidc_provider.auth_time")
        post_migrate.connect(_ensure_signing_key, sender=self, dispatch_uid="oidc_provider.signing_key")
