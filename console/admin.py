"""The admin console: applications, the grant policy and signing keys in /admin/.

django-oauth-toolkit's own admin stays for tokens, codes and ID tokens; its Application
admin is replaced by ours, which knows application types, the grant policy and hashed
secrets.
"""

# DOT registers its admin for our swapped Application on import; importing it first makes
# the replacement below independent of INSTALLED_APPS order.
import oauth2_provider.admin  # noqa: F401
from django.contrib import admin, messages
from django.db.models import Case, Value, When
from django.utils import timezone
from django.utils.timesince import timesince
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from oidc_provider import keys, policy
from oidc_provider.models import Application, GrantPolicy, SigningKey

from .forms import ApplicationForm

if admin.site.is_registered(Application):
    admin.site.unregister(Application)


def _order_of(field, values):
    return Case(*(When(**{field: v}, then=Value(i)) for i, v in enumerate(values)), default=Value(len(values)))


def secret_message(app):
    """The one message that carries a client's secret in clear."""
    return _(
        "Client ID: %(client_id)s — client secret: %(secret)s — copy the secret now: it is stored "
        "only as a digest and will not be shown again."
    ) % {"client_id": app.client_id, "secret": app.plaintext_secret}


def public_message(app):
    return _("Client ID: %(client_id)s — public client: no secret, PKCE required.") % {"client_id": app.client_id}


@admin.register(Application)
class ApplicationAdmin(admin.ModelAdmin):
    form = ApplicationForm
    change_form_template = "admin/oidc_provider/application/console_change_form.html"
    list_display = ("name", "client_id", "application_type", "grants", "skip_authorization", "created")
    list_filter = ("application_type",)
    search_fields = ("name", "client_id")
    radio_fields = {"application_type": admin.VERTICAL}
    actions = ("regenerate_secret",)
    ordering = ("name",)
    # DOT's get_absolute_url() names a URL this site does not serve.
    view_on_site = False

    def get_fieldsets(self, request, obj=None):
        identity = ["name", "description", "application_type"]
        if obj is not None:
            identity = ["name", "client_id", "client_kind", "client_secret_status", "description", "application_type"]
        fieldsets = [
            (None, {"fields": identity}),
            (_("Grants"), {"fields": ["grant_types"]}),
            (_("Redirects and origins"), {"fields": ["redirect_uris", "post_logout_redirect_uris", "allowed_origins"]}),
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
            return _("Set; stored only as a digest. Use the “Regenerate client secret” action for a new one.")
        return _("Not set")

    # -- the secret, shown once ------------------------------------------------------

    def _announce_secret(self, request, obj):
        if obj.is_public:
            self.message_user(request, public_message(obj), messages.INFO)
        elif obj.plaintext_secret:
            self.message_user(request, secret_message(obj), messages.WARNING)

    def response_add(self, request, obj, post_url_continue=None):
        self._announce_secret(request, obj)
        return super().response_add(request, obj, post_url_continue)

    def response_change(self, request, obj):
        # A public application turned confidential gets its first secret on this save.
        if obj.plaintext_secret:
            self._announce_secret(request, obj)
        return super().response_change(request, obj)

    @admin.action(description=_("Regenerate client secret"), permissions=["change"])
    def regenerate_secret(self, request, queryset):
        for app in queryset:
            if app.is_public:
                self.message_user(request, public_message(app), messages.INFO)
                continue
            app.set_new_secret()
            app.save()
            self.log_change(request, app, [{"changed": {"fields": ["client secret"]}}])
            self.message_user(request, secret_message(app), messages.WARNING)


@admin.register(GrantPolicy)
class GrantPolicyAdmin(admin.ModelAdmin):
    list_display = ("application_type", "grant", "state", "updated_at")
    list_editable = ("state",)
    list_filter = ("application_type", "grant")
    fields = ("application_type", "grant", "state", "updated_at")
    readonly_fields = ("application_type", "grant", "updated_at")
    list_per_page = 100

    def get_ordering(self, request):
        # The order of the docs' table (grants down, types across), not the alphabet's.
        return (
            _order_of("grant", policy.GRANTS).asc(),
            _order_of("application_type", policy.APPLICATION_TYPES).asc(),
        )

    def has_add_permission(self, request):
        # One row per (type, grant), seeded by migration; there is nothing to add.
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if obj.state != policy.FORBIDDEN:
            return
        holders = [
            app.name or app.client_id
            for app in Application.objects.filter(application_type=obj.application_type).only(
                "name", "client_id", "grant_types"
            )
            if obj.grant in (app.grant_types or [])
        ]
        if holders:
            self.message_user(
                request,
                _(
                    "%(grant)s is now forbidden for %(type)s applications; these applications hold it and "
                    "can no longer use it: %(apps)s."
                )
                % {"grant": obj.grant, "type": obj.application_type, "apps": ", ".join(sorted(holders))},
                messages.WARNING,
            )


@admin.register(SigningKey)
class SigningKeyAdmin(admin.ModelAdmin):
    list_display = ("kid", "status", "algorithm", "created_at", "activated_at", "retired_at", "age")
    list_filter = ("status",)
    search_fields = ("kid",)
    # The private key is never shown, on any page.
    exclude = ("private_key",)
    fields = ("kid", "status", "algorithm", "created_at", "activated_at", "retired_at", "age")
    readonly_fields = fields
    actions = ("rotate_keys", "retire_keys")

    def has_add_permission(self, request):
        # Keys are made by rotation, never typed in.
        return False

    def has_delete_permission(self, request, obj=None):
        # Deleting a published key breaks verification of the tokens it signed: retire instead.
        return False

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "show_save": False,
            "show_save_and_continue": False,
            "show_save_and_add_another": False,
        }
        return super().change_view(request, object_id, form_url, extra_context)

    @admin.display(description=_("age"))
    def age(self, obj):
        return timesince(obj.created_at, timezone.now()) if obj.created_at else "—"

    @admin.action(description=_("Rotate signing keys (whatever is selected)"), permissions=["change"])
    def rotate_keys(self, request, queryset):
        previous = list(SigningKey.objects.filter(status=SigningKey.ACTIVE).values_list("kid", flat=True))
        new = keys.rotate()
        text = _("Key %(kid)s now signs new tokens.") % {"kid": new.kid}
        if previous:
            text += " " + _(
                "The previous key (%(kids)s) stays published as inactive, so tokens it signed keep verifying, "
                "until you retire it."
            ) % {"kids": ", ".join(previous)}
        self.message_user(request, text, messages.SUCCESS)

    @admin.action(description=_("Retire selected keys"), permissions=["change"])
    def retire_keys(self, request, queryset):
        retired = []
        for key in queryset:
            if key.status == SigningKey.RETIRED:
                continue
            try:
                keys.retire(key)
            except ValueError:
                self.message_user(
                    request,
                    _("Key %(kid)s is the active key and cannot be retired; rotate first so another key signs new tokens.")
                    % {"kid": key.kid},
                    messages.ERROR,
                )
                continue
            retired.append(key.kid)
        if retired:
            self.message_user(
                request,
                ngettext(
                    "Retired %(count)d key (%(kids)s); it is no longer published.",
                    "Retired %(count)d keys (%(kids)s); they are no longer published.",
                    len(retired),
                )
                % {"count": len(retired), "kids": ", ".join(retired)},
                messages.SUCCESS,
            )
