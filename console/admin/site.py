"""The admin site as the console sets it up: django-oauth-toolkit's admins for the models the
console replaces unregistered, the dashboard as the first page, and the permission mixins."""

# DOT registers its admins (for our swapped Application too) and knox its token admin on
# import; importing them first makes the replacements independent of INSTALLED_APPS order.
import knox.admin  # noqa: F401
import oauth2_provider.admin  # noqa: F401
from django.contrib import admin
from oauth2_provider.models import get_access_token_model, get_grant_model, get_id_token_model, get_refresh_token_model

from oidc_provider.models import Application

from ..permissions import allowed

for _model in (Application, get_access_token_model(), get_refresh_token_model(), get_grant_model(), get_id_token_model()):
    if admin.site.is_registered(_model):
        admin.site.unregister(_model)

# The first page: counts and charts above the app list (console/templatetags/console_admin.py).
if admin.site.index_template is None:
    admin.site.index_template = "console/admin/index.html"


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


class ReadOnlyRecordsMixin:
    """Rows only the system writes (audit events, refusal records): nobody adds, edits or
    deletes them here. Listed before ConsolePermissionsMixin, whose view right still holds."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class IssuedByTheProviderMixin(ReadOnlyRecordsMixin):
    """Key pairs, tokens and codes are made by the provider and ended by its audited actions
    (revoke, rotate): nobody adds, edits or deletes them here (a hand-made one would be a key
    to an account, and a deleted one would leave no trace of its revocation)."""
