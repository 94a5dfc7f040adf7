"""The admin console (/admin/): applications, the grant policy, programmatic access accounts,
signing keys, tokens and consents, the audit log and the dashboard.

django-oauth-toolkit registers admins for its models on import; ours replace those for the
Application (types, the grant policy, hashed secrets) and for tokens, codes and ID tokens
(read-only; revocation per user and application, audited). knox's token admin is replaced by
one for superusers that shows no token. Who may use each page and action is decided by
``console.permissions``, as for the REST API. Every change made here is recorded with
``console.audit.record``; signing key rotation and retirement are recorded by the receivers
in ``console.audit``.
"""

# DOT registers its admins (for our swapped Application too) and knox its token admin on
# import; importing them first makes the replacements below independent of INSTALLED_APPS order.
import knox.admin  # noqa: F401
import oauth2_provider.admin as dot_admin
from django.contrib import admin, messages
from django.contrib.admin import RelatedOnlyFieldListFilter
from django.db.models import Case, Count, Max, Q, Value, When
from django.template.response import TemplateResponse
from django.urls import path
from django.utils import timezone
from django.utils.html import format_html
from django.utils.timesince import timesince
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from knox.models import AuthToken
from oauth2_provider.models import (
    get_access_token_model,
    get_grant_model,
    get_id_token_model,
    get_refresh_token_model,
    revoke_access_token,
)

from oidc_provider import access_keys, keys, policy
from oidc_provider.models import AccessAccount, AccessKey, Application, Consent, GrantPolicy, SigningKey

from . import audit, views
from .api_tokens import digest_prefix
from .forms import AccessAccountForm, ApplicationForm
from .models import AuditEvent
from .permissions import allowed

AccessToken = get_access_token_model()
RefreshToken = get_refresh_token_model()
Grant = get_grant_model()
IDToken = get_id_token_model()

for _model in (Application, AccessToken, RefreshToken, Grant, IDToken):
    if admin.site.is_registered(_model):
        admin.site.unregister(_model)

# The first page: counts and charts above the app list (console/templatetags/console_admin.py).
if admin.site.index_template is None:
    admin.site.index_template = "console/admin/index.html"


def _order_of(field, values):
    return Case(*(When(**{field: v}, then=Value(i)) for i, v in enumerate(values)), default=Value(len(values)))


def secret_waiting_message(app):
    """Messages are kept in the session: they never carry a secret, only where to see it."""
    return format_html(
        _("Client ID: {client_id} — its client secret is shown once on <a href=\"{url}\">its credentials page</a>; "
          "open it within {minutes} minutes, or regenerate the secret later."),
        client_id=app.client_id, url=_url("oidc_provider_application_credentials", app.pk),
        minutes=views.SHOWN_ONCE_SECONDS // 60,
    )


def public_message(app):
    return _("Client ID: %(client_id)s — public client: no secret, PKCE required.") % {"client_id": app.client_id}


def _url(name, *args, query=None):
    return views.admin_url(name, *args, query=query)


class ConsolePermissionsMixin:
    """The admin's view/add/change/delete rights from the console's one table of permissions,
    the same the REST API checks; an operation the table has no rule for is refused."""

    console_resource = None

    def _may(self, request, operation):
        return allowed(request.user, f"{self.console_resource}.{operation}")

    def has_view_permission(self, request, obj=None):
        return self._may(request, "view")

    def has_add_permission(self, request):
        return self._may(request, "add")

    def has_change_permission(self, request, obj=None):
        return self._may(request, "change")

    def has_delete_permission(self, request, obj=None):
        return self._may(request, "delete")


