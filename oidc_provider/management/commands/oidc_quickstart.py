"""``manage.py oidc_quickstart``: a fresh clone to a running provider in one command.

Migrates, makes a signing key, an ``admin`` superuser and one demo application per type,
prints their credentials once, then serves on http://127.0.0.1:8000. Running it again
reuses everything and shows no password or secret.
"""

import json
import secrets

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from oidc_provider import applications, keys, policy
from oidc_provider.conf import oidc_settings
from oidc_provider.management import add_json_option, validation_error_text
from oidc_provider.management.commands.oidc_app import describe
from oidc_provider.models import Application

ADDRPORT = "127.0.0.1:8000"
ADMIN_USERNAME = "admin"

# Identified by name, so a second run finds them. Loopback redirect URIs work without TLS
# (RFC 8252); a native app may use any port on its loopback URI.
DEMO_APPS = [
    {"name": "Demo web app", "application_type": policy.WEB,
     "redirect_uris": ["http://127.0.0.1:8080/callback"], "post_logout_redirect_uris": ["http://127.0.0.1:8080/"]},
    {"name": "Demo SPA", "application_type": policy.SPA,
     "redirect_uris": ["http://127.0.0.1:5173/callback"], "post_logout_redirect_uris": ["http://127.0.0.1:5173/"]},
    {"name": "Demo native app", "application_type": policy.NATIVE,
     "redirect_uris": ["http://127.0.0.1/callback"], "post_logout_redirect_uris": ["http://127.0.0.1/"]},
    {"name": "Demo service", "application_type": policy.SERVICE,
     "redirect_uris": [], "post_logout_redirect_uris": []},
]


class Command(BaseCommand):
    help = (
        "Set up a local provider (database, signing key, admin account, one demo application per type), "
        f"print the credentials once, and serve it on http://{ADDRPORT}."
    )
    def add_arguments(self, parser):
        parser.add_argument("--no-serve", action="store_true", help="Only set up; do not start the server.")
        add_json_option(parser, top_level=True)

    def handle(self, *args, no_serve=False, verbosity=1, **options):
        as_json = options.get("json", False)
        # With --json, stdout holds only our one object; what other commands say goes to stderr.
        side_channel = _raw(self.stderr if as_json else self.stdout)
        call_command("migrate", interactive=False, verbosity=max(verbosity - 1, 0), stdout=side_channel)
        key = keys.ensure_active_key()
        admin = self._ensure_admin()
        apps = [self._ensure_demo_app(spec) for spec in DEMO_APPS]

        issuer = oidc_settings.issuer
        result = {
            "created": admin["created"] or any(a["created"] for a in apps),
            "admin": admin,
            "applications": apps,
            "signing_key": key.kid,
            "issuer": issuer,
            "discovery_url": f"{issuer}/.well-known/openid-configuration",
            "console_url": f"http://{ADDRPORT}/admin/",
        }
        if as_json:
            self.stdout.write(json.dumps(result, indent=2))
        else:
            self.stdout.write(self._summary(result))

        if not no_serve:
            self.stdout.flush()
            # The reloader would run this whole command again in a child process.
            call_command("runserver", ADDRPORT, use_reloader=False, skip_checks=False, stdout=side_channel)

    def _ensure_admin(self):
        User = get_user_model()
        if User.objects.filter(**{User.USERNAME_FIELD: ADMIN_USERNAME}).exists():
            return {"username": ADMIN_USERNAME, "created": False, "password": None}
        password = secrets.token_urlsafe(12)
        User.objects.create_superuser(**{User.USERNAME_FIELD: ADMIN_USERNAME}, email="", password=password)
        return {"username": ADMIN_USERNAME, "created": True, "password": password}

    def _ensure_demo_app(self, spec):
        app = Application.objects.filter(name=spec["name"]).order_by("id").first()
        if app is not None:
            return {**describe(app), "client_secret": None, "created": False}
        try:
            app = applications.create(**spec)
        except ValidationError as e:
            # Possible when an admin changed the policy so a type's recommended grants no longer fit.
            raise CommandError(f"Could not create '{spec['name']}':\n{validation_error_text(e)}") from None
        return {**describe(app), "client_secret": app.plaintext_secret, "created": True}

    def _summary(self, result):
        lines = []
        admin = result["admin"]
        if not result["created"]:
            lines.append("Nothing new to create: reusing existing admin account and demo applications "
                         "(their password and secrets were shown when they were made).")
        if admin["created"]:
            lines += [self.style.SUCCESS("Created the admin account:"),
                      f"  username: {admin['username']}", f"  password: {admin['password']}"]
        elif result["created"]:
            lines.append(f"Reusing the existing '{admin['username']}' account (password not shown again; "
                         f"reset it with: manage.py changepassword {admin['username']}).")
        for app in result["applications"]:
            head = f"{'Created' if app['created'] else 'Existing'} {app['application_type']} application '{app['name']}':"
            lines.append(self.style.SUCCESS(head) if app["created"] else head)
            lines.append(f"  client_id:     {app['client_id']}")
            if app["client_secret"]:
                lines.append(f"  client_secret: {app['client_secret']}")
            lines.append(f"  grants:        {', '.join(app['grant_types'])}")
            if app["redirect_uris"]:
                lines.append(f"  redirect URIs: {' '.join(app['redirect_uris'])}")
        if result["created"]:
            lines.append(self.style.WARNING(
                "Passwords and client secrets above are shown only this once; only digests are kept."))
        lines += [
            "",
            f"Issuer:    {result['issuer']}",
            f"Discovery: {result['discovery_url']}",
            f"Console:   {result['console_url']}",
        ]
        return "\n".join(lines)


def _raw(wrapper):
    """The stream under Django's OutputWrapper, so another command's output is not restyled."""
    return getattr(wrapper, "_out", wrapper)
