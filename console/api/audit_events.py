"""``/console/api/audit-events/``: the audit log, read-only, filterable by actor, action and time."""

from django.db.models import Q
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import serializers, viewsets
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import PageNumberPagination

from console.models import AuditEvent

from .permissions import ConsoleAPIMixin


class AuditEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = AuditEvent
        fields = [
            "id", "occurred_at", "actor", "actor_label", "action", "target_type", "target_id", "target_label",
            "ip_address", "request_id", "details",
        ]
        read_only_fields = fields


class AuditEventPagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


def parse_moment(name, value):
    """An ISO 8601 datetime (or date: its midnight) as an aware datetime; naive ones are in TIME_ZONE."""
    try:
        moment = parse_datetime(value)
        if moment is None:
            day = parse_date(value)
            moment = timezone.datetime(day.year, day.month, day.day) if day else None
    except ValueError:  # well formed but impossible, e.g. month 13
        moment = None
    if moment is None:
        raise ValidationError({name: [f"'{value}' is not an ISO 8601 date or datetime, e.g. 2024-05-01T12:00:00Z."]})
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment)
    return moment


FILTERS = [
    OpenApiParameter("actor", OpenApiTypes.STR, description="Who: an actor label (username, `cli`, `system`, a client_id) or a user id."),
    OpenApiParameter(
        "action", OpenApiTypes.STR,
        description="What: an action (`application.created`), or a prefix ending in a dot (`login.`) for a family.",
    ),
    OpenApiParameter("since", OpenApiTypes.DATETIME, description="Events at or after this ISO 8601 datetime."),
    OpenApiParameter("until", OpenApiTypes.DATETIME, description="Events before this ISO 8601 datetime."),
]


@extend_schema_view(list=extend_schema(parameters=FILTERS))
class AuditEventViewSet(ConsoleAPIMixin, viewsets.ReadOnlyModelViewSet):
    """The audit log, newest first, 50 events a page: console changes and security events."""

    console_resource = "audit"
    serializer_class = AuditEventSerializer
    pagination_class = AuditEventPagination

    def get_queryset(self):
        events = AuditEvent.objects.order_by("-occurred_at", "-id")
        if self.action != "list":
            return events
        params = self.request.query_params
        if params.get("actor"):
            actor = params["actor"]
            match = Q(actor_label=actor)
            if actor.isdigit() and len(actor) < 19:  # a user id, within a bigint
                match |= Q(actor_id=int(actor))
            events = events.filter(match)
        if params.get("action"):
            action = params["action"]
            events = events.filter(action__startswith=action) if action.endswith(".") else events.filter(action=action)
        if params.get("since"):
            events = events.filter(occurred_at__gte=parse_moment("since", params["since"]))
        if params.get("until"):
            events = events.filter(occurred_at__lt=parse_moment("until", params["until"]))
        return events
