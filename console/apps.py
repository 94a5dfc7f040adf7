from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ConsoleConfig(AppConfig):
    name = "console"
    verbose_name = _("Console")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from . import audit, checks  # noqa: F401  connects the audit receivers, registers the system checks
