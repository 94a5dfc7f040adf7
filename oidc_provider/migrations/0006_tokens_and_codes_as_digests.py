"""Leave no usable token or code in the database after an upgrade.

Access and refresh tokens written before the provider stored digests only kept the token
itself beside its ``token_checksum``: the column is blanked (the checksum, which lookups
use, is derived again from it). Pending authorization codes are replaced by their sha256,
which is how the provider looks them up now. Reversing leaves the digests: the plaintext
cannot (and must not) come back.
"""

import hashlib
import re

from django.db import migrations
from oauth2_provider.settings import oauth2_settings

BATCH = 1000
# A stored code already in digest form (64 hex digits); oauthlib's codes are 30 characters.
_DIGEST = re.compile(r"[0-9a-f]{64}")


def _sha256(value):
    return hashlib.sha256(value.encode("utf-8", "replace")).hexdigest()


def _batches(queryset):
    """``queryset``'s rows, BATCH at a time, by primary key (rows rewritten along the way
    drop out of the filter, so paging by key, not by offset)."""
    last = None
    while True:
        page = queryset.order_by("pk")
        if last is not None:
            page = page.filter(pk__gt=last)
        rows = list(page[:BATCH])
        if not rows:
            return
        yield rows
        last = rows[-1].pk


def _digest_tokens(model):
    for rows in _batches(model.objects.exclude(token="")):
        for row in rows:
            row.token_checksum = _sha256(row.token)
            row.token = ""
        model.objects.bulk_update(rows, ["token", "token_checksum"])


def _digest_codes(model):
    for rows in _batches(model.objects.all()):
        changed = [row for row in rows if not _DIGEST.fullmatch(row.code)]
        for row in changed:
            row.code = _sha256(row.code)
        model.objects.bulk_update(changed, ["code"])


def forwards(apps, schema_editor):
    _digest_tokens(apps.get_model(oauth2_settings.REFRESH_TOKEN_MODEL))
    _digest_tokens(apps.get_model(oauth2_settings.ACCESS_TOKEN_MODEL))
    _digest_codes(apps.get_model(oauth2_settings.GRANT_MODEL))


class Migration(migrations.Migration):
    dependencies = [
        ("oidc_provider", "0005_named_permissions"),
        ("oauth2_provider", "0022_refreshtoken_token_family_index"),
        migrations.swappable_dependency(oauth2_settings.ACCESS_TOKEN_MODEL),
        migrations.swappable_dependency(oauth2_settings.REFRESH_TOKEN_MODEL),
        migrations.swappable_dependency(oauth2_settings.GRANT_MODEL),
    ]
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