# -- applications ---------------------------------------------------------------------------


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
    # DOT's get_absolute_url() names a URL this site does not serve.
    view_on_site = False

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
        return views.flow_chooser(request, self)

    def credentials_view(self, request, object_id):
        return views.application_credentials(request, self, object_id)

    def regenerate_secret_view(self, request, object_id):
        return views.regenerate_secret(request, self, object_id)

    def revoke_tokens_view(self, request, object_id):
        return views.revoke_application_tokens(request, self, object_id)

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
            return _("Set; stored only as a digest, never shown again. Use “Regenerate client secret” for a new one.")
        return _("Not set")

    def change_view(self, request, object_id, form_url="", extra_context=None):
        app = self.get_object(request, admin.utils.unquote(object_id))
        extra = dict(extra_context or {})
        if app is not None:
            now = timezone.now()
            extra.update(
                diagrams=views.render_diagrams(app.application_type, app.grant_types),
                credentials_url=_url("oidc_provider_application_credentials", app.pk),
                regenerate_url=(
                    _url("oidc_provider_application_regenerate_secret", app.pk)
                    if not app.is_public and self.has_regenerate_secret_permission(request) else None
                ),
                revoke_tokens_url=(
                    _url("oidc_provider_application_revoke_tokens", app.pk) if self.has_revoke_tokens_permission(request) else None
                ),
                token_summary=[
                    (
                        _("Live access tokens"),
                        AccessToken.objects.filter(application=app, expires__gt=now).count(),
                        _url("oauth2_provider_accesstoken_changelist", query={"application__id__exact": app.pk, "live": "yes"}),
                    ),
                    (
                        _("Live refresh tokens"),
                        RefreshToken.objects.filter(application=app, revoked__isnull=True).count(),
                        _url("oauth2_provider_refreshtoken_changelist", query={"application__id__exact": app.pk, "live": "yes"}),
                    ),
                    (
                        _("Consents"),
                        Consent.objects.filter(application=app).count(),
                        _url("oidc_provider_consent_changelist", query={"application__id__exact": app.pk}),
                    ),
                ],
            )
        return super().change_view(request, object_id, form_url, extra)

    # -- audit ------------------------------------------------------------------------------

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if change:
            changed = list(form.changed_data)
            if changed or obj.plaintext_secret:
                audit.record(
                    audit.APPLICATION_CHANGED,
                    request=request,
                    target=obj,
                    fields=changed,
                    application_type=obj.application_type,
                    grant_types=list(obj.grant_types or []),
                )
            if obj.plaintext_secret:
                audit.record(audit.APPLICATION_SECRET_REGENERATED, request=request, target=obj, reason="became confidential")
        else:
            audit.record(
                audit.APPLICATION_CREATED,
                request=request,
                target=obj,
                application_type=obj.application_type,
                grant_types=list(obj.grant_types or []),
                via="add_form",
            )

    def get_deleted_objects(self, objs, request):
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        # Its tokens, codes and consents go with a deleted application (and the deletion is
        # audited); their own admins refuse deleting them by hand, which must not block this.
        goes_with_it = {str(m._meta.verbose_name) for m in (AccessToken, RefreshToken, Grant, IDToken, Consent)}
        return deleted, counts, {p for p in perms_needed if str(p) not in goes_with_it}, protected

    def delete_model(self, request, obj):
        audit.record(audit.APPLICATION_DELETED, request=request, target=obj, client_id=obj.client_id)
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            audit.record(audit.APPLICATION_DELETED, request=request, target=obj, client_id=obj.client_id)
        super().delete_queryset(request, queryset)

    # -- the secret, shown once ------------------------------------------------------------------

    def response_add(self, request, obj, post_url_continue=None):
        if views.is_popup(request):
            # The popup closes itself: the secret waits, sealed, on the credentials page.
            if obj.is_public:
                self.message_user(request, public_message(obj), messages.INFO)
            elif obj.plaintext_secret:
                views.stash_client_secret(request, obj, obj.plaintext_secret)
                self.message_user(request, secret_waiting_message(obj), messages.WARNING)
            return views.shown_once(request, super().response_add(request, obj, post_url_continue))
        if obj.plaintext_secret:
            views.stash_client_secret(request, obj, obj.plaintext_secret)
        return views.shown_once_redirect(request, _url("oidc_provider_application_credentials", obj.pk))

    def response_change(self, request, obj):
        # A public application turned confidential gets its first secret on this save.
        if obj.plaintext_secret and not views.is_popup(request):
            views.stash_client_secret(request, obj, obj.plaintext_secret)
            self.message_user(
                request,
                _("%(name)s is now a confidential client and has a client secret, shown once below.") % {"name": obj.name},
                messages.SUCCESS,
            )
            return views.shown_once_redirect(request, _url("oidc_provider_application_credentials", obj.pk))
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
            app.set_new_secret()
            app.save()
            self.log_change(request, app, [{"changed": {"fields": ["client secret"]}}])
            audit.record(audit.APPLICATION_SECRET_REGENERATED, request=request, target=app)
            regenerated.append(
                {"application": app, "secret": app.plaintext_secret,
                 "credentials_url": _url("oidc_provider_application_credentials", app.pk)}
            )
        if not regenerated:
            return None
        context = views.admin_context(
            request, self,
            ngettext("New client secret", "New client secrets", len(regenerated)),
            regenerated=regenerated, list_url=_url("oidc_provider_application_changelist"),
        )
        response = TemplateResponse(request, "console/admin/secrets_regenerated.html", context)
        response["Cache-Control"] = "no-store"
        return response

    @admin.action(description=_("Revoke all tokens of the selected applications"), permissions=["revoke_tokens"])
    def revoke_all_tokens(self, request, queryset):
        for app in queryset:
            counts = views.revoke_all_tokens(application=app)
            audit.record(
                audit.TOKENS_REVOKED,
                request=request,
                target=app,
                scope="application",
                access_tokens=counts[0],
                refresh_tokens=counts[1],
                codes=counts[2],
            )
            self.message_user(request, "%s: %s" % (app.name or app.client_id, views.revocation_message(*counts)), messages.SUCCESS)


