"""The three shipped roles as Django groups: identity administrator, application manager, auditor.

``manage.py console_roles`` makes them again (for instance after someone edited a group).
"""

from django.db import migrations


def make_roles(apps, schema_editor):
    from console.permissions import sync_roles

    sync_roles(apps, using=schema_editor.connection.alias)


class Migration(migrations.Migration):
    dependencies = [
        ("console", "0001_initial"),
        ("oidc_provider", "0005_named_permissions"),
        ("oauth2_provider", "0022_refreshtoken_token_family_index"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]
    # Left in place on the way back: the groups may have members by then.
    operations = [migrations.RunPython(make_roles, migrations.RunPython.noop)]
