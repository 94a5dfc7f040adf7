"""Token introspection (RFC 7662) and revocation (RFC 7009), both client-authenticated."""

from functools import cache

from django.http import HttpResponse
from django.views.generic import View
from oauth2_provider.views import RevokeTokenView as DOTRevokeTokenView
from oauth2_provider.views.mixins import OAuthLibMixin

from .. import cors
from ..validators import ConfidentialClientsOnly
from .guards import MachineEndpoint


@cache
def _confidential_only(validator):
    """The configured validator, answering confidential clients only (made once per class)."""
    return type(f"Introspection{validator.__name__}", (ConfidentialClientsOnly, validator), {})


def _no_store(response):
    response["Cache-Control"] = "no-store"
    response["Pragma"] = "no-cache"
    return response


class IntrospectionView(MachineEndpoint, OAuthLibMixin, View):
    @classmethod
    def get_validator_class(cls):
        return _confidential_only(super().get_validator_class())

    def post(self, request, *args, **kwargs):
        core = self.get_oauthlib_core()
        uri, method, body, headers = core._extract_params(request)
        headers, body, status = core.server.create_introspect_response(uri, method, body, headers)
        response = HttpResponse(body, status=status, content_type="application/json")
        for name, value in headers.items():
            response[name] = value
        return _no_store(response)


class RevocationView(cors.Preflight, MachineEndpoint, DOTRevokeTokenView):
    """DOT's revocation: a client may revoke only its own tokens; revoking an access token revokes its refresh token."""

    dispatch = View.dispatch  # see MachineEndpoint

    def post(self, request, *args, **kwargs):
        response = super().post(request, *args, **kwargs)
        cors.allow_client_origin(request, response, request.POST.get("client_id"))
        return _no_store(response)