# -- the grant policy ---------------------------------------------------------------------------


@admin.register(GrantPolicy)
class GrantPolicyAdmin(ConsolePermissionsMixin, admin.ModelAdmin):
    console_resource = "policy"
    change_list_template = "console/admin/grantpolicy_change_list.html"
    list_display = ("application_type", "grant", "state", "updated_at")
    list_editable = ("state",)
    list_filter = ("application_type", "grant")
    fields = ("application_type", "grant", "state", "updated_at")
    readonly_fields = ("application_type", "grant", "updated_at")
    list_per_page = 100

    def get_urls(self):
        return [
            path("matrix/", self.admin_site.admin_view(self.matrix_view), name="oidc_provider_grantpolicy_matrix"),
            *super().get_urls(),
        ]

    def matrix_view(self, request):
        return views.policy_matrix(request, self)

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
        previous = form.initial.get("state")
        super().save_model(request, obj, form, change)
        if previous != obj.state:
            audit.record(
                audit.POLICY_CHANGED,
                request=request,
                target=obj,
                application_type=obj.application_type,
                grant=obj.grant,
                state=obj.state,
                previous=previous,
            )
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


# -- signing keys -------------------------------------------------------------------------------


@admin.register(SigningKey)
class SigningKeyAdmin(ConsolePermissionsMixin, admin.ModelAdmin):
    # Nothing to edit on a key (no "change" rule): it is rotated or retired, with the actions.
    console_resource = "signing_key"
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

    def has_rotate_permission(self, request):
        return allowed(request.user, "signing_key.rotate")

    def has_retire_permission(self, request):
        return allowed(request.user, "signing_key.retire")

    @admin.action(description=_("Rotate signing keys (whatever is selected)"), permissions=["rotate"])
    def rotate_keys(self, request, queryset):
        previous = list(SigningKey.objects.filter(status=SigningKey.ACTIVE).values_list("kid", flat=True))
        new = keys.rotate(actor=request.user)
        text = _("Key %(kid)s now signs new tokens.") % {"kid": new.kid}
        if previous:
            text += " " + _(
                "The previous key (%(kids)s) stays published as inactive, so tokens it signed keep verifying, "
                "until you retire it."
            ) % {"kids": ", ".join(previous)}
        upcoming = SigningKey.objects.filter(status=SigningKey.NEXT).values_list("kid", flat=True)
        if upcoming:
            text += " " + _("Key %(kid)s is announced in the JWKS as the next one; it signs after the next rotation.") % {
                "kid": ", ".join(upcoming)
            }
        self.message_user(request, text, messages.SUCCESS)

    @admin.action(description=_("Retire selected keys"), permissions=["retire"])
    def retire_keys(self, request, queryset):
        retired = []
        for key in queryset:
            if key.status == SigningKey.RETIRED:
                continue
            try:
                keys.retire(key, actor=request.user)
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


