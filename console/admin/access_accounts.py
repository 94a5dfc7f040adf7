"""Programmatic access: accounts and their AK/SK pairs, issued, revoked and rotated here."""

from django.contrib import admin, messages
from django.contrib.admin import RelatedOnlyFieldListFilter
from django.db.models import Count, Max, Q
from django.urls import path
from django.utils import timezone
from django.utils.html import format_html
from django.utils.timesince import timesince
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from oidc_provider.models import AccessAccount, AccessKey

from .. import audit, services
from ..forms import AccessAccountForm
from ..permissions import allowed
from ..views import access_keys as access_keys_views
from ..views.common import admin_url, is_popup
from ..views.shown_once import shown_once, shown_once_redirect, stash_access_keys
from .site import ConsolePermissionsMixin, IssuedByTheProviderMixin


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
            admin_url("oidc_provider_accesskey_rotate", obj.pk),
            _("Rotate"),
            admin_url("oidc_provider_accesskey_revoke", obj.pk),
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
        return access_keys_views.issue_access_key(request, self, object_id)

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
            admin_url("oidc_provider_application_change", obj.application_id),
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
            key, sk = services.issue_access_key(request.user, obj)
            stash_access_keys(request, [(key, sk)])
            request._console_keys_issued = True

    def response_add(self, request, obj, post_url_continue=None):
        if getattr(request, "_console_keys_issued", False) and not is_popup(request):
            self.message_user(request, _("Account %(name)s created.") % {"name": obj.name}, messages.SUCCESS)
            return shown_once_redirect(request, admin_url("oidc_provider_accesskey_issued"))
        return shown_once(request, super().response_add(request, obj, post_url_continue))

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra = dict(extra_context or {})
        if self.has_issue_key_permission(request):
            extra["issue_key_url"] = admin_url("oidc_provider_accessaccount_issue_key", object_id)
        return super().change_view(request, object_id, form_url, extra)

    def has_issue_key_permission(self, request):
        return allowed(request.user, "access_key.issue")

    @admin.action(description=_("Issue a new key pair for each selected account"), permissions=["issue_key"])
    def issue_key_pairs(self, request, queryset):
        pairs = []
        for account in queryset:
            key, sk = services.issue_access_key(request.user, account)
            self.log_change(request, account, [{"added": {"name": "access key", "object": key.access_key}}])
            pairs.append((key, sk))
        stash_access_keys(request, pairs)
        return shown_once_redirect(request, admin_url("oidc_provider_accesskey_issued"))


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
        return access_keys_views.access_keys_issued(request, self)

    def revoke_view(self, request, object_id):
        return access_keys_views.access_key_action(request, self, object_id, "revoke")

    def rotate_view(self, request, object_id):
        return access_keys_views.access_key_action(request, self, object_id, "rotate")

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
            services.revoke_access_key(request.user, key)
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
            pairs.append(services.rotate_access_key(request.user, key))
        if not pairs:
            self.message_user(request, _("Only active pairs can be rotated; the selected ones are revoked."), messages.INFO)
            return None
        stash_access_keys(request, pairs)
        return shown_once_redirect(request, admin_url("oidc_provider_accesskey_issued"))
