"""``/console/api/refusals/``: refused authorization and token requests, read-only: when, which
rule refused each, what it sent beside what is registered, and the fix. Never a secret."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field, extend_schema_view
from rest_framework import serializers, viewsets

from console.models import Refusal
from console.refusals import explain

from .audit_events import AuditEventPagination, parse_moment
from .permissions import ConsoleAPIMixin


class RefusalSerializer(serializers.ModelSerializer):
    fix = serializers.SerializerMethodField(help_text="What to change, in one sentence.")
    link = serializers.SerializerMethodField(help_text="The console page where the fix is made, or null.")

    class Meta:
        model = Refusal
        fields = ["id", "at", "client_id", "endpoint", "error", "rule", "sent", "registered", "fix", "link", "request_id"]
        read_only_fields = fields

    @extend_schema_field(OpenApiTypes.STR)
    def get_fix(self, obj):
        return explain(obj).fix

    @extend_schema_field(OpenApiTypes.STR)
    def get_link(self, obj):
        return explain(obj).link


FILTERS = [
    OpenApiParameter("client_id", OpenApiTypes.STR, description="Refusals of requests that named this client_id."),
    OpenApiParameter("rule", OpenApiTypes.STR, description="The check that refused them, e.g. `redirect_uri_not_registered`."),
    OpenApiParameter("endpoint", OpenApiTypes.STR, description="`authorize` or `token`."),
    OpenApiParameter("since", OpenApiTypes.DATETIME, description="Refusals at or after this ISO 8601 datetime."),
    OpenApiParameter("until", OpenApiTypes.DATETIME, description="Refusals before this ISO 8601 datetime."),
]


@extend_schema_view(list=extend_schema(parameters=FILTERS))
class RefusalViewSet(ConsoleAPIMixin, viewsets.ReadOnlyModelViewSet):
    """Refused requests, newest first, 50 a page."""

    console_resource = "refusal"
    serializer_class = RefusalSerializer
    pagination_class = AuditEventPagination

    def get_queryset(self):
        refusals = Refusal.objects.order_by("-at", "-id")
        if self.action != "list":
            return refusals
        params = self.request.query_params
        for name in ("client_id", "rule", "endpoint"):
            if params.get(name):
                refusals = refusals.filter(**{name: params[name]})
        if params.get("since"):
            refusals = refusals.filter(at__gte=parse_moment("since", params["since"]))
        if params.get("until"):
            refusals = refusals.filter(at__lt=parse_moment("until", params["until"]))
        return refusals
