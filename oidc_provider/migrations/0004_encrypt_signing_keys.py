"""Encrypt the private keys stored in clear under the key-encryption key."""

from django.db import migrations, models


def encrypt(apps, schema_editor):
    from oidc_provider import keys

    SigningKey = apps.get_model("oidc_provider", "SigningKey")
    for key in SigningKey.objects.using(schema_editor.connection.alias).all():
        if not keys.is_encrypted(key.private_key):
            key.private_key = keys.encrypt_pem(key.private_key)
            key.save(update_fields=["private_key"])


def decrypt(apps, schema_editor):
    from oidc_provider import keys

    SigningKey = apps.get_model("oidc_provider", "SigningKey")
    for key in SigningKey.objects.using(schema_editor.connection.alias).all():
        if keys.is_encrypted(key.private_key):
            key.private_key = keys.decrypt_pem(key.private_key, key.kid)
            key.save(update_fields=["private_key"])


class Migration(migrations.Migration):
    dependencies = [("oidc_provider", "0003_configversion")]
    operations = [
        migrations.AlterField(
            model_name="signingkey",
            name="private_key",
            field=models.TextField(verbose_name="private key (encrypted PEM)"),
        ),
        migrations.RunPython(encrypt, decrypt),
    ]
