"""``cleartokens``: delete expired tokens, codes and redeemed-code records (oidc_provider.cleanup).

Django runs the ``cleartokens`` of the first app in INSTALLED_APPS that has one: list
``oidc_provider`` before ``oauth2_provider`` (check ``oidc_provider.W003`` says so otherwise).
"""

import json
import time

from django.core.management.base import BaseCommand, CommandError

from ...cleanup import clear_expired

PROGRESS_EVERY = 2.0  # seconds between progress lines


class Command(BaseCommand):
    help = (
        "Delete expired tokens, codes and redeemed-code records in short batches, with progress. "
        "Run it from cron; stopped at any point, the next run goes on with the rest."
    )

    def add_arguments(self, parser):
        parser.add_argument("--batch-size", type=int, default=None,
                            help="Keys per batch (default: CLEAR_EXPIRED_TOKENS_BATCH_SIZE, 2000).")
        parser.add_argument("--pause", type=float, default=None,
                            help="Seconds to wait between batches (default: CLEAR_EXPIRED_TOKENS_BATCH_INTERVAL, 0).")
        parser.add_argument("--max-seconds", type=float, default=None,
                            help="Stop after the batch in progress once this long has passed; the next run goes on.")
        parser.add_argument("--json", action="store_true", dest="as_json", help="Print one JSON object at the end, no progress lines.")

    def handle(self, *args, batch_size=None, pause=None, max_seconds=None, as_json=False, **options):
        if batch_size is not None and batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        if pause is not None and pause < 0:
            raise CommandError("--pause must be zero or more seconds.")
        if max_seconds is not None and max_seconds <= 0:
            raise CommandError("--max-seconds must be above zero (leave it out for no limit).")
        started = time.monotonic()
        shown = {"at": started}

        def progress(kind, deleted):
            now = time.monotonic()
            if not as_json and now - shown["at"] >= PROGRESS_EVERY:
                shown["at"] = now
                self.stdout.write(f"{kind.label}: {deleted} deleted so far ({now - started:.0f} s)")

        counts, finished = clear_expired(batch_size=batch_size, pause=pause, max_seconds=max_seconds, progress=progress)
        elapsed = time.monotonic() - started
        total = sum(counts.values())
        if as_json:
            self.stdout.write(json.dumps({"deleted": counts, "total": total, "seconds": round(elapsed, 3), "finished": finished}))
            return
        for label, deleted in counts.items():
            self.stdout.write(f"Deleted {deleted} {label}.")
        rate = f", {total / elapsed * 60:.0f} rows a minute" if elapsed > 0 and total else ""
        if finished:
            self.stdout.write(f"Done: {total} rows in {elapsed:.1f} s{rate}.")
        else:
            self.stdout.write(f"Stopped after {elapsed:.1f} s with {total} rows deleted{rate}; run it again to go on.")

