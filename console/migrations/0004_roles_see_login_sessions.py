"""The shipped roles gain the login sessions: every role may list them, and those who may
revoke tokens may end them. Added to the groups as they are, so a site's own changes stay."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

ROLES = {
    "Identity administrator": ("view_loginsession", "add_loginsession", "change_loginsession", "delete_loginsession"),
    "Application manager": ("view_loginsession",),
    "Auditor": ("view_loginsession",),
}


def add_permissions(apps, schema_editor):
    using = schema_editor.connection.alias
    config = apps.get_app_config("oidc_provider")
    had_module = getattr(config, "models_module", None)
    config.models_module = had_module or True
    try:
        create_permissions(config, verbosity=0, using=using, apps=apps)
    finally:
        config.models_module = had_module
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role, codenames in ROLES.items():
        group = Group.objects.using(using).filter(name=role).first()
        if group is not None:
            group.permissions.add(*Permission.objects.using(using).filter(
                content_type__app_label="oidc_provider", codename__in=codenames))


class Migration(migrations.Migration):
    dependencies = [
        ("console", "0003_forget_plaintext_api_tokens"),
        ("oidc_provider", "0008_login_sessions_and_logout_channels"),
    ]
    operations = [migrations.RunPython(add_permissions, migrations.RunPython.noop)]
