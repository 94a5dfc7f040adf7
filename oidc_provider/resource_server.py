"""Protecting an API with our access tokens (RFC 6750), for DRF views.

A resource server in the same site checks tokens against the database directly; one
elsewhere calls the introspection endpoint.
"""

from oauth2_provider.contrib.rest_framework import OAuth2Authentication, TokenHasScope
from rest_framework import exceptions
from rest_framework.views import APIView


class BearerTokenAuthentication(OAuth2Authentication):
    www_authenticate_realm = "api"


class ProtectedResourceView(APIView):
    """A DRF view that needs a bearer token with ``required_scopes``.

    401 with ``WWW-Authenticate: Bearer`` without a valid token; 403 with
    ``error="insufficient_scope"`` when the token lacks a scope (RFC 6750 §3.1).
    """

    authentication_classes = [BearerTokenAuthentication]
    permission_classes = [TokenHasScope]
    required_scopes = []

    def permission_denied(self, request, message=None, code=None):
        if request.auth is None:
            raise exceptions.NotAuthenticated()
        raise exceptions.PermissionDenied(
            f"This token lacks a scope this resource needs: {' '.join(self.required_scopes)}.", code="insufficient_scope"
        )

    def handle_exception(self, exc):
        response = super().handle_exception(exc)
        if isinstance(exc, exceptions.PermissionDenied):
            response["WWW-Authenticate"] = (
                f'Bearer realm="api", error="insufficient_scope", scope="{" ".join(self.required_scopes)}"'
            )
        return response
