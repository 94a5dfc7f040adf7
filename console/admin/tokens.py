"""Tokens, codes, ID tokens and consents: read-only lists, revoked with audited actions."""

import oauth2_provider.admin as dot_admin
from django.contrib import admin, messages
from django.contrib.admin import RelatedOnlyFieldListFilter
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from oauth2_provider.models import get_access_token_model, get_grant_model, get_id_token_model, get_refresh_token_model

from oidc_provider.models import Consent

from .. import services
from ..permissions import allowed
from ..views.tokens import revocation_message
from .site import IssuedByTheProviderMixin

AccessToken = get_access_token_model()
RefreshToken = get_refresh_token_model()
Grant = get_grant_model()
IDToken = get_id_token_model()


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
        total = services.Revoked()
        for target in targets:
            total += services.revoke_tokens(request.user, **{by: target}, request=request)
        self.message_user(request, revocation_message(total), messages.SUCCESS)

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
        services.revoke_selected_tokens(request.user, rows, request=request)
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
        services.revoke_selected_tokens(request.user, rows, request=request)
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
        rows = list(queryset.select_related("user", "application"))
        total = services.Revoked()
        for consent in rows:
            total += services.revoke_consent(request.user, consent, request=request)
        self.message_user(
            request,
            ngettext(
                "Revoked %(count)d consent; the user will be asked again. %(tokens)s",
                "Revoked %(count)d consents; the users will be asked again. %(tokens)s",
                len(rows),
            )
            % {"count": len(rows), "tokens": revocation_message(total)},
            messages.SUCCESS,
        )
