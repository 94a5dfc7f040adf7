"""``manage.py oidc_backchannel``: deliver back-channel logout notices from cron.

Each process delivers the notices it queues by itself; this sends what is due whoever queued
it (a process that stopped before its retries, a node that went away).
"""

from oidc_provider import backchannel
from oidc_provider.management import ProviderCommand
from oidc_provider.models import LogoutNotice


class Command(ProviderCommand):
    help = "Back-channel logout notices (OpenID Connect Back-Channel Logout)."
    subcommands = {
        "deliver": "Send every logout notice that is due now; prints how many were delivered and how many wait.",
    }

    def handle_deliver(self, **options):
        delivered = backchannel.deliver_due()
        pending = LogoutNotice.objects.filter(delivered_at__isnull=True, given_up_at__isnull=True).count()
        self.emit({"delivered": delivered, "pending": pending},
                  f"Delivered {delivered} logout notice(s); {pending} wait for a retry.")