# -- programmatic access accounts and their key pairs ---------------------------------------------


class KeyStatusFilter(admin.SimpleListFilter):
    title = _("status")
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return (("active", _("Active")), ("revoked", _("Revoked")))

    def queryset(self, request, queryset):
        if self.value() == "active":
            return queryset.filter(revoked_at__isnull=True)
        if self.value() == "revoked":
            return queryset.filter(revoked_at__isnull=False)
        return queryset


def key_status(key):
    if key.revoked_at is not None:
        return _("Revoked")
    if not key.account.is_active:
        return _("Inactive account")
    return _("Active")


class AccessKeyInline(admin.TabularInline):
    model = AccessKey
    verbose_name = _("key pair")
    verbose_name_plural = _("key pairs (AK/SK)")
    fields = ("access_key", "created_at", "last_used_at", "revoked_at", "status", "key_actions")
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def get_fields(self, request, obj=None):
        # Links to actions the user may not take would only lead to a 403.
        fields = super().get_fields(request, obj)
        if allowed(request.user, "access_key.rotate") and allowed(request.user, "access_key.revoke"):
            return fields
        return [field for field in fields if field != "key_actions"]

    @admin.display(description=_("status"))
    def status(self, obj):
        return key_status(obj)

    @admin.display(description=_("actions"))
    def key_actions(self, obj):
        if obj.pk is None or obj.revoked_at is not None:
            return "—"
        return format_html(
            '<a href="{}">{}</a> · <a href="{}">{}</a>',
            _url("oidc_provider_accesskey_rotate", obj.pk),
            _("Rotate"),
            _url("oidc_provider_accesskey_revoke", obj.pk),
            _("Revoke"),
        )


