"""``manage.py oidc_keys``: list, rotate, retire, export, import and re-encrypt the ID token signing keys.

Rotation promotes the ``next`` key (published ahead of use) and announces a new one; the
previous key stays published (``inactive``) so tokens it signed keep verifying; retiring takes
a key out of the JWKS once those tokens have expired.

Private keys are stored encrypted under the key-encryption keys (OIDC_PROVIDER's
``KEY_ENCRYPTION_KEYS``); ``reencrypt`` moves every one under the first of them, the middle
step of rotating a key-encryption key. ``export`` writes a private key in clear (PKCS#8 PEM),
``import`` stores one made elsewhere; both are audited.
"""

import os
import sys

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import CommandError

from oidc_provider import keys
from oidc_provider.management import ProviderCommand
from oidc_provider.models import SigningKey


def _iso(value):
    return value.isoformat() if value else None


def describe(key):
    return {
        "kid": key.kid,
        "status": key.status,
        "algorithm": key.algorithm,
        "created_at": _iso(key.created_at),
        "activated_at": _iso(key.activated_at),
        "retired_at": _iso(key.retired_at),
    }


def published():
    """(kid, status) of every key in the JWKS, newest first."""
    return list(SigningKey.objects.exclude(status=SigningKey.RETIRED).order_by("-created_at", "-id").values_list("kid", "status"))


