"""What every provider command shares: the ``--json`` convention.

With ``--json`` a command prints exactly one JSON object on stdout, so scripts can parse it;
without it, a human-readable summary. Refusals are ``CommandError``s: Django prints them on
stderr and exits non-zero, and the command has changed nothing.
"""

import argparse
import json

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand


def add_json_option(parser, top_level=False):
    # Accepted before and after the subcommand. The subcommand's copy must not reset a
    # value given before it, hence SUPPRESS as its default.
    parser.add_argument(
        "--json",
        action="store_true",
        default=False if top_level else argparse.SUPPRESS,
        help="Print one JSON object on stdout instead of a summary.",
    )


def _identifier(subcommand):
    # regenerate-secret -> handle_regenerate_secret
    return subcommand.replace("-", "_")


class ProviderCommand(BaseCommand):
    """A command with subcommands (``oidc_app create``), each accepting ``--json``."""

    # name -> help text. A subcommand's arguments come from ``add_<name>_arguments(parser)``
    # and its work from ``handle_<name>(**options)``.
    subcommands = {}

    def add_arguments(self, parser):
        add_json_option(parser, top_level=True)
        sub = parser.add_subparsers(dest="subcommand", required=True, metavar="{%s}" % ",".join(self.subcommands))
        for name, help_text in self.subcommands.items():
            subparser = sub.add_parser(name, help=help_text, description=help_text)
            add_json_option(subparser)
            getattr(self, f"add_{_identifier(name)}_arguments", lambda p: None)(subparser)

    def handle(self, *args, subcommand, **options):
        self.as_json = options.get("json", False)
        return getattr(self, f"handle_{_identifier(subcommand)}")(**options)

    def emit(self, data, text):
        """The command's one output: ``data`` as JSON, or ``text`` for people."""
        if self.as_json:
            self.stdout.write(json.dumps(data, indent=2, default=str))
        elif text:
            self.stdout.write(text)

    def warn(self, message):
        # On stderr in both modes, so stdout stays a single JSON object.
        self.stderr.write(self.style.WARNING(f"Warning: {message}"))


def validation_error_text(error):
    """A ValidationError as lines a person can act on ("redirect_uris: ...")."""
    if isinstance(error, ValidationError) and hasattr(error, "error_dict"):
        lines = []
        for field, messages in error.message_dict.items():
            label = "" if field == "__all__" else f"{field}: "
            lines.extend(f"{label}{m}" for m in messages)
        return "\n".join(lines)
    return "\n".join(str(m) for m in getattr(error, "messages", [error]))
