"""``/console/api/applications/``: relying parties, with the same fields and rules as ``oidc_app``."""

import copy

from django.db import transaction
from django.db.models import ProtectedError
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import serializers, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from console import audit, services
from oidc_provider import policy
from oidc_provider.models import Application

from .errors import Conflict, Refused, full_clean
from .permissions import ConsoleAPIMixin

# Set by Application.save() from the type and grants, so not validated as choices.
DERIVED_FIELDS = ["client_type", "authorization_grant_type"]
# Model field -> API field, where the API uses the contract's name.
API_FIELD_NAMES = {"skip_authorization": "skip_consent"}
MAX_URIS = 50


class SpaceSeparatedListField(serializers.ListField):
    """A JSON list in the API, a space-separated string in the model (DOT's storage format)."""

    child = serializers.CharField(max_length=2000)

    def to_representation(self, data):
        return data.split()

    def to_internal_value(self, data):
        items = super().to_internal_value(data)
        # Counted here, on the list: ListField's max_length would run its validator on the
        # joined string this returns, and count its characters.
        if len(items) > MAX_URIS:
            raise ValidationError(f"Give at most {MAX_URIS} URIs; {len(items)} were sent.")
        joined = [item for item in items if len(item.split()) != 1]
        if joined:
            raise ValidationError(
                [f"'{item}' contains whitespace; give each URI as its own list item, without spaces." for item in joined]
            )
        # No duplicates, order kept.
        return " ".join(dict.fromkeys(items))


class ApplicationSerializer(serializers.ModelSerializer):
    application_type = serializers.ChoiceField(
        choices=policy.APPLICATION_TYPE_CHOICES,
        error_messages={"invalid_choice": f'"{{input}}" is not an application type. Choose one of: {", ".join(policy.APPLICATION_TYPES)}.'},
        help_text="web and service are confidential (they get a client secret); spa and native are public (PKCE).",
    )
    grant_types = serializers.ListField(
        child=serializers.CharField(max_length=32),
        max_length=20,
        required=False,
        help_text="Grants the application uses, among those its type's policy does not forbid. "
        "Omitted on create: the type's recommended grants.",
    )
    redirect_uris = SpaceSeparatedListField(required=False, help_text="Exact redirect URIs (https, or http on loopback).")
    post_logout_redirect_uris = SpaceSeparatedListField(required=False)
    allowed_origins = SpaceSeparatedListField(required=False, help_text="CORS origins (scheme://host[:port]).")
    skip_consent = serializers.BooleanField(
        source="skip_authorization", required=False, help_text="Do not ask users to approve this application (first-party apps only)."
    )

    class Meta:
        model = Application
        fields = [
            "client_id", "name", "description", "application_type", "grant_types", "redirect_uris",
            "post_logout_redirect_uris", "skip_consent", "allowed_origins", "backchannel_logout_uri",
            "frontchannel_logout_uri", "is_resource_server", "created", "updated",
        ]
        read_only_fields = ["client_id", "created", "updated"]
        extra_kwargs = {"name": {"required": True, "allow_blank": False}}

    def validate_name(self, value):
        value = value.strip()
        if not value:
            raise ValidationError("Give the application a name.")
        return value

    def validate_grant_types(self, value):
        # Canonical order, no duplicates (as oidc_app stores them); unknown names are
        # reported by the model with the list of known ones.
        order = {g: i for i, g in enumerate(policy.GRANTS)}
        return sorted(dict.fromkeys(value), key=lambda g: order.get(g, len(order)))

    def validate(self, attrs):
        if self.instance is None and "grant_types" not in attrs:
            attrs["grant_types"] = policy.recommended_grants(attrs["application_type"])
        # Validate a copy, so a refused change leaves the instance as it was.
        candidate = copy.copy(self.instance) if self.instance is not None else Application()
        for field, value in attrs.items():
            setattr(candidate, field, value)
        full_clean(candidate, exclude=DERIVED_FIELDS, field_names=API_FIELD_NAMES)
        return attrs


