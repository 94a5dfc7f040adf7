from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('oidc_provider', '0004_encrypt_signing_keys'),
    ]

    operations = [
        migrations.AlterModelOptions(
            name='accesskey',
            options={'ordering': ['-created_at'], 'permissions': [('issue_accesskey', 'Can issue an access key pair (AK/SK)'), ('revoke_accesskey', 'Can revoke an access key pair')], 'verbose_name': 'access key'},
        ),
        migrations.AlterModelOptions(
            name='application',
            options={'permissions': [('regenerate_secret', "Can regenerate an application's client secret"), ('revoke_tokens', 'Can revoke the tokens and consents of users and applications')], 'verbose_name': 'application'},
        ),
        migrations.AlterModelOptions(
            name='signingkey',
            options={'ordering': ['-created_at'], 'permissions': [('rotate_signingkey', 'Can rotate the signing keys'), ('retire_signingkey', 'Can retire a signing key')], 'verbose_name': 'signing key'},
        ),
    ]
