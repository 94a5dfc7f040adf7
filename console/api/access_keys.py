"""``/console/api/access-keys/``: AK/SK pairs; the SK is in the issuing response only."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from console import services
from oidc_provider.models import AccessAccount, AccessKey

from .errors import Refused
from .permissions import ConsoleAPIMixin


def find_account(value):
    """The account named by an id (a number) or a name, or None."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        return None
    if isinstance(value, int):
        return AccessAccount.objects.filter(pk=value).first()
    account = AccessAccount.objects.filter(name=value).first()
    if account is None and value.isdigit():
        account = AccessAccount.objects.filter(pk=int(value)).first()
    return account


@extend_schema_field(OpenApiTypes.STR)
class AccountField(serializers.RelatedField):
    """The account's name on output; its name or id on input."""

    default_error_messages = {
        "does_not_exist": "No access account '{value}'. Create it with POST /console/api/access-accounts/.",
        "incorrect_type": "Give the account's name or id.",
    }

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, (int, str)):
            self.fail("incorrect_type")
        account = find_account(data)
        if account is None:
            self.fail("does_not_exist", value=data)
        return account

    def to_representation(self, value):
        return value.name


class AccessKeySerializer(serializers.ModelSerializer):
    account = AccountField(queryset=AccessAccount.objects.all(), help_text="The account's name (its id is accepted on input).")
    active = serializers.BooleanField(source="is_active", read_only=True)

    class Meta:
        model = AccessKey
        # Never the SK digest.
        fields = ["id", "account", "access_key", "created_at", "last_used_at", "revoked_at", "active"]
        read_only_fields = ["id", "access_key", "created_at", "last_used_at", "revoked_at"]

    def validate_account(self, account):
        if not account.is_active:
            raise ValidationError(
                f"Access account '{account.name}' is inactive; its keys would get no tokens. "
                f"Activate it first (PATCH /console/api/access-accounts/{account.pk}/ {{\"active\": true}})."
            )
        return account


class IssuedAccessKeySerializer(AccessKeySerializer):
    """A pair just issued, with its SK: the only time the SK is seen."""

    secret_key = serializers.CharField(
        source="plaintext_secret", read_only=True,
        help_text="The SK, sent as client_secret. Shown only in this response; it is stored as a digest.",
    )
    scopes = serializers.ListField(
        source="account.scopes", child=serializers.CharField(), read_only=True,
        help_text="The account's resource permissions: the scopes this pair may ask for.",
    )
    revoked_access_key = serializers.CharField(
        source="replaces", read_only=True, allow_null=True, default=None,
        help_text="On rotate: the AK of the pair this one replaces, now revoked.",
    )

    class Meta(AccessKeySerializer.Meta):
        fields = AccessKeySerializer.Meta.fields + ["secret_key", "scopes", "revoked_access_key"]


ACCOUNT_FILTER = OpenApiParameter("account", OpenApiTypes.STR, description="Only the pairs of this account (name or id).")


@extend_schema_view(
    list=extend_schema(parameters=[ACCOUNT_FILTER]),
    create=extend_schema(
        summary="Issue a new AK/SK pair for an account",
        request=AccessKeySerializer,
        responses={201: IssuedAccessKeySerializer},
    ),
)
class AccessKeyViewSet(ConsoleAPIMixin, mixins.ListModelMixin, mixins.CreateModelMixin, mixins.RetrieveModelMixin,
                       viewsets.GenericViewSet):
    """AK/SK pairs of access accounts, for ``grant_type=client_credentials``.

    Create with ``{"account": <name or id>}``; the response carries the ``secret_key`` (SK),
    the only time it is shown. ``revoke`` stops one pair at once; ``rotate`` issues a new
    pair on the same account and revokes the old one. Other pairs of the account are untouched.
    """

    console_resource = "access_key"
    console_actions = {"create": "access_key.issue", "revoke": "access_key.revoke", "rotate": "access_key.rotate"}
    serializer_class = AccessKeySerializer

    def get_queryset(self):
        keys = AccessKey.objects.select_related("account").order_by("-created_at", "-id")
        if self.action == "list" and "account" in self.request.query_params:
            account = find_account(self.request.query_params["account"])
            keys = keys.filter(account=account) if account is not None else keys.none()
        return keys

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        account = serializer.validated_data["account"]
        key, sk = services.issue_access_key(request.user, account)
        key.plaintext_secret = sk
        return Response(IssuedAccessKeySerializer(key).data, status=status.HTTP_201_CREATED)

    @extend_schema(summary="Revoke this pair", request=None, responses={200: AccessKeySerializer})
    @action(detail=True, methods=["post"])
    def revoke(self, request, pk=None):
        key = self.get_object()
        services.revoke_access_key(request.user, key)
        return Response(AccessKeySerializer(key).data)

    @extend_schema(
        summary="Replace this pair with a new one",
        description="Issues a new pair on the same account (its SK in this response only) and revokes this one.",
        request=None,
        responses={201: IssuedAccessKeySerializer},
    )
    @action(detail=True, methods=["post"])
    def rotate(self, request, pk=None):
        old = self.get_object()
        if old.revoked_at is not None:
            raise Refused(
                f"{old.access_key} is already revoked; issue a new pair with "
                f'POST /console/api/access-keys/ {{"account": "{old.account.name}"}}.'
            )
        key, sk = services.rotate_access_key(request.user, old)
        key.plaintext_secret = sk
        key.replaces = old.access_key
        return Response(IssuedAccessKeySerializer(key).data, status=status.HTTP_201_CREATED)
