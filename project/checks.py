"""`manage.py check --deploy` for this deployment: every warning names the environment
variable that fixes it.

Django's own security warnings name settings, which a deployment of this project never
edits; they are silenced in settings.py and re-issued here with the variable to set.
"""

import os

from django.conf import settings
from django.core.checks import Tags, Warning, register
from django.core.checks.registry import registry

# Django's check id -> how to fix it here.
ENV_FIXES = {
    "security.W004": "Set DJANGO_SECURE_HSTS_SECONDS=31536000 (the default when OIDC_ISSUER is https).",
    "security.W005": "Set DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS=1 once every subdomain is served over https.",
    "security.W008": "Set DJANGO_SECURE_SSL_REDIRECT=1 (behind a TLS proxy also DJANGO_BEHIND_TLS_PROXY=1).",
    "security.W009": "Set DJANGO_SECRET_KEY to a long random value (e.g. python -c 'import secrets; print(secrets.token_urlsafe(50))').",
    "security.W012": "Set DJANGO_SECURE_COOKIES=1 (the default when OIDC_ISSUER is https).",
    "security.W016": "Set DJANGO_SECURE_COOKIES=1 (the default when OIDC_ISSUER is https).",
    "security.W018": "Set DJANGO_DEBUG=0.",
    "security.W020": "Set DJANGO_ALLOWED_HOSTS to the host names the site is served under.",
    "security.W021": "Set DJANGO_SECURE_HSTS_PRELOAD=1 once the site may be put on the browsers' preload list.",
}


@register(deploy=True)
def check_security_settings(app_configs, **kwargs):
    """Django's security checks, each with the environment variable that fixes it."""
    found = []
    for check in registry.get_checks(include_deployment_checks=True):
        if Tags.security in check.tags:
            found.extend(check(app_configs=app_configs, databases=None))
    return [
        Warning(message.msg, hint=ENV_FIXES[message.id], obj=message.obj, id=message.id.replace("security.", "project.security."))
        for message in found
        if message.id in ENV_FIXES
    ]


@register(deploy=True)
def check_generated_secrets(app_configs, **kwargs):
    """Secrets generated into the data folder sit beside the database and its backups."""
    warnings = []
    if not os.environ.get("DJANGO_SECRET_KEY"):
        warnings.append(Warning(
            f"DJANGO_SECRET_KEY is not set: sessions and digests use the key generated into {settings.GENERATED_SECRET_KEY_FILE}.",
            hint="Set DJANGO_SECRET_KEY to that file's content (or, before the first users, to a new random value) "
                 "from a secret store, and delete the file.",
            id="project.W001",
        ))
    if not os.environ.get("OIDC_KEY_ENCRYPTION_KEY"):
        warnings.append(Warning(
            "OIDC_KEY_ENCRYPTION_KEY is not set: the signing keys are encrypted under the key generated into "
            f"{settings.GENERATED_KEY_ENCRYPTION_KEY_FILE}, beside the database, so whoever copies the data folder can decrypt them.",
            hint="Set OIDC_KEY_ENCRYPTION_KEY to that file's content from a secret store (kept apart from the database "
                 "and its backups), and delete the file; to change the key, see 'Security choices' in the README.",
            id="project.W002",
        ))
    return warnings
