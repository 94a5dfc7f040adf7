import random

from django.db import migrations, models


def create_row(apps, schema_editor):
    ConfigVersion = apps.get_model("oidc_provider", "ConfigVersion")
    ConfigVersion.objects.using(schema_editor.connection.alias).get_or_create(
        pk=1, defaults={"value": random.getrandbits(62)}
    )


class Migration(migrations.Migration):
    dependencies = [("oidc_provider", "0002_seed_grant_policy")]
    operations = [
        migrations.CreateModel(
            name="ConfigVersion",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("value", models.BigIntegerField()),
            ],
            options={"verbose_name": "configuration version"},
        ),
        migrations.RunPython(create_row, migrations.RunPython.noop),
    ]