@admin.register(AccessAccount)
class AccessAccountAdmin(ConsolePermissionsMixin, admin.ModelAdmin):
    console_resource = "access_account"
    form = AccessAccountForm
    change_form_template = "console/admin/accessaccount_change_form.html"
    list_display = ("name", "is_active", "permissions", "active_pairs", "last_used", "created_at")
    list_filter = ("is_active",)
    search_fields = ("name", "description", "keys__access_key")
    inlines = (AccessKeyInline,)
    actions = ("issue_key_pairs",)

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                _active_pairs=Count("keys", filter=Q(keys__revoked_at__isnull=True), distinct=True),
                _last_used=Max("keys__last_used_at"),
            )
        )

    def get_fieldsets(self, request, obj=None):
        fields = ["name", "description", "scopes", "is_active"]
        if obj is None and self.has_issue_key_permission(request):
            fields.append("issue_key")
        fieldsets = [(None, {"fields": fields})]
        if obj is not None:
            fieldsets.append((_("Details"), {"fields": ["token_application", "created_at"]}))
        return fieldsets

    def get_readonly_fields(self, request, obj=None):
        return ("token_application", "created_at") if obj is not None else ()

    def get_urls(self):
        return [
            path(
                "<path:object_id>/issue-key/",
                self.admin_site.admin_view(self.issue_key_view),
                name="oidc_provider_accessaccount_issue_key",
            ),
            *super().get_urls(),
        ]

    def issue_key_view(self, request, object_id):
        return views.issue_access_key(request, self, object_id)

    def has_delete_permission(self, request, obj=None):
        # Revoke its pairs or make it inactive: the account keeps the history of its keys.
        return False

    @admin.display(description=_("resource permissions"))
    def permissions(self, obj):
        return " ".join(obj.scopes or []) or "—"

    @admin.display(description=_("active key pairs"), ordering="_active_pairs")
    def active_pairs(self, obj):
        return obj._active_pairs

    @admin.display(description=_("last used"), ordering="_last_used")
    def last_used(self, obj):
        last = getattr(obj, "_last_used", None)
        return _("%(time)s ago") % {"time": timesince(last, timezone.now())} if last else _("never")

    @admin.display(description=_("tokens issued to"))
    def token_application(self, obj):
        return format_html(
            '<a href="{}">{}</a> — {}',
            _url("oidc_provider_application_change", obj.application_id),
            obj.application.name,
            _("each AK is sent as client_id, its SK as client_secret, with grant_type=client_credentials."),
        )

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if change:
            if form.changed_data:
                audit.record(
                    audit.ACCESS_ACCOUNT_CHANGED,
                    request=request,
                    target=obj,
                    fields=list(form.changed_data),
                    scopes=list(obj.scopes or []),
                    is_active=obj.is_active,
                )
            return
        audit.record(audit.ACCESS_ACCOUNT_CREATED, request=request, target=obj, scopes=list(obj.scopes or []), is_active=obj.is_active)
        if form.cleaned_data.get("issue_key") and self.has_issue_key_permission(request):
            key, sk = access_keys.issue(obj)
            audit.record(audit.ACCESS_KEY_ISSUED, request=request, target=key, target_label=key.access_key, account=obj.name)
            views.stash_access_keys(request, [(key, sk)])
            request._console_keys_issued = True

    def response_add(self, request, obj, post_url_continue=None):
        if getattr(request, "_console_keys_issued", False) and not views.is_popup(request):
            self.message_user(request, _("Account %(name)s created.") % {"name": obj.name}, messages.SUCCESS)
            return views.shown_once_redirect(request, _url("oidc_provider_accesskey_issued"))
        return views.shown_once(request, super().response_add(request, obj, post_url_continue))

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra = dict(extra_context or {})
        if self.has_issue_key_permission(request):
            extra["issue_key_url"] = _url("oidc_provider_accessaccount_issue_key", object_id)
        return super().change_view(request, object_id, form_url, extra)

    def has_issue_key_permission(self, request):
        return allowed(request.user, "access_key.issue")

    @admin.action(description=_("Issue a new key pair for each selected account"), permissions=["issue_key"])
    def issue_key_pairs(self, request, queryset):
        pairs = []
        for account in queryset:
            key, sk = access_keys.issue(account)
            audit.record(audit.ACCESS_KEY_ISSUED, request=request, target=key, target_label=key.access_key, account=account.name)
            self.log_change(request, account, [{"added": {"name": "access key", "object": key.access_key}}])
            pairs.append((key, sk))
        views.stash_access_keys(request, pairs)
        return views.shown_once_redirect(request, _url("oidc_provider_accesskey_issued"))


