from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ConsoleConfig(AppConfig):
    name = "console"
    verbose_name = _("Console")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # Connect the audit and refusal receivers, register the system checks.
        from . import audit, checks, refusals  # noqa: F401
