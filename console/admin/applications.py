"""Applications: the list, the add and change forms, the flow chooser, credentials, secrets."""

from django.contrib import admin, messages
from django.template.response import TemplateResponse
from django.urls import path
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from oauth2_provider.models import get_access_token_model, get_grant_model, get_id_token_model, get_refresh_token_model

from oidc_provider.models import Application, Consent

from .. import audit, refusals, services
from ..forms import ApplicationForm
from ..permissions import allowed
from ..views import applications as applications_views
from ..views.common import admin_context, admin_url, is_popup
from ..views.shown_once import SHOWN_ONCE_SECONDS, shown_once, shown_once_redirect, stash_client_secret
from ..views.tokens import revocation_message, revoke_application_tokens
from .site import ConsolePermissionsMixin

TOKEN_MODELS = (get_access_token_model(), get_refresh_token_model(), get_grant_model(), get_id_token_model())


def secret_waiting_message(app):
    """Messages are kept in the session: they never carry a secret, only where to see it."""
    return format_html(
        _("Client ID: {client_id} — its client secret is shown once on <a href=\"{url}\">its credentials page</a>; "
          "open it within {minutes} minutes, or regenerate the secret later."),
        client_id=app.client_id, url=admin_url("oidc_provider_application_credentials", app.pk),
        minutes=SHOWN_ONCE_SECONDS // 60,
    )


def public_message(app):
    return _("Client ID: %(client_id)s — public client: no secret, PKCE required.") % {"client_id": app.client_id}


