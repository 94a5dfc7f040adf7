"""``/console/api/policy/``: the grant policy, one entry per (application type, grant)."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import serializers, viewsets
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from console import services
from oidc_provider import policy
from oidc_provider.models import GrantPolicy

from .permissions import ConsoleAPIMixin

PAIR_PARAMETERS = [
    OpenApiParameter("application_type", OpenApiTypes.STR, OpenApiParameter.PATH, enum=list(policy.APPLICATION_TYPES)),
    OpenApiParameter("grant", OpenApiTypes.STR, OpenApiParameter.PATH, enum=list(policy.GRANTS)),
]


class PolicyEntrySerializer(serializers.Serializer):
    application_type = serializers.ChoiceField(choices=policy.APPLICATION_TYPE_CHOICES, read_only=True)
    grant = serializers.ChoiceField(choices=policy.GRANT_CHOICES, read_only=True)
    state = serializers.ChoiceField(
        choices=policy.STATE_CHOICES,
        error_messages={"invalid_choice": f'"{{input}}" is not a state. Choose one of: {", ".join(policy.STATES)}.'},
        help_text="recommended: on for new applications of the type; allowed: may be turned on; "
        "forbidden: refused at the authorization and token endpoints from the next request.",
    )
    default_state = serializers.ChoiceField(choices=policy.STATE_CHOICES, read_only=True)


class HoldingApplicationSerializer(serializers.Serializer):
    client_id = serializers.CharField()
    name = serializers.CharField()


class PolicyChangeSerializer(PolicyEntrySerializer):
    previous_state = serializers.ChoiceField(choices=policy.STATE_CHOICES, read_only=True)
    applications_holding_grant = HoldingApplicationSerializer(
        many=True, read_only=True,
        help_text="When the grant becomes forbidden: applications of the type that still list it. "
        "Their requests for it are refused (unauthorized_client) from now on.",
    )
    warning = serializers.CharField(read_only=True, allow_null=True)


def _entry(application_type, grant, state):
    return {
        "application_type": application_type,
        "grant": grant,
        "state": state,
        "default_state": policy.DEFAULT_POLICY[(application_type, grant)],
    }


@extend_schema_view(
    list=extend_schema(summary="The whole policy: 24 entries, types × grants"),
    retrieve=extend_schema(summary="One (application type, grant) entry", parameters=PAIR_PARAMETERS),
    update=extend_schema(
        summary="Set the state of one entry", parameters=PAIR_PARAMETERS, responses={200: PolicyChangeSerializer}
    ),
    partial_update=extend_schema(
        summary="Set the state of one entry", parameters=PAIR_PARAMETERS, responses={200: PolicyChangeSerializer}
    ),
)
class GrantPolicyViewSet(ConsoleAPIMixin, viewsets.GenericViewSet):
    """The grant policy: for each application type, which grants are recommended, allowed or forbidden.

    ``GET /console/api/policy/`` lists one entry per (application type, grant), types in the
    order web, spa, native, service and, within each, grants in the order authorization_code,
    hybrid, implicit, password, client_credentials, refresh_token.

    An entry is addressed as ``/console/api/policy/{application_type}/{grant}/``, e.g.
    ``/console/api/policy/service/client_credentials/``. ``PUT`` or ``PATCH`` it with
    ``{"state": "recommended" | "allowed" | "forbidden"}``; the change holds from the next
    request. When a grant becomes forbidden, the response lists the applications of that type
    that still hold it, with a ``warning``.
    """

    console_resource = "policy"
    serializer_class = PolicyEntrySerializer
    # Only for DRF's browsable API, which asks for one; entries are built from
    # policy.current_policy(), every (type, grant) pair, stored or default.
    queryset = GrantPolicy.objects.all()
    pagination_class = None

    def _pair(self, application_type, grant):
        if application_type not in policy.APPLICATION_TYPES:
            raise NotFound(f"Unknown application type '{application_type}'. Choose one of: {', '.join(policy.APPLICATION_TYPES)}.")
        if grant not in policy.GRANTS:
            raise NotFound(f"Unknown grant '{grant}'. Choose one of: {', '.join(policy.GRANTS)}.")
        return application_type, grant

    def get_object(self):
        # The entry the URL names: DRF's OPTIONS describes PUT from it (a router's get_object
        # would look for a primary key the URL does not carry).
        application_type, grant = self._pair(self.kwargs.get("application_type"), self.kwargs.get("grant"))
        return _entry(application_type, grant, policy.state_of(application_type, grant))

    def list(self, request):
        current = policy.current_policy()
        entries = [_entry(t, g, current[(t, g)]) for t in policy.APPLICATION_TYPES for g in policy.GRANTS]
        return Response(PolicyEntrySerializer(entries, many=True).data)

    def retrieve(self, request, application_type=None, grant=None):
        application_type, grant = self._pair(application_type, grant)
        return Response(PolicyEntrySerializer(_entry(application_type, grant, policy.state_of(application_type, grant))).data)

    def update(self, request, application_type=None, grant=None, **kwargs):
        application_type, grant = self._pair(application_type, grant)
        serializer = PolicyEntrySerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        state = serializer.validated_data["state"]

        change = services.set_grant_policy(request.user, application_type, grant, state)
        warning = None
        if change.holders:
            listed = ", ".join(f"'{a.name}' ({a.client_id})" for a in change.holders)
            warning = (
                f"{len(change.holders)} {application_type} application(s) still list {grant}: {listed}. "
                f"Their {grant} requests are refused (unauthorized_client) from now on; "
                f"remove the grant from them or choose another flow."
            )
        data = {
            **_entry(application_type, grant, state),
            "previous_state": change.previous,
            "applications_holding_grant": [{"client_id": a.client_id, "name": a.name} for a in change.holders],
            "warning": warning,
        }
        return Response(PolicyChangeSerializer(data).data)

    def partial_update(self, request, *args, **kwargs):
        # The one writable field is the state, so PATCH and PUT are the same change.
        return self.update(request, *args, **kwargs)
