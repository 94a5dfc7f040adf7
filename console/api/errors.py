"""How the console API says no: model validation as per-field 400s, refused actions, conflicts.

The models hold the rules (grant policy, redirect URIs, origins), so the API, the admin and
the CLI refuse the same things with the same words.
"""

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from rest_framework import serializers, status
from rest_framework.exceptions import APIException
from rest_framework.settings import api_settings


class Refused(APIException):
    """An action that cannot be done to this object as it is (400, ``{"detail": ...}``)."""

    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "refused"


class Conflict(APIException):
    """The object is still needed by another one (409)."""

    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"


def full_clean(instance, *, exclude=None, field_names=None):
    """Run the model's validation; raise DRF's ValidationError keyed by API field names.

    ``field_names`` maps a model field to its name in the API where they differ.
    """
    field_names = field_names or {}
    try:
        instance.full_clean(exclude=exclude)
    except ValidationError as error:
        if not hasattr(error, "error_dict"):
            raise serializers.ValidationError({api_settings.NON_FIELD_ERRORS_KEY: error.messages}) from error
        detail = {}
        for field, messages in error.message_dict.items():
            key = api_settings.NON_FIELD_ERRORS_KEY if field == NON_FIELD_ERRORS else field_names.get(field, field)
            detail.setdefault(key, []).extend(messages)
        raise serializers.ValidationError(detail) from error
