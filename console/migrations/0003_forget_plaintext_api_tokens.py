"""Console API tokens used to be DRF's authtoken, kept in clear in ``authtoken_token``.

They cannot become digests (a digest of a token is only made when the token is shown), so
they are deleted: each user creates a new one at /console/tokens/ or with console_token.
The table itself belongs to an app no longer installed and is left empty.
"""

from django.db import migrations


def forget_plaintext_tokens(apps, schema_editor):
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        tables = connection.introspection.table_names(cursor)
    if "authtoken_token" in tables:
        schema_editor.execute(f"DELETE FROM {schema_editor.quote_name('authtoken_token')}")


class Migration(migrations.Migration):
    dependencies = [("console", "0002_roles")]
    operations = [migrations.RunPython(forget_plaintext_tokens, migrations.RunPython.noop)]
