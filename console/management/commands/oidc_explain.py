"""``manage.py oidc_explain CLIENT_ID``: why an application's recent requests were refused."""

import json

from django.core.management.base import BaseCommand, CommandError

from console.models import Refusal
from console.refusals import as_item, retention_days
from oidc_provider.management import add_json_option
from oidc_provider.models import Application
from oidc_provider.refusals import text


def _facts(facts):
    if not isinstance(facts, dict) or not facts:
        return "—"
    shown = []
    for name, value in sorted(facts.items()):
        if isinstance(value, (list, tuple)):
            value = ", ".join(str(v) for v in value) or "—"
        shown.append(f"{name}={'—' if value is None or value == '' else value}")
    return "; ".join(shown)


class Command(BaseCommand):
    help = (
        "Show an application's recent refused authorization and token requests: when, the rule that refused "
        "each, what it sent beside what is registered, and the fix."
    )

    def add_arguments(self, parser):
        parser.add_argument("client_id", help="The application's client_id.")
        parser.add_argument("--limit", type=int, default=20, help="How many refusals, newest first (default 20, at most 500).")
        add_json_option(parser, top_level=True)

    def handle(self, *args, client_id, limit=20, **options):
        if not 1 <= limit <= 500:
            raise CommandError(f"--limit {limit}: give a number between 1 and 500.")
        application = Application.objects.filter(client_id=client_id).first() if text(client_id) == client_id else None
        if application is None:
            named = Refusal.objects.filter(client_id=text(client_id, 200)).count()
            hint = (f" {named} refused request(s) named it (rule client_unknown): see "
                    "/admin/console/refusal/ or /console/api/refusals/." if named else "")
            raise CommandError(f"No application has client_id '{text(client_id, 200)}'. "
                               f"List them with: manage.py oidc_app list.{hint}")
        refusals = [as_item(r) for r in Refusal.objects.filter(application=application).order_by("-at", "-id")[:limit]]
        if options.get("json"):
            self.stdout.write(json.dumps({
                "client_id": application.client_id, "application": application.name, "refusals": refusals,
            }, indent=2, ensure_ascii=False, default=str))
            return
        if not refusals:
            self.stdout.write(f"No refused request of {application.name} ({application.client_id}) recorded "
                              f"in the last {retention_days()} days.")
            return
        lines = [f"Refused requests of {application.name} ({application.client_id}), newest first:"]
        for item in refusals:
            lines += [
                "",
                f"{item['at']}  {item['endpoint']}  {item['error'] or '(browser refused: CORS)'}  rule: {item['rule']}",
                f"  sent:       {_facts(item['sent'])}",
                f"  registered: {_facts(item['registered'])}",
                f"  fix:        {item['fix']}" + (f" ({item['link']})" if item["link"] else ""),
            ]
        self.stdout.write("\n".join(lines))
