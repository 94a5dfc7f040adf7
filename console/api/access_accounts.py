"""``/console/api/access-accounts/``: programmatic access accounts and their resource permissions."""

from django.db import transaction
from django.db.models import Count, Q
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, serializers, viewsets
from rest_framework.exceptions import ValidationError

from console import audit
from oidc_provider import access_keys
from oidc_provider.models import AccessAccount

from .permissions import ConsoleAPIMixin


class AccessAccountSerializer(serializers.ModelSerializer):
    scopes = serializers.ListField(
        child=serializers.CharField(max_length=100), max_length=100, required=False,
        help_text="Resource permissions: the scopes this account's keys may ask for (e.g. read, write).",
    )
    active = serializers.BooleanField(
        source="is_active", required=False, help_text="An inactive account's key pairs get no tokens (invalid_client)."
    )
    active_keys = serializers.IntegerField(
        read_only=True, help_text="Key pairs not revoked (they authenticate only while the account is active)."
    )

    class Meta:
        model = AccessAccount
        fields = ["id", "name", "description", "scopes", "active", "active_keys", "created_at"]
        read_only_fields = ["id", "created_at"]

    def validate_name(self, value):
        value = value.strip()
        if not value:
            raise ValidationError("Give the account a name.")
        return value

    def validate_scopes(self, value):
        errors = access_keys.validate_scopes(value)
        if errors:
            raise ValidationError(errors)
        return list(dict.fromkeys(value))


@extend_schema_view(
    create=extend_schema(summary="Create an access account", description="Issue its key pairs with POST /console/api/access-keys/."),
    partial_update=extend_schema(description='Deactivate with {"active": false}: its key pairs stop getting tokens at once.'),
)
class AccessAccountViewSet(
    ConsoleAPIMixin,
    mixins.ListModelMixin,
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """Programmatic access accounts: machine identities holding AK/SK pairs (client credentials).

    An account's ``scopes`` are its resource permissions: a token is issued only for scopes
    among them. Accounts are deactivated (``"active": false``), not deleted, so the audit
    log keeps pointing at them.
    """

    console_resource = "access_account"
    serializer_class = AccessAccountSerializer

    def get_queryset(self):
        return AccessAccount.objects.annotate(
            active_keys=Count("keys", filter=Q(keys__revoked_at__isnull=True))
        ).order_by("name")

    def perform_create(self, serializer):
        # The account and its backing service application are made together or not at all.
        with transaction.atomic():
            account = serializer.save()
            audit.record(audit.ACCESS_ACCOUNT_CREATED, request=self.request, target=account, scopes=account.scopes)
        account.active_keys = 0

    def perform_update(self, serializer):
        before = AccessAccountSerializer(serializer.instance).data
        with transaction.atomic():
            account = serializer.save()
            after = AccessAccountSerializer(account).data
            changed = {k: after[k] for k in ("name", "description", "scopes", "active") if after[k] != before[k]}
            if changed:
                audit.record(audit.ACCESS_ACCOUNT_CHANGED, request=self.request, target=account, changed=changed)
