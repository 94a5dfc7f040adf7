"""``manage.py oidc_app``: register, list and delete relying parties."""

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError

from oidc_provider import applications, policy
from oidc_provider.management import ProviderCommand, validation_error_text
from oidc_provider.models import Application

def describe(app):
    """The JSON shape of an application, without its secret (only create shows that)."""
    return {
        "client_id": app.client_id,
        "name": app.name,
        "application_type": app.application_type,
        "grant_types": list(app.grant_types or []),
        "redirect_uris": app.redirect_uris.split(),
        "post_logout_redirect_uris": app.post_logout_redirect_uris.split(),
        "allowed_origins": app.allowed_origins.split(),
        "backchannel_logout_uri": app.backchannel_logout_uri or None,
        "frontchannel_logout_uri": app.frontchannel_logout_uri or None,
        "skip_consent": app.skip_authorization,
    }


class Command(ProviderCommand):
    help = "Register, list and delete OpenID Connect applications (relying parties)."
    subcommands = {
        "create": "Register an application; prints its client ID and, for confidential types, its secret (once).",
        "list": "List applications (never their secrets).",
        "delete": "Delete an application by client ID, with its tokens and consents.",
        "regenerate-secret": "Give a confidential application a new client secret, printed once; the old one stops working.",
    }

    def add_create_arguments(self, parser):
        parser.add_argument("--name", required=True, help="Name shown on the consent page and in the console.")
        parser.add_argument("--type", required=True, dest="application_type", choices=policy.APPLICATION_TYPES,
                            help="web (backend, confidential), spa, native (public, PKCE), service (no end user).")
        parser.add_argument("--grant", action="append", dest="grants", choices=policy.GRANTS, metavar="GRANT",
                            help="A grant to turn on (repeatable); default: the type's recommended grants. "
                                 f"One of: {', '.join(policy.GRANTS)}.")
        parser.add_argument("--redirect-uri", action="append", dest="redirect_uris", default=[], metavar="URI",
                            help="A redirect URI, matched exactly (repeatable).")
        parser.add_argument("--post-logout-redirect-uri", action="append", dest="post_logout_redirect_uris",
                            default=[], metavar="URI", help="Where logout may send the user back (repeatable).")
        parser.add_argument("--allowed-origin", action="append", dest="allowed_origins", default=[], metavar="ORIGIN",
                            help="An origin (scheme://host[:port]) whose pages may call the token endpoint "
                                 "(repeatable; an SPA's or native app's default: its redirect URIs' origins).")
        parser.add_argument("--backchannel-logout-uri", default="", metavar="URI",
                            help="Where the provider POSTs a signed logout token when a user's session that signed "
                                 "into this application ends (OIDC Back-Channel Logout; https, or http on loopback).")
        parser.add_argument("--frontchannel-logout-uri", default="", metavar="URI",
                            help="Loaded in a hidden frame, with iss and sid, when such a session ends "
                                 "(OIDC Front-Channel Logout).")
        parser.add_argument("--skip-consent", action="store_true",
                            help="Do not ask users to approve this application (first-party apps only).")

    def add_delete_arguments(self, parser):
        parser.add_argument("client_id", metavar="CLIENT_ID")

    add_regenerate_secret_arguments = add_delete_arguments

    def handle_create(self, *, name, application_type, grants, redirect_uris, post_logout_redirect_uris,
                      allowed_origins, backchannel_logout_uri, frontchannel_logout_uri, skip_consent, **options):
        if not name.strip():
            raise CommandError("Application not created.\nname: Give the application a name (--name).")
        try:
            app = applications.create(
                name=name, application_type=application_type, grants=grants, redirect_uris=redirect_uris,
                post_logout_redirect_uris=post_logout_redirect_uris, allowed_origins=allowed_origins,
                backchannel_logout_uri=backchannel_logout_uri, frontchannel_logout_uri=frontchannel_logout_uri,
                skip_consent=skip_consent,
            )
        except ValidationError as e:
            raise CommandError(f"Application not created.\n{validation_error_text(e)}") from None
        # A public client has no secret: null in the JSON, not an empty string.
        data = {"client_secret": app.plaintext_secret, **describe(app)}
        self.emit(data, self._create_summary(app, data))
        # Allowed-but-not-recommended grants come with the docs' warning.
        recommended = policy.recommended_grants(app.application_type)
        for grant in app.grant_types:
            if grant not in recommended:
                self.warn(f"{grant} is allowed but not recommended for {app.application_type} applications. "
                          f"{policy.WARNINGS[grant]}")

    def _create_summary(self, app, data):
        lines = [
            self.style.SUCCESS(f"Created {app.application_type} application '{app.name}'."),
            f"  client_id:      {app.client_id}",
        ]
        if data["client_secret"]:
            lines += [
                f"  client_secret:  {data['client_secret']}",
                self.style.WARNING("  The client secret is shown only this once; store it now. "
                                   "Only a digest of it is kept."),
            ]
        else:
            lines.append("  client_secret:  none (public client: authenticates with PKCE, not a secret)")
        lines += [
            f"  grants:         {', '.join(data['grant_types']) or '(none)'}",
            f"  redirect URIs:  {' '.join(data['redirect_uris']) or '(none)'}",
        ]
        if data["post_logout_redirect_uris"]:
            lines.append(f"  post-logout:    {' '.join(data['post_logout_redirect_uris'])}")
        if app.allowed_origins:
            lines.append(f"  CORS origins:   {app.allowed_origins}")
        if app.backchannel_logout_uri:
            lines.append(f"  back-channel:   {app.backchannel_logout_uri}")
        if app.frontchannel_logout_uri:
            lines.append(f"  front-channel:  {app.frontchannel_logout_uri}")
        if app.skip_authorization:
            lines.append("  consent:        skipped")
        return "\n".join(lines)

    def handle_list(self, **options):
        apps = list(Application.objects.order_by("created", "id"))
        data = {"applications": [{**describe(a), "created": a.created.isoformat()} for a in apps]}
        if not apps:
            text = "No applications yet. Register one with: manage.py oidc_app create --name NAME --type TYPE"
        else:
            rows = [("CLIENT ID", "TYPE", "NAME", "GRANTS")]
            rows += [(a.client_id, a.application_type, a.name, ",".join(a.grant_types or [])) for a in apps]
            widths = [max(len(r[i]) for r in rows) for i in range(3)]
            text = "\n".join("  ".join(c.ljust(w) for c, w in zip(r[:3], widths)) + "  " + r[3] for r in rows)
        self.emit(data, text)

    def _application(self, client_id):
        app = Application.objects.filter(client_id=client_id).first()
        if app is None:
            raise CommandError(f"No application with client ID '{client_id}'. See: manage.py oidc_app list")
        return app

    def handle_regenerate_secret(self, *, client_id, **options):
        app = self._application(client_id)
        try:
            secret = applications.regenerate_secret(app)
        except ValueError as e:
            raise CommandError(str(e)) from None
        self.emit(
            {"client_id": client_id, "name": app.name, "client_secret": secret},
            "\n".join([
                f"New client secret of '{app.name}' ({client_id}):",
                f"  client_secret:  {secret}",
                self.style.WARNING("  It is shown only this once; store it now. The previous secret no longer works."),
            ]),
        )

    def handle_delete(self, *, client_id, **options):
        app = self._application(client_id)
        name = app.name
        applications.delete(app)
        self.emit(
            {"deleted": True, "client_id": client_id, "name": name},
            f"Deleted application '{name}' ({client_id}); its tokens and consents are gone with it.",
        )
