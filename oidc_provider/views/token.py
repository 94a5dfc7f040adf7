"""The token endpoint (RFC 6749 §3.2)."""

from django.db import router, transaction
from django.http import HttpResponse
from django.views.generic import View
from oauth2_provider.models import get_access_token_model
from oauth2_provider.signals import app_authorized
from oauth2_provider.views import TokenView as DOTTokenView

from .. import config_cache
from ..models import Application
from ..validators import RefreshTokenRaced, issued_access_token, read_ahead
from .guards import MachineEndpoint

SENSITIVE_POST_PARAMETERS = ("password", "client_secret")


class TokenView(MachineEndpoint, DOTTokenView):
    dispatch = View.dispatch  # see MachineEndpoint

    def post(self, request, *args, **kwargs):
        # Single use is decided in save_bearer_token's short transaction: a code by its
        # DELETE, a refresh token by a re-check of its row. A request that loses a refresh
        # race is run again inside one transaction, the token's row locked before it is
        # validated, so it is judged as the replay it is (family revoked, invalid_grant).
        # A client-credentials request writes one row and reads nothing: it assumes the
        # configuration this process has, which that INSERT (or, before an error is
        # answered, a read) confirms; when it changed meanwhile, the request runs again.
        grant_type = request.POST.get("grant_type")
        # Not DOT's post(): it sends the device grant to its device-flow handler, which reads
        # a device_code the request may lack. This server offers no device grant, so that
        # request goes to oauthlib like any other and gets unsupported_grant_type.
        respond = self.authorization_flow_token_response
        presented = request.POST.get("refresh_token") if grant_type == "refresh_token" else None
        try:
            with config_cache.assuming(grant_type == "client_credentials"), read_ahead.refresh(presented):
                response = respond(request)
                config_cache.confirm()
        except config_cache.Changed:
            response = respond(request)
        except RefreshTokenRaced:
            with transaction.atomic(using=router.db_for_write(get_access_token_model())):
                response = respond(request)
        response["Cache-Control"] = "no-store"
        response["Pragma"] = "no-cache"
        self.allow_registered_origin(request, response)
        return response

    def authorization_flow_token_response(self, request, *args, **kwargs):
        # What sensitive_post_parameters() does, without a decorator built per request:
        # error reports never show these parameters.
        request.sensitive_post_parameters = SENSITIVE_POST_PARAMETERS
        # DOT's own reads the access token back from the database to send app_authorized;
        # the validator hands over the instance it saved instead.
        token = issued_access_token.set(None)
        try:
            url, headers, body, status = self.create_token_response(request)
            if status == 200 and issued_access_token.get() is not None:
                app_authorized.send(sender=self, request=request, token=issued_access_token.get())
        finally:
            issued_access_token.reset(token)
        # An error raised while the tokens are saved (a code spent meanwhile) reaches DOT's
        # handler, which passes on no headers: the body is JSON all the same (RFC 6749 §5.2).
        response = HttpResponse(content=body, status=status, content_type="application/json")
        for name, value in headers.items():
            response[name] = value
        return response

    @staticmethod
    def allow_registered_origin(request, response):
        """CORS for a browser app's registered origin, on errors too, so an SPA can read
        `invalid_grant` and start over (oauthlib adds it for https successes only)."""
        origin = request.META.get("HTTP_ORIGIN")
        client_id = request.POST.get("client_id")
        if not origin or not client_id:
            return
        application = Application.objects.filter(client_id=client_id).only("allowed_origins").first()
        if application is not None and origin in application.allowed_origins.split():
            response["Access-Control-Allow-Origin"] = origin
            response["Vary"] = "Origin"

    def http_method_not_allowed(self, request, *args, **kwargs):
        response = super().http_method_not_allowed(request, *args, **kwargs)
        response["Cache-Control"] = "no-store"
        return response
