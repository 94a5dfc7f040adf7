from django.db import migrations


def seed(apps, schema_editor):
    from oidc_provider.policy import DEFAULT_POLICY

    GrantPolicy = apps.get_model("oidc_provider", "GrantPolicy")
    for (application_type, grant), state in DEFAULT_POLICY.items():
        GrantPolicy.objects.get_or_create(application_type=application_type, grant=grant, defaults={"state": state})


class Migration(migrations.Migration):
    dependencies = [("oidc_provider", "0001_initial")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
