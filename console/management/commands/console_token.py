"""``manage.py console_token``: API tokens for the console REST API (CONTRACT §6, §8)."""

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError
from django.db import transaction
from rest_framework.authtoken.models import Token

from console import audit
from oidc_provider.management import ProviderCommand


class Command(ProviderCommand):
    help = "Create API tokens for the console REST API (/console/api/), for staff users only."
    subcommands = {
        "create": "Create a token for a staff user; a token the user already had is replaced and stops working.",
    }

    def add_create_arguments(self, parser):
        parser.add_argument("--user", required=True, dest="username", help="The staff user's username.")

    def handle_create(self, *, username, **options):
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

        with transaction.atomic():
            # One token per user (DRF's model): a new one replaces, and so revokes, the old.
            replaced = Token.objects.filter(user=user).delete()[0] > 0
            token = Token.objects.create(user=user)
            audit.record(audit.API_TOKEN_CREATED, actor_label="cli", target=user, replaced=replaced)

        if replaced:
            self.warn(f"'{username}' already had a token; it has been replaced and no longer works.")
        self.emit(
            {"user": user.get_username(), "token": token.key, "replaced": replaced},
            "\n".join([
                f"Token for {user.get_username()}: {token.key}",
                "Send it as 'Authorization: Token <token>' to /console/api/. Keep it secret: it acts as this user.",
            ]),
        )
