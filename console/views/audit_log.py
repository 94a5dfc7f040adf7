"""The audit log as CSV: the selected events, or the whole filtered changelist."""

import csv
import json

from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.utils import timezone
from django.utils.translation import gettext as _

CSV_FIELDS = ("occurred_at", "actor_label", "action", "target_type", "target_id", "target_label", "ip_address", "request_id", "details")


def _csv_cell(value):
    """A cell a spreadsheet will not run as a formula (CSV injection)."""
    text = "" if value is None else str(value)
    if text[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + text
    return text


def audit_csv_response(queryset, filename="audit-log.csv"):
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    writer = csv.writer(response)
    writer.writerow(CSV_FIELDS)
    for event in queryset.iterator():
        writer.writerow(
            [
                _csv_cell(event.occurred_at.isoformat()),
                _csv_cell(event.actor_label),
                _csv_cell(event.action),
                _csv_cell(event.target_type),
                _csv_cell(event.target_id),
                _csv_cell(event.target_label),
                _csv_cell(event.ip_address),
                _csv_cell(event.request_id),
                _csv_cell(json.dumps(event.details, sort_keys=True, default=str)),
            ]
        )
    return response


def audit_export(request, model_admin):
    """The audit changelist as it is filtered now (every page of it), as CSV."""
    if not model_admin.has_view_permission(request):
        raise PermissionDenied
    try:
        changelist = model_admin.get_changelist_instance(request)
    except IncorrectLookupParameters:
        raise Http404(_("Unknown filter in the address; go back to the audit log and filter again."))
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    return audit_csv_response(changelist.get_queryset(request), filename=f"audit-log-{stamp}.csv")
