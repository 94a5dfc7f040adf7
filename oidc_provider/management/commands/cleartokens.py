"""django-oauth-toolkit's ``cleartokens``, which also deletes redeemed codes past their lifetime.

Django runs the ``cleartokens`` of the first app in INSTALLED_APPS that has one: list
``oidc_provider`` before ``oauth2_provider`` (check ``oidc_provider.W003`` says so otherwise).
"""

from oauth2_provider.management.commands import cleartokens
from oauth2_provider.settings import oauth2_settings

from ...models import RedeemedCode


class Command(cleartokens.Command):
    help = "Delete expired tokens and grants (django-oauth-toolkit) and expired redeemed codes. Run it from cron."

    def handle(self, *args, **options):
        super().handle(*args, **options)
        deleted = RedeemedCode.objects.clear_expired(batch_size=oauth2_settings.CLEAR_EXPIRED_TOKENS_BATCH_SIZE)
        self.stdout.write(f"Deleted {deleted} expired redeemed code(s).")