class IssuedByTheProviderMixin:
    """Key pairs, tokens and codes are made by the provider and ended by its audited actions
    (revoke, rotate): nobody adds, edits or deletes them here (a hand-made one would be a key
    to an account, and a deleted one would leave no trace of its revocation)."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(AccessKey)
class AccessKeyAdmin(IssuedByTheProviderMixin, ConsolePermissionsMixin, admin.ModelAdmin):
    console_resource = "access_key"
    list_display = ("access_key", "account", "status", "created_at", "last_used_at", "revoked_at")
    list_filter = (KeyStatusFilter, ("account", RelatedOnlyFieldListFilter))
    list_select_related = ("account",)
    search_fields = ("access_key", "account__name")
    fields = ("access_key", "account", "status", "created_at", "last_used_at", "revoked_at")
    readonly_fields = fields
    actions = ("revoke_pairs", "rotate_pairs")

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("issued/", wrap(self.issued_view), name="oidc_provider_accesskey_issued"),
            path("<path:object_id>/revoke/", wrap(self.revoke_view), name="oidc_provider_accesskey_revoke"),
            path("<path:object_id>/rotate/", wrap(self.rotate_view), name="oidc_provider_accesskey_rotate"),
            *super().get_urls(),
        ]

    def issued_view(self, request):
        return views.access_keys_issued(request, self)

    def revoke_view(self, request, object_id):
        return views.access_key_action(request, self, object_id, "revoke")

    def rotate_view(self, request, object_id):
        return views.access_key_action(request, self, object_id, "rotate")

    def has_revoke_permission(self, request):
        return allowed(request.user, "access_key.revoke")

    def has_rotate_permission(self, request):
        return allowed(request.user, "access_key.rotate")

    @admin.display(description=_("status"))
    def status(self, obj):
        return key_status(obj)

    @admin.action(description=_("Revoke selected key pairs"), permissions=["revoke"])
    def revoke_pairs(self, request, queryset):
        revoked = []
        for key in queryset.select_related("account").filter(revoked_at__isnull=True):
            access_keys.revoke(key)
            audit.record(audit.ACCESS_KEY_REVOKED, request=request, target=key, target_label=key.access_key, account=key.account.name)
            revoked.append(key.access_key)
        if revoked:
            self.message_user(
                request,
                ngettext("Revoked %(count)d key pair: %(aks)s.", "Revoked %(count)d key pairs: %(aks)s.", len(revoked))
                % {"count": len(revoked), "aks": ", ".join(revoked)},
                messages.SUCCESS,
            )
        else:
            self.message_user(request, _("The selected pairs were already revoked."), messages.INFO)

    @admin.action(description=_("Rotate selected key pairs (new SK shown once)"), permissions=["rotate"])
    def rotate_pairs(self, request, queryset):
        pairs = []
        for key in queryset.select_related("account").filter(revoked_at__isnull=True):
            pairs.append(audit.rotate_access_key(key, request))
        if not pairs:
            self.message_user(request, _("Only active pairs can be rotated; the selected ones are revoked."), messages.INFO)
            return None
        views.stash_access_keys(request, pairs)
        return views.shown_once_redirect(request, _url("oidc_provider_accesskey_issued"))


# -- tokens and consents --------------------------------------------------------------------------


class LiveAccessTokenFilter(admin.SimpleListFilter):
    title = _("state")
    parameter_name = "live"

    def lookups(self, request, model_admin):
        return (("yes", _("Live")), ("no", _("Expired")))

    def queryset(self, request, queryset):
        now = timezone.now()
        if self.value() == "yes":
            return queryset.filter(expires__gt=now)
        if self.value() == "no":
            return queryset.filter(expires__lte=now)
        return queryset


class LiveRefreshTokenFilter(admin.SimpleListFilter):
    title = _("state")
    parameter_name = "live"

    def lookups(self, request, model_admin):
        return (("yes", _("Live")), ("no", _("Revoked")))

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(revoked__isnull=True)
        if self.value() == "no":
            return queryset.filter(revoked__isnull=False)
        return queryset


class RevokeAllMixin:
    """Actions that revoke everything of the selected rows' users or applications."""

    def has_revoke_tokens_permission(self, request):
        return allowed(request.user, "tokens.revoke")

    def _revoke_all(self, request, queryset, by):
        targets = {getattr(row, by) for row in queryset.select_related(by) if getattr(row, by) is not None}
        total = [0, 0, 0]
        for target in targets:
            counts = views.revoke_all_tokens(**{by: target})
            total = [a + b for a, b in zip(total, counts)]
            audit.record(
                audit.TOKENS_REVOKED,
                request=request,
                target=target,
                scope=by,
                access_tokens=counts[0],
                refresh_tokens=counts[1],
                codes=counts[2],
            )
        self.message_user(request, views.revocation_message(*total), messages.SUCCESS)

    @admin.action(description=_("Revoke all tokens of the selected rows' users"), permissions=["revoke_tokens"])
    def revoke_all_of_users(self, request, queryset):
        self._revoke_all(request, queryset, "user")

    @admin.action(description=_("Revoke all tokens of the selected rows' applications"), permissions=["revoke_tokens"])
    def revoke_all_of_applications(self, request, queryset):
        self._revoke_all(request, queryset, "application")


