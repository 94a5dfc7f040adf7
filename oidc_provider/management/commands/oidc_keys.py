"""``manage.py oidc_keys``: list, rotate and retire the ID token signing keys.

Rotation promotes the ``next`` key (published ahead of use) and announces a new one; the
previous key stays published (``inactive``) so tokens it signed keep verifying; retiring takes
a key out of the JWKS once those tokens have expired.
"""

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
    }

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
