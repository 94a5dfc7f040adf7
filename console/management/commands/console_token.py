"""``manage.py console_token``: API tokens for the console REST API, stored as digests (django-rest-knox)."""

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError
from django.db import transaction
from knox.models import get_token_model

from console.api_tokens import create_token
from oidc_provider.management import ProviderCommand


class Command(ProviderCommand):
    help = "Create API tokens for the console REST API (/console/api/), for staff users only."
    subcommands = {
        "create": "Create a token for a staff user (shown once, stored as a digest, expiring); "
        "the user's earlier tokens are revoked.",
    }

    def add_create_arguments(self, parser):
        parser.add_argument("--user", required=True, dest="username", help="The staff user's username.")
        parser.add_argument(
            "--days", type=int, default=None,
            help="How long the token is valid, in days (default: the site's REST_KNOX TOKEN_TTL, 30 days).",
        )

    def handle_create(self, *, username, days=None, **options):
        User = get_user_model()
        user = User._default_manager.filter(**{User.USERNAME_FIELD: username}).first()
        if user is None:
            raise CommandError(f"No user '{username}'. Create one with: manage.py createsuperuser")
        if not user.is_staff:
            raise CommandError(
                f"'{username}' is not staff; console API tokens are for staff users only. "
                "Tick “Staff status” for them in /admin/ first."
            )
        if not user.is_active:
            raise CommandError(f"'{username}' is inactive; activate the account in /admin/ first.")
        if days is not None and not 1 <= days <= 3650:
            raise CommandError(f"--days {days}: give a number of days between 1 and 3650.")

        with transaction.atomic():
            # A script re-running this gets one working token, not a growing pile of them.
            replaced = get_token_model().objects.filter(user=user).delete()[0] > 0
            instance, token = create_token(user, days, actor_label="cli")

        if replaced:
            self.warn(f"'{username}' already had a token; it has been replaced and no longer works.")
        expires_at = instance.expiry.isoformat() if instance.expiry else None
        self.emit(
            {"user": user.get_username(), "token": token, "expires_at": expires_at, "replaced": replaced},
            "\n".join([
                f"Token for {user.get_username()}: {token}",
                f"Valid until {expires_at or 'revoked'}. Send it as 'Authorization: Token <token>' to /console/api/. "
                "Keep it secret: it acts as this user, and it is not shown again.",
            ]),
        )