class AccessTokenAdmin(IssuedByTheProviderMixin, RevokeAllMixin, dot_admin.AccessTokenAdmin):
    list_display = ("masked_token", "user", "application", "scope", "created", "expires", "is_live")
    list_filter = (
        LiveAccessTokenFilter,
        ("application", RelatedOnlyFieldListFilter),
        ("user", RelatedOnlyFieldListFilter),
    )
    actions = ("revoke_tokens", "revoke_all_of_users", "revoke_all_of_applications")
    date_hierarchy = "created"

    @admin.display(description=_("live"), boolean=True)
    def is_live(self, obj):
        return not obj.is_expired()

    @admin.display(description=_("token"))
    def masked_token(self, obj):
        # The token itself is not stored, only its digest: the digest's tail names the row.
        return dot_admin.mask_credential(obj.token_checksum) if obj is not None else ""

    @admin.action(description=_("Revoke selected access tokens"), permissions=["revoke_tokens"])
    def revoke_tokens(self, request, queryset):
        rows = list(queryset.select_related("user", "application"))
        for token in rows:
            revoke_access_token(token)
        if rows:
            audit.record(
                audit.TOKENS_REVOKED,
                request=request,
                target_label=ngettext("%d access token", "%d access tokens", len(rows)) % len(rows),
                scope="selected",
                access_token_ids=[t.pk for t in rows],
                users=sorted({t.user.get_username() for t in rows if t.user}),
                applications=sorted({t.application.client_id for t in rows if t.application}),
            )
        self.message_user(
            request, ngettext("Revoked %d access token.", "Revoked %d access tokens.", len(rows)) % len(rows), messages.SUCCESS
        )


class RefreshTokenAdmin(IssuedByTheProviderMixin, RevokeAllMixin, dot_admin.RefreshTokenAdmin):
    list_display = ("masked_token", "user", "application", "created", "revoked", "is_live")
    list_filter = (
        LiveRefreshTokenFilter,
        ("application", RelatedOnlyFieldListFilter),
        ("user", RelatedOnlyFieldListFilter),
    )
    actions = ("revoke_tokens", "revoke_all_of_users", "revoke_all_of_applications")
    date_hierarchy = "created"

    @admin.display(description=_("live"), boolean=True)
    def is_live(self, obj):
        return obj.revoked is None

    @admin.display(description=_("token"))
    def masked_token(self, obj):
        # The token itself is not stored, only its digest: the digest's tail names the row.
        return dot_admin.mask_credential(obj.token_checksum) if obj is not None else ""

    @admin.action(description=_("Revoke selected refresh tokens"), permissions=["revoke_tokens"])
    def revoke_tokens(self, request, queryset):
        rows = list(queryset.select_related("user", "application").filter(revoked__isnull=True))
        for token in rows:
            token.revoke()
        if rows:
            audit.record(
                audit.TOKENS_REVOKED,
                request=request,
                target_label=ngettext("%d refresh token", "%d refresh tokens", len(rows)) % len(rows),
                scope="selected",
                refresh_token_ids=[t.pk for t in rows],
                users=sorted({t.user.get_username() for t in rows if t.user}),
                applications=sorted({t.application.client_id for t in rows if t.application}),
            )
        self.message_user(
            request, ngettext("Revoked %d refresh token.", "Revoked %d refresh tokens.", len(rows)) % len(rows), messages.SUCCESS
        )


class GrantAdmin(IssuedByTheProviderMixin, dot_admin.GrantAdmin):
    pass


class IDTokenAdmin(IssuedByTheProviderMixin, dot_admin.IDTokenAdmin):
    pass


admin.site.register(AccessToken, AccessTokenAdmin)
admin.site.register(RefreshToken, RefreshTokenAdmin)
admin.site.register(Grant, GrantAdmin)
admin.site.register(IDToken, IDTokenAdmin)


