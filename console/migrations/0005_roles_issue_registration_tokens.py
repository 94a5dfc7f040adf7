"""The shipped roles gain the registration tokens of dynamic client registration: those who
add applications may issue and revoke them, the auditor may list them."""

from django.db import migrations

EVERY = ("view_initialaccesstoken", "add_initialaccesstoken", "change_initialaccesstoken",
         "delete_initialaccesstoken", "revoke_initialaccesstoken")
ROLES = {
    "Identity administrator": EVERY,
    "Application manager": ("view_initialaccesstoken", "add_initialaccesstoken", "revoke_initialaccesstoken"),
    "Auditor": ("view_initialaccesstoken",),
}


def add_permissions(apps, schema_editor):
    from console.permissions import add_to_roles

    add_to_roles(apps, schema_editor.connection.alias, "oidc_provider", ROLES)


class Migration(migrations.Migration):
    dependencies = [
        ("console", "0004_roles_see_login_sessions"),
        ("oidc_provider", "0009_dynamic_client_registration"),
    ]
    operations = [migrations.RunPython(add_permissions, migrations.RunPython.noop)]
