"""``/console/api/signing-keys/``: the provider's signing keys; never their private part."""

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from console import services
from oidc_provider.models import SigningKey

from .errors import Refused
from .permissions import ConsoleAPIMixin

PUBLIC_FIELDS = ["kid", "algorithm", "status", "created_at", "activated_at", "retired_at"]


class SigningKeySerializer(serializers.ModelSerializer):
    class Meta:
        model = SigningKey
        fields = PUBLIC_FIELDS
        read_only_fields = PUBLIC_FIELDS


class SigningKeyViewSet(ConsoleAPIMixin, viewsets.ReadOnlyModelViewSet):
    """Signing keys, by ``kid``. Life: next -> active (signs) -> inactive (still in JWKS) -> retired.

    ``POST rotate/`` makes a new key active; the previous one stays published so tokens it
    signed keep verifying. ``POST {kid}/retire/`` takes a key out of the JWKS; the active key
    cannot be retired (rotate first).
    """

    console_resource = "signing_key"
    console_actions = {"rotate": "signing_key.rotate", "retire": "signing_key.retire"}
    # The private key is never even loaded.
    queryset = SigningKey.objects.only(*PUBLIC_FIELDS).order_by("-created_at", "-id")
    serializer_class = SigningKeySerializer
    lookup_field = "kid"
    lookup_value_regex = r"[A-Za-z0-9_-]+"

    @extend_schema(summary="Make a new key active", request=None, responses={200: SigningKeySerializer})
    @action(detail=False, methods=["post"])
    def rotate(self, request):
        key = services.rotate_signing_key(request.user)
        return Response(self.get_serializer(key).data)

    @extend_schema(
        summary="Take a key out of the JWKS",
        request=None,
        responses={200: SigningKeySerializer, 400: OpenApiResponse(description="The active key, or a key already retired.")},
    )
    @action(detail=True, methods=["post"])
    def retire(self, request, kid=None):
        key = self.get_object()
        if key.status == SigningKey.RETIRED:
            raise Refused(f"Key {key.kid} is already retired.")
        try:
            key = services.retire_signing_key(request.user, key)
        except ValueError as error:  # the active key: the error says why
            raise Refused(str(error)) from error
        return Response(self.get_serializer(key).data)
