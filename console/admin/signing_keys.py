"""Signing keys: listed, rotated and retired; never added, edited, deleted or shown."""

from django.contrib import admin, messages
from django.utils import timezone
from django.utils.timesince import timesince
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from oidc_provider.models import SigningKey

from .. import services
from ..permissions import allowed
from .site import ConsolePermissionsMixin


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
        new = services.rotate_signing_key(request.user)
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
                services.retire_signing_key(request.user, key)
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