class Command(ProviderCommand):
    help = "List, rotate and retire the keys that sign ID tokens (published at /oidc/.well-known/jwks.json)."
    subcommands = {
        "list": "List signing keys, newest first, with their status.",
        "rotate": "Make the next key active and announce a new next key; the previous one stays published until retired.",
        "retire": "Take a non-active key out of the JWKS (tokens it signed stop verifying).",
        "export": "Write a key's private key, unencrypted (PKCS#8 PEM), to a file (mode 0600) or stdout.",
        "import": "Store an RSA private key (PEM file) as a new key, published as 'next' (or 'inactive').",
        "reencrypt": "Encrypt every private key under the first key-encryption key (after adding a new one).",
    }

    def add_export_arguments(self, parser):
        parser.add_argument("kid", metavar="KID", help="The key ID, as shown by 'oidc_keys list' (write -- before one that starts with a dash).")
        parser.add_argument("--out", metavar="FILE", help="Write the PEM to FILE, created with mode 0600 (refused if it exists). Default: stdout.")

    def add_import_arguments(self, parser):
        parser.add_argument("file", metavar="FILE", help="A PEM file holding an unencrypted RSA private key of 2048 bits or more; - for stdin.")
        parser.add_argument(
            "--status", choices=[SigningKey.NEXT, SigningKey.INACTIVE], default=SigningKey.NEXT,
            help="'next' (default): published now, signs after the next rotation. "
                 "'inactive': only verifies tokens it signed elsewhere.",
        )

    def add_retire_arguments(self, parser):
        parser.add_argument("kid", metavar="KID", help="The key ID, as shown by 'oidc_keys list' (write -- before one that starts with a dash).")

    def handle_list(self, **options):
        rows = list(SigningKey.objects.order_by("-created_at", "-id"))
        data = {"keys": [describe(k) for k in rows]}
        if not rows:
            text = "No signing keys yet; one is made on first start (or run: manage.py oidc_keys rotate)."
        else:
            table = [("KID", "STATUS", "ALG", "CREATED", "ACTIVATED", "RETIRED")]
            table += [
                (k.kid, k.status, k.algorithm, *(f"{v:%Y-%m-%d %H:%M:%S}" if v else "-" for v in (k.created_at, k.activated_at, k.retired_at)))
                for k in rows
            ]
            widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
            text = "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in table)
        self.emit(data, text)

    def handle_rotate(self, **options):
        new = keys.rotate()
        rows = published()
        previous = [kid for kid, status in rows if status == SigningKey.INACTIVE]
        upcoming = [kid for kid, status in rows if status == SigningKey.NEXT]
        data = {
            "kid": new.kid, "status": new.status, "previous_kids": previous, "next_kids": upcoming,
            "published_kids": [kid for kid, _status in rows],
        }
        text = [self.style.SUCCESS(f"New active signing key: {new.kid}")]
        if upcoming:
            text.append("Announced in the JWKS, to sign after the next rotation: " + ", ".join(upcoming))
        if previous:
            text.append("Still published, so tokens they signed keep verifying: " + ", ".join(previous))
            text.append("Retire one once its tokens have expired: manage.py oidc_keys retire -- KID")
        self.emit(data, "\n".join(text))

    def handle_retire(self, *, kid, **options):
        key = SigningKey.objects.filter(kid=kid).first()
        if key is None:
            raise CommandError(f"No signing key with kid '{kid}'. See: manage.py oidc_keys list")
        if key.status == SigningKey.RETIRED:
            raise CommandError(f"Key '{kid}' is already retired (since {key.retired_at:%Y-%m-%d %H:%M:%S} UTC).")
        if key.status == SigningKey.ACTIVE:
            raise CommandError(
                f"Key '{kid}' is the active key and signs new tokens; it cannot be retired. "
                "Run 'manage.py oidc_keys rotate' first, then retire it once its tokens have expired."
            )
        try:
            key = keys.retire(key)
        except ValueError as e:  # keys.retire has the last word (e.g. it became active meanwhile)
            raise CommandError(str(e)) from None
        data = {**describe(key), "published_kids": [kid for kid, _status in published()]}
        self.emit(data, f"Retired key {kid}; it is no longer published, and tokens it signed no longer verify.")

    def handle_export(self, *, kid, out=None, **options):
        key = SigningKey.objects.filter(kid=kid).first()
        if key is None:
            raise CommandError(f"No signing key with kid '{kid}'. See: manage.py oidc_keys list")
        if out is None:
            pem = self._export(key)
            if self.as_json:
                self.emit({**describe(key), "private_key_pem": pem}, "")
            else:
                self.stdout.write(pem, ending="")
            return
        try:
            fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            raise CommandError(f"{out} already exists; name a new file (the key is written only to a file made for it).") from None
        except OSError as e:
            raise CommandError(f"Cannot create {out}: {e.strerror}.") from None
        with os.fdopen(fd, "w") as f:
            try:
                f.write(self._export(key))
            except CommandError:
                os.unlink(out)
                raise
        self.emit({**describe(key), "file": out}, f"Wrote the private key of {kid} to {out} (mode 0600). Keep it as safe as the database.")

    @staticmethod
    def _export(key):
        try:
            return keys.export_pem(key)
        except ImproperlyConfigured as e:
            raise CommandError(str(e)) from None

    def handle_import(self, *, file, status, **options):
        try:
            if file == "-":
                pem = sys.stdin.buffer.read()
            else:
                with open(file, "rb") as f:
                    pem = f.read(1 << 20)
        except OSError as e:
            raise CommandError(f"Cannot read {file}: {e.strerror}.") from None
        try:
            key = keys.import_pem(pem, status=status)
        except ValueError as e:
            raise CommandError(f"{file}: {e}") from None
        except ImproperlyConfigured as e:
            raise CommandError(str(e)) from None
        text = f"Imported key {key.kid} as '{key.status}'; it is published in the JWKS."
        if key.status == SigningKey.NEXT:
            older = list(SigningKey.objects.filter(status=SigningKey.NEXT, created_at__lt=key.created_at).values_list("kid", flat=True))
            if older:
                text += (" A rotation promotes the oldest next key first: retire " + ", ".join(older)
                         + " (manage.py oidc_keys retire -- KID), then run manage.py oidc_keys rotate to make it sign.")
            else:
                text += " It signs after the next rotation: manage.py oidc_keys rotate."
        self.emit({**describe(key), "published_kids": [k for k, _s in published()]}, text)

    def handle_reencrypt(self, **options):
        try:
            count = keys.reencrypt()
        except ImproperlyConfigured as e:
            raise CommandError(str(e)) from None
        self.emit(
            {"reencrypted": count},
            f"Re-encrypted {count} private key(s) under the first key-encryption key; "
            "older key-encryption keys can now be removed from the configuration.",
        )
