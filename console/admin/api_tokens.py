"""Console API tokens (django-rest-knox): every user's, for superusers only; never the token."""

from django.contrib import admin
from django.utils.translation import gettext_lazy as _
from knox.models import AuthToken

from .. import audit
from ..api_tokens import digest_prefix

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
