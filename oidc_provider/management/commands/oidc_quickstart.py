"""``manage.py oidc_quickstart``: a fresh clone to a running provider in one command.

Migrates, makes a signing key, an ``admin`` superuser and one demo application per type,
prints their credentials once, then serves at the issuer's host and port
(http://127.0.0.1:8000 by default) or at ``--address HOST:PORT``. Running it again reuses
everything and shows no password or secret.
"""

import ipaddress
import json
import re
import secrets
from urllib.parse import urlsplit

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from oidc_provider import applications, keys, policy
from oidc_provider.conf import oidc_settings
from oidc_provider.management import add_json_option, validation_error_text
from oidc_provider.management.commands.oidc_app import describe
from oidc_provider.models import Application

DEFAULT_ADDRESS = "127.0.0.1:8000"
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
        "print the credentials once, and serve it at the issuer's host and port (or --address)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--no-serve", action="store_true", help="Only set up; do not start the server.")
        parser.add_argument(
            "--address", metavar="HOST:PORT",
            help="Where to serve, e.g. 127.0.0.1:9000 or [::1]:9000 (default: the host and port of OIDC_ISSUER).")
        add_json_option(parser, top_level=True)

    def handle(self, *args, no_serve=False, verbosity=1, address=None, **options):
        as_json = options.get("json", False)
        issuer = oidc_settings.issuer
        # Checked before anything is written, so a refused address changes nothing.
        if address is not None:
            address = parse_address(address)
            console_url = f"http://{address}/admin/"
        else:
            address = issuer_address(issuer)
            console_url = f"{_origin(issuer) or 'http://' + address}/admin/"
        # With --json, stdout holds only our one object; what other commands say goes to stderr.
        side_channel = _raw(self.stderr if as_json else self.stdout)
        call_command("migrate", interactive=False, verbosity=max(verbosity - 1, 0), stdout=side_channel)
        key = keys.ensure_active_key()
        admin = self._ensure_admin()
        apps = [self._ensure_demo_app(spec) for spec in DEMO_APPS]

        result = {
            "created": admin["created"] or any(a["created"] for a in apps),
            "admin": admin,
            "applications": apps,
            "signing_key": key.kid,
            "issuer": issuer,
            "discovery_url": f"{issuer}/.well-known/openid-configuration",
            "console_url": console_url,
            "address": address,
            "run_command": f"python manage.py runserver {address}",
        }
        warning = _issuer_mismatch(issuer, address)
        if as_json:
            self.stdout.write(json.dumps(result, indent=2))
            if warning:
                self.stderr.write(warning)
        else:
            self.stdout.write(self._summary(result, warning))

        if not no_serve:
            self.stdout.flush()
            # The reloader would run this whole command again in a child process.
            call_command("runserver", address, use_reloader=False, skip_checks=False, stdout=side_channel)

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

    def _summary(self, result, warning=None):
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
            f"Run:       {result['run_command']}",
        ]
        if warning:
            lines.append(self.style.WARNING(warning))
        return "\n".join(lines)


_PORT = re.compile(r"[0-9]{1,5}")
_DNS_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")


def parse_address(value):
    """``HOST:PORT`` as runserver takes it (an IPv4 address, a bracketed IPv6 address or a
    host name, and a port from 1 to 65535), normalised; CommandError otherwise."""
    host, colon, port = value.strip().rpartition(":")
    if not colon or not host or not _PORT.fullmatch(port) or not 1 <= int(port) <= 65535:
        raise CommandError(
            f"--address must be HOST:PORT with a port from 1 to 65535 (e.g. 127.0.0.1:9000), not {value!r}.")
    port = str(int(port))
    if host.startswith("[") and host.endswith("]") and "%" not in host:
        try:
            return f"[{ipaddress.IPv6Address(host[1:-1]).compressed}]:{port}"
        except ValueError:
            pass
    else:
        try:
            return f"{ipaddress.IPv4Address(host)}:{port}"
        except ValueError:
            # A name, unless it looks like a mistyped IPv4 address (all digits and dots).
            labels = host.split(".")
            if (len(host) <= 253 and all(_DNS_LABEL.fullmatch(label) for label in labels)
                    and not all(label.isdigit() for label in labels)):
                return f"{host.lower()}:{port}"
    raise CommandError(
        f"--address: {host!r} is not an IPv4 address, a host name or an IPv6 address in brackets "
        "(e.g. 127.0.0.1:9000, localhost:9000, [::1]:9000).")


def issuer_address(issuer):
    """The issuer's host and port as runserver's address when the issuer is on this machine's
    loopback; else the default: a development server with a fresh admin password never
    listens on a public interface unless --address says so."""
    try:
        parts = urlsplit(issuer)
        port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
        host = parts.hostname
    except ValueError:
        return DEFAULT_ADDRESS
    if not host or not port or not _loopback(host):
        return DEFAULT_ADDRESS
    try:
        return parse_address(f"[{host}]:{port}" if ":" in host else f"{host}:{port}")
    except CommandError:
        return DEFAULT_ADDRESS


def _loopback(host):
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _origin(issuer):
    parts = urlsplit(issuer)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else None


def _issuer_mismatch(issuer, address):
    """A warning when the server will listen somewhere the issuer does not name: relying
    parties follow the issuer's URLs, so they would not reach this server."""
    if address == issuer_address(issuer):
        return None
    return (f"The issuer is {issuer}, which is not at {address}: relying parties will use the issuer's URLs. "
            f"To serve the provider at this address, set OIDC_ISSUER=http://{address}/oidc.")


def _raw(wrapper):
    """The stream under Django's OutputWrapper, so another command's output is not restyled."""
    return getattr(wrapper, "_out", wrapper)
