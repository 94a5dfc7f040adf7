"""The userinfo endpoint (OIDC Core 5.3)."""

from django.http import JsonResponse
from oauth2_provider.views import UserInfoView as DOTUserInfoView
from oauth2_provider.views.mixins import OIDCOnlyMixin

from .. import cors
from ..store import store
from ..validators import token_checksum
from .guards import MachineEndpoint

INSUFFICIENT_SCOPE = "This access token was not granted the openid scope for a user; request scope=openid."
TOKEN_IN_URL = "Send the access token in the Authorization header (Bearer), not in the URL's query string."


def _bearer(request):
    scheme, _, token = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


class UserInfoView(cors.Preflight, MachineEndpoint, DOTUserInfoView):
    preflight_methods = ("GET", "POST")
    dispatch = OIDCOnlyMixin.dispatch  # see MachineEndpoint

    def _create_userinfo_response(self, request):
        if "access_token" in request.GET:
            # RFC 9700 4.3.2: a token in a URL ends up in logs, history and Referer headers.
            response = JsonResponse({"error": "invalid_request", "error_description": TOKEN_IN_URL}, status=400)
            response["WWW-Authenticate"] = f'Bearer error="invalid_request", error_description="{TOKEN_IN_URL}"'
            response["Cache-Control"] = "no-store"
            return response
        response = super()._create_userinfo_response(request)
        if response.status_code >= 400 and response.content:
            response["Content-Type"] = "application/json"  # oauthlib's error body, sent without a type
        if response.status_code in (401, 403) and self._insufficient_scope(request, response):
            response = JsonResponse({"error": "insufficient_scope", "error_description": INSUFFICIENT_SCOPE}, status=403)
            response["WWW-Authenticate"] = f'Bearer error="insufficient_scope", error_description="{INSUFFICIENT_SCOPE}"'
        response["Cache-Control"] = "no-store"
        response["Access-Control-Allow-Origin"] = "*"
        return response

    @staticmethod
    def _insufficient_scope(request, response):
        """RFC 6750 §3.1: a valid token without `openid` (or without a user) is 403, not 401.

        oauthlib answers 401 for a token lacking `openid`; only then is the token read again.
        """
        if response.status_code == 403:
            return True
        token = _bearer(request)
        if not token:
            return False
        access_token = store.read_access_token(token_checksum(token))
        if access_token is None or access_token.is_expired():
            return False
        return access_token.user_id is None or "openid" not in access_token.scope.split()
