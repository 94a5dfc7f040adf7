"""``manage.py oidc_registration_token``: initial access tokens for dynamic client registration."""

from django.core.management.base import CommandError

from oidc_provider import registration
from oidc_provider.conf import oidc_settings
from oidc_provider.management import ProviderCommand


class Command(ProviderCommand):
    help = "Initial access tokens, with which clients register themselves at /oidc/register (RFC 7591)."
    subcommands = {
        "create": "Issue an initial access token; printed once, only its digest is kept.",
    }

    def add_create_arguments(self, parser):
        parser.add_argument("--expires-in", type=int, default=None, metavar="SECONDS",
                            help=f"Lifetime in seconds (default {oidc_settings.REGISTRATION_TOKEN_TTL}).")
        parser.add_argument("--note", default="", help="Who it is for, shown in the console.")

    def handle_create(self, *, expires_in, note, **options):
        if expires_in is not None and expires_in <= 0:
            raise CommandError("--expires-in must be a positive number of seconds.")
        row, token = registration.issue_initial_token(expires_in=expires_in, note=note[:200])
        lines = [
            self.style.SUCCESS("Issued an initial access token for dynamic client registration."),
            f"  token:    {token}",
            f"  expires:  {row.expires_at.isoformat()}",
            self.style.WARNING("  The token is shown only this once; only a digest of it is kept."),
        ]
        if not oidc_settings.DYNAMIC_REGISTRATION:
            self.warn("Dynamic registration is off: set OIDC_DYNAMIC_REGISTRATION=1 for /oidc/register to answer.")
        self.emit({"token": token, "expires_at": row.expires_at.isoformat()}, "\n".join(lines))
