from django.apps import AppConfig


class ProjectConfig(AppConfig):
    """Our deployment as an app, only so that its system checks are registered."""

    name = "project"
    verbose_name = "Deployment"

    def ready(self):
        from . import checks  # noqa: F401  registers the checks
