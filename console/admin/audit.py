"""The audit log: read-only, filtered, exported as CSV."""

import json

from django.contrib import admin
from django.urls import path
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from ..audit import ACTION_LABELS
from ..models import AuditEvent
from ..views.audit_log import audit_csv_response, audit_export
from .site import ConsolePermissionsMixin, ReadOnlyRecordsMixin


class ActionFilter(admin.AllValuesFieldListFilter):
    """The actions that occur, by their names (the codes stay in the URL)."""

    def choices(self, changelist):
        for choice in super().choices(changelist):
            if choice.get("display") in ACTION_LABELS:
                choice = {**choice, "display": ACTION_LABELS[choice["display"]]}
            yield choice


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyRecordsMixin, ConsolePermissionsMixin, admin.ModelAdmin):
    console_resource = "audit"
    change_list_template = "console/admin/auditevent_change_list.html"
    list_display = ("occurred_at", "actor_label", "action_shown", "target_label", "ip_address")
    list_filter = (("action", ActionFilter), "occurred_at")
    date_hierarchy = "occurred_at"
    # A request id pasted from a log line finds what that request did.
    search_fields = ("actor_label", "target_label", "=request_id")
    # The actor as recorded (a username, "cli", a client_id) and, apart, the user account it
    # was, if any: both fields are called "actor" on the model.
    fields = ("occurred_at", "actor_label", "actor_account", "action_shown", "target_type", "target_id", "target_label",
              "ip_address", "request_id", "details_json")
    readonly_fields = fields
    actions = ("export_csv",)
    list_per_page = 100

    def get_urls(self):
        return [
            path("export/", self.admin_site.admin_view(self.export_view), name="console_auditevent_export"),
            *super().get_urls(),
        ]

    def export_view(self, request):
        return audit_export(request, self)

    @admin.display(description=_("action"), ordering="action")
    def action_shown(self, obj):
        label = ACTION_LABELS.get(obj.action)
        if label is None:
            return obj.action
        return format_html('{} <span class="quiet">{}</span>', label, obj.action)

    @admin.display(description=_("user account"))
    def actor_account(self, obj):
        return obj.actor.get_username() if obj.actor_id and obj.actor else "—"

    @admin.display(description=_("details"))
    def details_json(self, obj):
        if not obj.details:
            return "—"
        return format_html("<pre>{}</pre>", json.dumps(obj.details, indent=2, sort_keys=True, ensure_ascii=False, default=str))

    @admin.action(description=_("Export selected events as CSV"), permissions=["view"])
    def export_csv(self, request, queryset):
        return audit_csv_response(queryset.order_by("-occurred_at", "-id"))
