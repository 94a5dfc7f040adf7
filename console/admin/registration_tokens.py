"""Initial access tokens for dynamic client registration: issued here (shown once), listed
without the token, revoked with an audited action."""

from django import forms
from django.contrib import admin, messages
from django.template.response import TemplateResponse
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from oidc_provider import registration
from oidc_provider.conf import oidc_settings
from oidc_provider.models import InitialAccessToken
from oidc_provider.views.discovery import endpoint

from ..permissions import allowed
from ..views.common import admin_context, admin_url


class RegistrationTokenForm(forms.ModelForm):
    hours = forms.IntegerField(label=_("Valid for (hours)"), min_value=1, max_value=24 * 365, initial=24)

    class Meta:
        model = InitialAccessToken
        fields = ["note"]


@admin.register(InitialAccessToken)
class RegistrationTokenAdmin(admin.ModelAdmin):
    form = RegistrationTokenForm
    list_display = ("__str__", "created_by", "created_at", "expires_at", "revoked_at", "registered")
    list_select_related = ("created_by",)
    actions = ("revoke_tokens",)
    shown = ("note", "created_by", "created_at", "expires_at", "revoked_at", "registered")

    @admin.display(description=_("clients registered"))
    def registered(self, obj):
        return obj.registrations.count()

    def get_fields(self, request, obj=None):
        return ["note", "hours"] if obj is None else list(self.shown)

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else self.shown

    def has_view_permission(self, request, obj=None):
        return allowed(request.user, "registration_token.view")

    def has_add_permission(self, request):
        return allowed(request.user, "registration_token.issue")

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False  # revoked with the action, which is audited

    def has_revoke_permission(self, request):
        return allowed(request.user, "registration_token.revoke")

    def save_model(self, request, obj, form, change):
        request._registration_token = registration.issue_initial_token(
            actor=request.user, expires_in=form.cleaned_data["hours"] * 3600, note=obj.note, row=obj,
        )[1]

    def response_add(self, request, obj, post_url_continue=None):
        # The token itself, once, on this page; never stored, never in a redirect.
        context = admin_context(
            request, self, _("Registration token issued"), row=obj, token=request._registration_token,
            registration_endpoint=endpoint("registration"), registration_on=oidc_settings.DYNAMIC_REGISTRATION,
            list_url=admin_url("oidc_provider_initialaccesstoken_changelist"),
        )
        response = TemplateResponse(request, "console/admin/registration_token_issued.html", context)
        response["Cache-Control"] = "no-store"
        return response

    @admin.action(description=_("Revoke selected registration tokens"), permissions=["revoke"])
    def revoke_tokens(self, request, queryset):
        rows = list(queryset.filter(revoked_at__isnull=True))
        for row in rows:
            registration.revoke_initial_token(row, actor=request.user)
        self.message_user(request, ngettext(
            "Revoked %(count)d registration token; clients it registered keep working.",
            "Revoked %(count)d registration tokens; clients they registered keep working.", len(rows),
        ) % {"count": len(rows)}, messages.SUCCESS)
