"""The shipped roles gain the login sessions: every role may list them, and those who may
revoke tokens may end them. Added to the groups as they are, so a site's own changes stay."""

from django.db import migrations

ROLES = {
    "Identity administrator": ("view_loginsession", "add_loginsession", "change_loginsession", "delete_loginsession"),
    "Application manager": ("view_loginsession",),
    "Auditor": ("view_loginsession",),
}


def add_permissions(apps, schema_editor):
    from console.permissions import add_to_roles

    add_to_roles(apps, schema_editor.connection.alias, "oidc_provider", ROLES)


class Migration(migrations.Migration):
    dependencies = [
        ("console", "0003_forget_plaintext_api_tokens"),
        ("oidc_provider", "0008_login_sessions_and_logout_channels"),
    ]
    operations = [migrations.RunPython(add_permissions, migrations.RunPython.noop)]
