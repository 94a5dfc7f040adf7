"""``manage.py oidc_policy``: show and change which grants each application type may use."""

from oidc_provider import policy
from oidc_provider.management import ProviderCommand


class Command(ProviderCommand):
    help = "Show or change the grant policy: for each application type, which grants are recommended, allowed or forbidden."
    subcommands = {
        "show": "Show the policy: grants down, application types across.",
        "set": "Set the state of one (application type, grant) pair; takes effect on the next request.",
    }

    def add_set_arguments(self, parser):
        parser.add_argument("--type", required=True, dest="application_type", choices=policy.APPLICATION_TYPES,
                            help="The application type.")
        parser.add_argument("--grant", required=True, choices=policy.GRANTS, help="The grant.")
        parser.add_argument("--state", required=True, choices=policy.STATES,
                            help="recommended: on for new applications; allowed: may be turned on; forbidden: refused.")

    def handle_show(self, **options):
        current = policy.current_policy()
        data = {"policy": {t: {g: current[(t, g)] for g in policy.GRANTS} for t in policy.APPLICATION_TYPES}}
        self.emit(data, self._table(current))

    def _table(self, current):
        header = ["grant", *policy.APPLICATION_TYPES]
        rows = [header] + [[g, *(current[(t, g)] for t in policy.APPLICATION_TYPES)] for g in policy.GRANTS]
        widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
        lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows]
        lines.insert(1, "  ".join("-" * w for w in widths))
        return "\n".join(lines)

    def handle_set(self, *, application_type, grant, state, **options):
        # argparse has checked the names against policy's (choices above).
        previous = policy.set_state(application_type, grant, state)

        holding = policy.applications_holding(application_type, grant) if state == policy.FORBIDDEN else []
        data = {
            "application_type": application_type,
            "grant": grant,
            "state": state,
            "previous_state": previous,
            # Still listed on these applications, but refused at request time from now on.
            "applications_holding_grant": [{"client_id": a.client_id, "name": a.name} for a in holding],
        }
        text = (
            f"{grant} for {application_type} applications: {previous} -> {state}."
            if previous != state
            else f"{grant} for {application_type} applications was already {state}; nothing changed."
        )
        self.emit(data, text)
        if holding:
            listed = ", ".join(f"'{a.name}' ({a.client_id})" for a in holding)
            self.warn(
                f"{len(holding)} {application_type} application(s) still list {grant}: {listed}. "
                f"Their {grant} requests are refused (unauthorized_client) from now on; "
                f"remove the grant from them or choose another flow."
            )