@admin.register(Application)
class ApplicationAdmin(ConsolePermissionsMixin, admin.ModelAdmin):
    console_resource = "application"
    form = ApplicationForm
    change_form_template = "admin/oidc_provider/application/console_change_form.html"
    change_list_template = "console/admin/application_change_list.html"
    list_display = ("name", "client_id", "application_type", "grants", "skip_authorization", "created")
    list_filter = ("application_type",)
    search_fields = ("name", "client_id")
    radio_fields = {"application_type": admin.VERTICAL}
    actions = ("regenerate_secret", "revoke_all_tokens")
    ordering = ("name",)
    # DOT's get_absoluteadmin_url() names a URL this site does not serve.
    view_on_site = False

    def get_queryset(self, request):
        # An access account's application is its machinery, managed on the account's page
        # (keys, scopes, active): not listed, edited, regenerated or deleted as an application.
        return super().get_queryset(request).filter(access_account__isnull=True)

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("flow/", wrap(self.flow_view), name="oidc_provider_application_flow"),
            path("<path:object_id>/credentials/", wrap(self.credentials_view), name="oidc_provider_application_credentials"),
            path(
                "<path:object_id>/regenerate-secret/",
                wrap(self.regenerate_secret_view),
                name="oidc_provider_application_regenerate_secret",
            ),
            path("<path:object_id>/revoke-tokens/", wrap(self.revoke_tokens_view), name="oidc_provider_application_revoke_tokens"),
            *super().get_urls(),
        ]

    def flow_view(self, request):
        return applications_views.flow_chooser(request, self)

    def credentials_view(self, request, object_id):
        return applications_views.application_credentials(request, self, object_id)

    def regenerate_secret_view(self, request, object_id):
        return applications_views.regenerate_secret(request, self, object_id)

    def revoke_tokens_view(self, request, object_id):
        return revoke_application_tokens(request, self, object_id)

    def get_fieldsets(self, request, obj=None):
        identity = ["name", "description", "application_type"]
        if obj is not None:
            identity = ["name", "client_id", "client_kind", "client_secret_status", "description", "application_type"]
        fieldsets = [
            (None, {"fields": identity}),
            (_("Grants"), {"fields": ["grant_types"]}),
            (_("Redirects and origins"), {"fields": ["redirect_uris", "post_logout_redirect_uris", "allowed_origins"]}),
            (_("Logout"), {"fields": ["backchannel_logout_uri", "frontchannel_logout_uri"]}),
            (_("Consent"), {"fields": ["skip_authorization"]}),
        ]
        if obj is not None:
            fieldsets.append((_("History"), {"fields": ["created", "updated"]}))
        return fieldsets

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ()
        return ("client_id", "client_kind", "client_secret_status", "created", "updated")

    @admin.display(description=_("grants"))
    def grants(self, obj):
        return ", ".join(obj.grant_types or []) or "—"

    @admin.display(description=_("client type"))
    def client_kind(self, obj):
        if obj.is_public:
            return _("Public: no secret, PKCE required")
        return _("Confidential: authenticates with its client secret")

    @admin.display(description=_("client secret"))
    def client_secret_status(self, obj):
        if obj.is_public:
            return _("None (public client)")
        if obj.client_secret:
            return _("Set; stored only as a digest, never shown again. Use “Regenerate client secret” for a new one.")
        return _("Not set")

    def change_view(self, request, object_id, form_url="", extra_context=None):
        app = self.get_object(request, admin.utils.unquote(object_id))
        extra = dict(extra_context or {})
        if app is not None:
            access, refresh, consents = services.live_token_counts(app)
            extra.update(
                diagrams=applications_views.render_diagrams(app.application_type, app.grant_types),
                credentials_url=admin_url("oidc_provider_application_credentials", app.pk),
                regenerate_url=(
                    admin_url("oidc_provider_application_regenerate_secret", app.pk)
                    if not app.is_public and self.has_regenerate_secret_permission(request) else None
                ),
                revoke_tokens_url=(
                    admin_url("oidc_provider_application_revoke_tokens", app.pk) if self.has_revoke_tokens_permission(request) else None
                ),
                refusals=self.recent_refusals(request, app),
                refusals_url=admin_url("console_refusal_changelist", query={"application__id__exact": app.pk}),
                token_summary=[
                    (
                        _("Live access tokens"),
                        access,
                        admin_url("oauth2_provider_accesstoken_changelist", query={"application__id__exact": app.pk, "live": "yes"}),
                    ),
                    (
                        _("Live refresh tokens"),
                        refresh,
                        admin_url("oauth2_provider_refreshtoken_changelist", query={"application__id__exact": app.pk, "live": "yes"}),
                    ),
                    (
                        _("Consents"),
                        consents,
                        admin_url("oidc_provider_consent_changelist", query={"application__id__exact": app.pk}),
                    ),
                ],
            )
        return super().change_view(request, object_id, form_url, extra)

    @staticmethod
    def recent_refusals(request, app):
        """Its newest refused requests with their fixes, for who may read refusals; else None."""
        if not allowed(request.user, "refusal.view"):
            return None
        return [(refusal, refusals.explain(refusal)) for refusal in refusals.recent(app)]

    # -- changes, through the console's operations ----------------------------------------------

    def save_model(self, request, obj, form, change):
        if not change:
            services.create_application(request.user, obj)
            return
        super().save_model(request, obj, form, change)
        changed = list(form.changed_data)
        if changed or obj.plaintext_secret:
            audit.record(
                audit.APPLICATION_CHANGED,
                request=request,
                target=obj,
                fields=changed,
                application_type=obj.application_type,
                grant_types=list(obj.grant_types or []),
                secret_generated=bool(obj.plaintext_secret),
            )

    def get_deleted_objects(self, objs, request):
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        # Its tokens, codes and consents go with a deleted application (and the deletion is
        # audited); their own admins refuse deleting them by hand, which must not block this.
        goes_with_it = {str(m._meta.verbose_name) for m in (*TOKEN_MODELS, Consent)}
        return deleted, counts, {p for p in perms_needed if str(p) not in goes_with_it}, protected

    def delete_model(self, request, obj):
        services.delete_application(request.user, obj)

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            services.delete_application(request.user, obj)

    # -- the secret, shown once ------------------------------------------------------------------

    def response_add(self, request, obj, post_url_continue=None):
        if is_popup(request):
            # The popup closes itself: the secret waits, sealed, on the credentials page.
            if obj.is_public:
                self.message_user(request, public_message(obj), messages.INFO)
            elif obj.plaintext_secret:
                stash_client_secret(request, obj, obj.plaintext_secret)
                self.message_user(request, secret_waiting_message(obj), messages.WARNING)
            return shown_once(request, super().response_add(request, obj, post_url_continue))
        if obj.plaintext_secret:
            stash_client_secret(request, obj, obj.plaintext_secret)
        return shown_once_redirect(request, admin_url("oidc_provider_application_credentials", obj.pk))

    def response_change(self, request, obj):
        # A public application turned confidential gets its first secret on this save.
        if obj.plaintext_secret and not is_popup(request):
            stash_client_secret(request, obj, obj.plaintext_secret)
            self.message_user(
                request,
                _("%(name)s is now a confidential client and has a client secret, shown once below.") % {"name": obj.name},
                messages.SUCCESS,
            )
            return shown_once_redirect(request, admin_url("oidc_provider_application_credentials", obj.pk))
        return super().response_change(request, obj)

    def has_regenerate_secret_permission(self, request):
        return allowed(request.user, "application.regenerate_secret")

    def has_revoke_tokens_permission(self, request):
        return allowed(request.user, "tokens.revoke")

    @admin.action(description=_("Regenerate client secret"), permissions=["regenerate_secret"])
    def regenerate_secret(self, request, queryset):
        """The new secrets are shown in this response alone (no-store), never kept anywhere."""
        regenerated = []
        for app in queryset:
            if app.is_public:
                self.message_user(request, public_message(app), messages.INFO)
                continue
            secret = services.regenerate_client_secret(request.user, app)
            self.log_change(request, app, [{"changed": {"fields": ["client secret"]}}])
            regenerated.append(
                {"application": app, "secret": secret,
                 "credentials_url": admin_url("oidc_provider_application_credentials", app.pk)}
            )
        if not regenerated:
            return None
        context = admin_context(
            request, self,
            ngettext("New client secret", "New client secrets", len(regenerated)),
            regenerated=regenerated, list_url=admin_url("oidc_provider_application_changelist"),
        )
        response = TemplateResponse(request, "console/admin/secrets_regenerated.html", context)
        response["Cache-Control"] = "no-store"
        return response

    @admin.action(description=_("Revoke all tokens of the selected applications"), permissions=["revoke_tokens"])
    def revoke_all_tokens(self, request, queryset):
        for app in queryset:
            revoked = services.revoke_tokens(request.user, application=app, request=request)
            self.message_user(request, "%s: %s" % (app.name or app.client_id, revocation_message(revoked)), messages.SUCCESS)