@admin.register(Consent)
class ConsentAdmin(admin.ModelAdmin):
    list_display = ("user", "application", "scope", "created_at", "updated_at")
    list_filter = (("application", RelatedOnlyFieldListFilter), ("user", RelatedOnlyFieldListFilter))
    list_select_related = ("user", "application")
    search_fields = ("user__username", "user__email", "application__name", "application__client_id")
    fields = ("user", "application", "scope", "created_at", "updated_at")
    readonly_fields = fields
    actions = ("revoke_consents",)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        # Revoke with the action: it revokes the consent's tokens too, and is audited.
        return False

    def has_revoke_permission(self, request):
        return allowed(request.user, "tokens.revoke")

    @admin.action(description=_("Revoke selected consents and their tokens"), permissions=["revoke"])
    def revoke_consents(self, request, queryset):
        total = [0, 0, 0]
        rows = list(queryset.select_related("user", "application"))
        for consent in rows:
            counts = views.revoke_all_tokens(user=consent.user, application=consent.application)
            total = [a + b for a, b in zip(total, counts)]
            audit.record(
                audit.CONSENT_REVOKED,
                request=request,
                target=consent.application,
                target_label=f"{consent.user.get_username()} → {consent.application.name or consent.application.client_id}",
                user=consent.user.get_username(),
                scope=consent.scope,
                access_tokens=counts[0],
                refresh_tokens=counts[1],
            )
            consent.delete()
        self.message_user(
            request,
            ngettext(
                "Revoked %(count)d consent; the user will be asked again. %(tokens)s",
                "Revoked %(count)d consents; the users will be asked again. %(tokens)s",
                len(rows),
            )
            % {"count": len(rows), "tokens": views.revocation_message(*total)},
            messages.SUCCESS,
        )


# -- the audit log --------------------------------------------------------------------------------


@admin.register(AuditEvent)
class AuditEventAdmin(ConsolePermissionsMixin, admin.ModelAdmin):
    console_resource = "audit"
    change_list_template = "console/admin/auditevent_change_list.html"
    list_display = ("occurred_at", "actor_label", "action", "target_label", "ip_address")
    list_filter = ("action", "occurred_at")
    date_hierarchy = "occurred_at"
    search_fields = ("actor_label", "target_label")
    fields = ("occurred_at", "actor_label", "actor", "action", "target_type", "target_id", "target_label", "ip_address", "details_json")
    readonly_fields = fields
    actions = ("export_csv",)
    list_per_page = 100

    def get_urls(self):
        return [
            path("export/", self.admin_site.admin_view(self.export_view), name="console_auditevent_export"),
            *super().get_urls(),
        ]

    def export_view(self, request):
        return views.audit_export(request, self)

    # Append-only: nobody adds, edits or deletes events here.
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description=_("details"))
    def details_json(self, obj):
        import json

        if not obj.details:
            return "—"
        return format_html("<pre>{}</pre>", json.dumps(obj.details, indent=2, sort_keys=True, ensure_ascii=False, default=str))

    @admin.action(description=_("Export selected events as CSV"), permissions=["view"])
    def export_csv(self, request, queryset):
        return views.audit_csv_response(queryset.order_by("-occurred_at", "-id"))


# -- console API tokens (django-rest-knox) ------------------------------------------------------

if admin.site.is_registered(AuthToken):
    admin.site.unregister(AuthToken)


@admin.register(AuthToken)
class APITokenAdmin(admin.ModelAdmin):
    """Every user's console API tokens, for superusers only: whose, since and until when, the
    start of the digest; never the token. A staff user manages their own at /console/tokens/."""

    list_display = ("short_digest", "user", "created", "expiry")
    list_select_related = ("user",)
    fields = ("short_digest", "user", "created", "expiry")
    readonly_fields = fields
    search_fields = ("user__username",)
    ordering = ("-created",)

    def _superuser(self, request):
        return request.user.is_active and request.user.is_superuser

    def has_module_permission(self, request):
        return self._superuser(request)

    def has_view_permission(self, request, obj=None):
        return self._superuser(request)

    def has_add_permission(self, request):
        # A token is made by its owner (the tokens page or console_token), never typed in here.
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return self._superuser(request)

    @admin.display(description=_("digest (start)"))
    def short_digest(self, obj):
        return f"{digest_prefix(obj)}…"

    def _record_revoked(self, request, obj):
        audit.record(
            audit.API_TOKEN_REVOKED, request=request, target=obj.user, target_label=obj.user.get_username(),
            digest_prefix=digest_prefix(obj),
        )

    def delete_model(self, request, obj):
        self._record_revoked(request, obj)
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        for obj in queryset.select_related("user"):
            self._record_revoked(request, obj)
        super().delete_queryset(request, queryset)
