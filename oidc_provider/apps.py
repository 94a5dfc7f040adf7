from django.apps import AppConfig
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in, user_logged_out
from django.core.signals import request_finished, setting_changed
from django.db.models.signals import post_migrate, post_save
from django.utils.translation import gettext_lazy as _
from oauth2_provider.settings import oauth2_settings

from .conf import dot_settings


def _configure_django_oauth_toolkit():
    """Give django-oauth-toolkit our configuration under whatever the site set itself.

    A site installing the apps need not write an OAUTH2_PROVIDER dict; one it writes wins
    key by key, and checks.py reports choices that contradict the provider.
    """
    settings.OAUTH2_PROVIDER = {**dot_settings(), **getattr(settings, "OAUTH2_PROVIDER", {})}
    oauth2_settings.reload()


class OIDCProviderConfig(AppConfig):
    name = "oidc_provider"
    verbose_name = _("OpenID Connect provider")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        _configure_django_oauth_toolkit()

        # These use the models, so they can be imported only once the app registry is ready;
        # importing checks and store registers their system checks.
        from oauth2_provider.models import get_application_model

        from . import checks, cleanup, config_cache, keys, logs, sessions, store, throttle  # noqa: F401
        from .models import AccessAccount, AccessKey, ConfigVersion, GrantPolicy, SigningKey
        from .views.authorize import record_auth_time

        config_cache.connect(ConfigVersion, (get_application_model(), GrantPolicy, SigningKey, AccessAccount, AccessKey),
                             store.store)
        throttle.connect()
        try:  # /metrics needs prometheus-client (the server extra); without it, nothing is counted
            from . import metrics
        except ImportError:  # pragma: no cover
            pass
        else:
            metrics.connect()

        user_logged_in.connect(record_auth_time, dispatch_uid="oidc_provider.auth_time")
        user_logged_in.connect(sessions.start, dispatch_uid="oidc_provider.session_start")
        user_logged_out.connect(sessions.on_logout, dispatch_uid="oidc_provider.session_end")
        post_save.connect(sessions.on_user_saved, sender=get_user_model(), dispatch_uid="oidc_provider.password_change")
        request_finished.connect(logs.forget, dispatch_uid="oidc_provider.request_id")
        cleanup.schedule()
        setting_changed.connect(cleanup.schedule, dispatch_uid="oidc_provider.clear_expired_schedule")
        post_migrate.connect(keys.ensure_keys_after_migrate, sender=self, dispatch_uid="oidc_provider.signing_key")
