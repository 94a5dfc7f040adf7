"""The shipped roles gain the refused requests: every role may read them (they hold no
secret), and the identity administrator holds every permission of the model as of the others."""

from django.db import migrations

ROLES = {
    "Identity administrator": ("view_refusal", "add_refusal", "change_refusal", "delete_refusal"),
    "Application manager": ("view_refusal",),
    "Auditor": ("view_refusal",),
}


def add_permissions(apps, schema_editor):
    from console.permissions import add_to_roles

    add_to_roles(apps, schema_editor.connection.alias, "console", ROLES)


class Migration(migrations.Migration):
    dependencies = [("console", "0007_record_refusals")]
    operations = [migrations.RunPython(add_permissions, migrations.RunPython.noop)]
