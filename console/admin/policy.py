"""The grant policy: the list of (type, grant) states, editable in place, and the matrix."""

from django.contrib import admin, messages
from django.db.models import Case, Value, When
from django.urls import path
from django.utils.translation import gettext_lazy as _

from oidc_provider import policy
from oidc_provider.models import GrantPolicy

from .. import services
from ..views.policy_matrix import policy_matrix
from .site import ConsolePermissionsMixin


def _order_of(field, values):
    return Case(*(When(**{field: v}, then=Value(i)) for i, v in enumerate(values)), default=Value(len(values)))


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

    def get_changelist_form(self, request, **kwargs):
        base = super().get_changelist_form(request, **kwargs)

        class LabelledStateForm(base):
            """Each row's state select names its cell for screen readers:
            a column of 24 selects is otherwise 24 unnamed controls."""

            def __init__(self, *args, **form_kwargs):
                super().__init__(*args, **form_kwargs)
                if self.instance.pk:
                    label = _("Policy for %(type)s: %(grant)s") % {
                        "grant": self.instance.get_grant_display(), "type": self.instance.get_application_type_display(),
                    }
                    self.fields["state"].widget.attrs["aria-label"] = label

        return LabelledStateForm

    def get_urls(self):
        return [
            path("matrix/", self.admin_site.admin_view(self.matrix_view), name="oidc_provider_grantpolicy_matrix"),
            *super().get_urls(),
        ]

    def matrix_view(self, request):
        return policy_matrix(request, self)

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
        result = services.set_grant_policy(request.user, obj.application_type, obj.grant, obj.state)
        if result.holders:
            self.message_user(
                request,
                _(
                    "%(grant)s is now forbidden for %(type)s applications; these applications hold it and "
                    "can no longer use it: %(apps)s."
                )
                % {"grant": obj.grant, "type": obj.application_type, "apps": ", ".join(a.name or a.client_id for a in result.holders)},
                messages.WARNING,
            )
