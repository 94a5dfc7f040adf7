"""The deployment's system checks. `manage.py check --deploy`: every warning names the
environment variable that fixes it. `manage.py migrate` (and `check --database default`):
MariaDB and MySQL compare strings exactly.

Django's own security warnings name settings, which a deployment of this project never
edits; they are silenced in settings.py and re-issued here with the variable to set.
"""

import os

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register
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


# Binary and without padding: equal only when every byte is ("ABC" != "abc", "abc " != "abc").
EXACT_COLLATIONS = ("utf8mb4_nopad_bin", "utf8mb4_0900_bin")  # MariaDB, MySQL 8


@register(Tags.database)
def check_exact_collation(app_configs, databases=None, **kwargs):
    """On MariaDB and MySQL, strings compare byte for byte: client ids, redirect URIs, token
    digests and usernames must not match another that differs in case, accents or trailing
    spaces. Run by `manage.py migrate` before it creates tables, which take the database's
    collation, and by `manage.py check --database default`."""
    from django.db import connections

    errors = []
    for alias in databases or ():
        connection = connections[alias]
        if connection.vendor != "mysql":
            continue
        with connection.cursor() as cursor:
            cursor.execute("SELECT DATABASE(), @@collation_database")
            name, collation = cursor.fetchone()
            cursor.execute(
                "SELECT table_name, column_name, collation_name FROM information_schema.columns "
                # Binary at least (JSON columns are utf8mb4_bin, MariaDB's choice for them).
                "WHERE table_schema = DATABASE() AND collation_name NOT LIKE '%\\_bin' ORDER BY table_name, column_name"
            )
            loose = cursor.fetchall()
        if collation not in EXACT_COLLATIONS:
            errors.append(Error(
                f"Database {name!r} ({alias}) compares strings with collation {collation}, which ignores case or "
                "trailing spaces: a client id or token could match another that is not the same.",
                hint=f"ALTER DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin "
                     "(MySQL 8: utf8mb4_0900_bin), before `manage.py migrate` creates the tables.",
                id="project.E001",
            ))
        if loose:
            columns = ", ".join(f"{table}.{column} ({loose_collation})" for table, column, loose_collation in loose[:5])
            more = f" and {len(loose) - 5} more" if len(loose) > 5 else ""
            errors.append(Error(
                f"Columns of database {name!r} ({alias}) compare strings loosely: {columns}{more}.",
                hint="Convert each table: ALTER TABLE <table> CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin "
                     "(MySQL 8: utf8mb4_0900_bin).",
                id="project.E002",
            ))
    return errors