class ApplicationSecretSerializer(ApplicationSerializer):
    """An application with the client secret it has just been given, shown this once."""

    client_secret = serializers.CharField(
        source="plaintext_secret", read_only=True, allow_null=True,
        help_text="The client secret, shown only in this response; null for public (spa, native) applications.",
    )

    class Meta(ApplicationSerializer.Meta):
        fields = ApplicationSerializer.Meta.fields + ["client_secret"]


@extend_schema_view(
    create=extend_schema(
        summary="Register an application",
        description="The response carries the client secret (confidential types), the only time it is shown.",
        responses={201: ApplicationSecretSerializer},
    ),
    update=extend_schema(
        description="Changing a public type to a confidential one gives the application a secret, "
        "returned once as `client_secret` in this response.",
    ),
    partial_update=extend_schema(
        description="Changing a public type to a confidential one gives the application a secret, "
        "returned once as `client_secret` in this response.",
    ),
    destroy=extend_schema(description="Deletes the application with its tokens and consents."),
)
class ApplicationViewSet(ConsoleAPIMixin, viewsets.ModelViewSet):
    """OpenID Connect applications (relying parties), looked up by ``client_id``.

    Validation is the model's: grants must not be forbidden for the type by the grant policy,
    redirect URIs must be https (http only on loopback, private schemes only for native).
    The client secret is never listed or retrieved; it appears in the create response and
    the ``regenerate-secret`` response only.
    """

    console_resource = "application"
    console_actions = {"regenerate_secret": "application.regenerate_secret"}
    queryset = Application.objects.order_by("created", "id")
    serializer_class = ApplicationSerializer
    lookup_field = "client_id"

    def get_serializer_class(self):
        if self.action in ("create", "regenerate_secret"):
            return ApplicationSecretSerializer
        return ApplicationSerializer

    def perform_create(self, serializer):
        serializer.instance = services.create_application(self.request.user, Application(**serializer.validated_data))

    def update(self, request, *args, **kwargs):
        partial = kwargs.pop("partial", False)
        instance = self.get_object()
        before = ApplicationSerializer(instance).data
        serializer = self.get_serializer(instance, data=request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        with transaction.atomic():
            app = serializer.save()
            after = ApplicationSerializer(app).data
            changed = {k: after[k] for k in after if k not in ("updated",) and after[k] != before[k]}
            audit.record(
                audit.APPLICATION_CHANGED, request=request, target=app, client_id=app.client_id,
                changed=changed, secret_generated=bool(app.plaintext_secret),
            )
        if app.plaintext_secret:
            # A public application made confidential has just been given its first secret.
            return Response(ApplicationSecretSerializer(app, context=self.get_serializer_context()).data)
        return Response(serializer.data)

    def perform_destroy(self, instance):
        account = getattr(instance, "access_account", None)  # the reverse one-to-one raises AttributeError when absent
        if account is not None:
            raise Conflict(
                f"This is the service application of access account '{account.name}'; it cannot be deleted "
                f"on its own. Deactivate the account instead (PATCH /console/api/access-accounts/{account.pk}/ "
                '{"active": false}).'
            )
        try:
            services.delete_application(self.request.user, instance)
        except ProtectedError as error:
            still = ", ".join(str(o) for o in error.protected_objects)
            raise Conflict(f"This application is still used by: {still}. Remove those first.") from error

    @extend_schema(
        summary="Give the application a new client secret",
        description="The old secret stops working at once. The new one is in this response only.",
        request=None,
        responses={200: ApplicationSecretSerializer, 400: OpenApiResponse(description="A public application has no secret.")},
    )
    @action(detail=True, methods=["post"], url_path="regenerate-secret")
    def regenerate_secret(self, request, client_id=None):
        app = self.get_object()
        if app.is_public:
            raise Refused(
                f"'{app.name}' is a public ({app.application_type}) application: it has no secret and "
                "authenticates with PKCE. Change its type to web or service to give it one."
            )
        services.regenerate_client_secret(request.user, app)
        return Response(self.get_serializer(app).data)
