"""The userinfo endpoint (OIDC Core 5.3)."""

import hashlib

from django.http import JsonResponse
from django.utils.decorators import method_decorator
from django.views.decorators.csrf import csrf_exempt
from oauth2_provider.models import get_access_token_model
from oauth2_provider.views import UserInfoView as DOTUserInfoView

from .guards import reject_malformed_input


def _bearer(request):
    scheme, _, token = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


@method_decorator([csrf_exempt, reject_malformed_input()], name="dispatch")
class UserInfoView(DOTUserInfoView):
    def _create_userinfo_response(self, request):
        refused = self._insufficient_scope(request)
        response = refused or super()._create_userinfo_response(request)
        response["Cache-Control"] = "no-store"
        response["Access-Control-Allow-Origin"] = "*"
        return response

    def _insufficient_scope(self, request):
        """RFC 6750 §3.1: a valid token without `openid` (or without a user) is 403, not 401."""
        token = _bearer(request)
        if not token:
            return None
        checksum = hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()
        access_token = get_access_token_model().objects.filter(token_checksum=checksum).first()
        if access_token is None or access_token.is_expired():
            return None
        if access_token.user_id is not None and "openid" in access_token.scope.split():
            return None
        description = "This access token was not granted the openid scope for a user; request scope=openid."
        response = JsonResponse({"error": "insufficient_scope", "error_description": description}, status=403)
        response["WWW-Authenticate"] = f'Bearer error="insufficient_scope", error_description="{description}"'
        return response
