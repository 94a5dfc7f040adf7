"""``manage.py console_roles``: make the three shipped roles again, with their shipped permissions."""

from django.db import transaction

from console.permissions import sync_roles
from oidc_provider.management import ProviderCommand


class Command(ProviderCommand):
    help = (
        "Create the console's three roles (Django groups: Identity administrator, Application manager, "
        "Auditor) or reset their permissions to the shipped ones. Members are kept."
    )
    subcommands = {"sync": "Create the roles or reset their permissions; safe to run again."}

    def handle_sync(self, **options):
        with transaction.atomic():
            roles = sync_roles()
        self.emit(
            {"roles": roles},
            "\n".join(f"{name}: {len(perms)} permissions" for name, perms in roles.items()),
        )
