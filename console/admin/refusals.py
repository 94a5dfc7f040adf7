"""Refused requests: read-only, filtered; each shows what was sent beside what is registered,
the fix and the link to where it is made."""

from django.contrib import admin
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from oidc_provider import refusals as rules

from ..models import Refusal
from ..refusals import explain, redirect_uri_differences
from ..views.common import admin_url
from .site import ConsolePermissionsMixin, ReadOnlyRecordsMixin


def _value(value):
    if value is None or value == "" or value == []:
        return "—"
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    return str(value)


@admin.register(Refusal)
class RefusalAdmin(ReadOnlyRecordsMixin, ConsolePermissionsMixin, admin.ModelAdmin):
    console_resource = "refusal"
    list_display = ("at", "client_id", "application", "endpoint", "rule", "error", "short_fix")
    list_filter = (("application", admin.RelatedOnlyFieldListFilter), "rule", "endpoint")
    date_hierarchy = "at"
    # A request id pasted from a log line finds that request's refusal.
    search_fields = ("client_id", "=request_id")
    list_per_page = 100
    fields = (
        "at", "application_link", "client_id", "endpoint", "error", "description", "rule", "request_id",
        "sent_and_registered", "redirect_uris_compared", "fix",
    )
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("application")

    def get_fields(self, request, obj=None):
        if obj is not None and obj.rule != rules.REDIRECT_URI_NOT_REGISTERED:
            return [f for f in self.fields if f != "redirect_uris_compared"]
        return self.fields

    @admin.display(description=_("fix"))
    def short_fix(self, obj):
        fix = explain(obj).fix
        return fix if len(fix) <= 120 else fix[:119] + "…"

    @admin.display(description=_("application"))
    def application_link(self, obj):
        if obj.application_id is None:
            return _("None (no application has this client_id, or it was deleted)")
        return format_html('<a href="{}">{}</a>', admin_url("oidc_provider_application_change", obj.application_id), obj.application)

    @admin.display(description=_("sent and registered"))
    def sent_and_registered(self, obj):
        sent = obj.sent if isinstance(obj.sent, dict) else {}
        registered = obj.registered if isinstance(obj.registered, dict) else {}
        names = list(sent) + [name for name in registered if name not in sent]
        if not names:
            return "—"
        rows = format_html_join(
            "", "<tr><th>{}</th><td>{}</td><td>{}</td></tr>",
            ((name, _value(sent.get(name)) if name in sent else "", _value(registered.get(name)) if name in registered else "")
             for name in names),
        )
        return format_html(
            '<table class="console-refusal-compare"><thead><tr><th></th><th>{}</th><th>{}</th></tr></thead>'
            "<tbody>{}</tbody></table>",
            _("sent"), _("registered"), rows,
        )

    @admin.display(description=_("redirect URIs compared"))
    def redirect_uris_compared(self, obj):
        sent = (obj.sent or {}).get("redirect_uri") if isinstance(obj.sent, dict) else None
        registered = (obj.registered or {}).get("redirect_uris") if isinstance(obj.registered, dict) else None
        compared = redirect_uri_differences(sent or "", registered or [])
        if not compared:
            return _("No redirect URI is registered.")
        rows = format_html_join(
            "", "<tr><td><code>{}</code></td><td><code>{}</code></td><td>{}</td></tr>",
            ((sent or "—", uri, ", ".join(differences) or _("identical")) for uri, differences in compared),
        )
        return format_html(
            '<table class="console-refusal-compare"><thead><tr><th>{}</th><th>{}</th><th>{}</th></tr></thead>'
            "<tbody>{}</tbody></table>",
            _("sent"), _("registered"), _("differs by"), rows,
        )

    @admin.display(description=_("fix"))
    def fix(self, obj):
        explanation = explain(obj)
        if explanation.link:
            return format_html('{} <a href="{}">{}</a>', explanation.fix, explanation.link, _("Make the change here"))
        return explanation.fix
