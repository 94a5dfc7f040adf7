"""The token endpoint (RFC 6749 §3.2)."""

import json

from django.http import HttpResponse
from django.views.generic import View
from oauth2_provider.signals import app_authorized
from oauth2_provider.views import TokenView as DOTTokenView

from .. import config_cache, cors, refusals
from ..store import store
from ..validators import token_checksum
from .guards import MachineEndpoint

SENSITIVE_POST_PARAMETERS = ("password", "client_secret")


class TokenView(cors.Preflight, MachineEndpoint, DOTTokenView):
    dispatch = View.dispatch  # see MachineEndpoint

    def post(self, request, *args, **kwargs):
        # Not DOT's post(): it sends the device grant to its device-flow handler, which reads
        # a device_code the request may lack. This server offers no device grant, so that
        # request goes to oauthlib like any other and gets unsupported_grant_type.
        if request.POST.get("grant_type") == "client_credentials":
            response = self.client_credentials_response(request)
        else:
            response = self.authorization_flow_token_response(request)
        response["Cache-Control"] = "no-store"
        response["Pragma"] = "no-cache"
        client_id = request.POST.get("client_id")
        if cors.allow_client_origin(request, response, client_id) is False and response.status_code == 200:
            # Answered, but the browser keeps the answer from the application (an error
            # response was announced with its own rule already).
            refusals.origin_refused(request, client_id)
        return response

    def client_credentials_response(self, request):
        # Such a request writes one row and reads nothing else: it decides on this process's
        # copy of the configuration without reading its version. The INSERT takes effect
        # only under that version, and any other answer reads it first; when it moved, the
        # request runs again on the version read (nothing was written or announced).
        try:
            with config_cache.assuming():
                response = self.authorization_flow_token_response(request)
                config_cache.confirm()
            return response
        except config_cache.Changed:
            return self.authorization_flow_token_response(request)

    def authorization_flow_token_response(self, request, *args, **kwargs):
        # What sensitive_post_parameters() does, without a decorator built per request:
        # error reports never show these parameters.
        request.sensitive_post_parameters = SENSITIVE_POST_PARAMETERS
        url, headers, body, status = self.create_token_response(request)
        if status == 200 and app_authorized.has_listeners():
            # DOT's signal, with the token read back as DOT does; only when someone listens.
            access_token = store.read_access_token(token_checksum(json.loads(body)["access_token"]))
            app_authorized.send(sender=self, request=request, token=access_token)
        # An error raised while the tokens are saved (a code spent meanwhile) reaches DOT's
        # handler, which passes on no headers: the body is JSON all the same (RFC 6749 §5.2).
        response = HttpResponse(content=body, status=status, content_type="application/json")
        for name, value in headers.items():
            response[name] = value
        return response

    def http_method_not_allowed(self, request, *args, **kwargs):
        response = super().http_method_not_allowed(request, *args, **kwargs)
        response["Cache-Control"] = "no-store"
        return response
