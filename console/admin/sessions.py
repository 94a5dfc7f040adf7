"""Login sessions: who is signed in, where, and since when; an admin ends them with an
audited action (the applications they signed into are told, their tokens revoked); the
provider makes them, so nobody adds, edits or deletes one here."""

from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from oidc_provider.models import LoginSession

from .. import services
from ..permissions import allowed
from .site import IssuedByTheProviderMixin


class LiveSessionFilter(admin.SimpleListFilter):
    title = _("state")
    parameter_name = "live"

    def lookups(self, request, model_admin):
        return (("yes", _("Live")), ("no", _("Ended")))

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(ended_at__isnull=True)
        if self.value() == "no":
            return queryset.filter(ended_at__isnull=False)
        return queryset


@admin.register(LoginSession)
class LoginSessionAdmin(IssuedByTheProviderMixin, admin.ModelAdmin):
    list_display = ("user", "created_at", "ended_at", "applications")
    list_filter = (LiveSessionFilter,)
    list_select_related = ("user",)
    search_fields = ("user__username", "user__email")
    fields = ("user", "sid", "created_at", "ended_at", "applications")
    readonly_fields = fields
    actions = ("end_sessions",)

    @admin.display(description=_("applications signed into"))
    def applications(self, obj):
        names = {s.application.name or s.application.client_id for s in obj.sign_ins.select_related("application")}
        return ", ".join(sorted(names)) or "—"

    def has_view_permission(self, request, obj=None):
        return allowed(request.user, "session.view")

    def has_end_permission(self, request):
        return allowed(request.user, "session.end")

    @admin.action(description=_("End selected sessions (sign the user out everywhere they signed in)"), permissions=["end"])
    def end_sessions(self, request, queryset):
        ended = services.end_sessions(request.user, queryset.filter(ended_at__isnull=True).select_related("user"))
        self.message_user(
            request,
            ngettext(
                "Ended %(count)d session; the applications it signed into were told and its tokens revoked.",
                "Ended %(count)d sessions; the applications they signed into were told and their tokens revoked.",
                ended,
            ) % {"count": ended},
            messages.SUCCESS,
        )
