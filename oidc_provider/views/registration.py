"""The registration endpoint (RFC 7591) and the client configuration endpoint (RFC 7592),
answered only when dynamic registration is on."""

import json

from django.http import HttpResponse, JsonResponse
from django.views.generic import View

from .. import registration
from ..conf import oidc_settings
from .discovery import endpoint
from .guards import MachineEndpoint

MAX_BODY = 64 * 1024


def _json(data, status=200):
    response = JsonResponse(data, status=status)
    response["Cache-Control"] = "no-store"  # secrets and tokens (RFC 7591 3.2.1)
    response["Pragma"] = "no-cache"
    return response


def _error(error, description, status=400):
    response = _json({"error": error, "error_description": description}, status=status)
    if status == 401:
        # RFC 6750 3: a challenge; its error only when a token was presented.
        response["WWW-Authenticate"] = "Bearer" if error == "invalid_request" else f'Bearer error="{error}"'
    return response


def _bearer(request):
    scheme, _, token = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def _metadata(request):
    if len(request.body) > MAX_BODY:
        raise registration.RegistrationError("invalid_client_metadata", f"The body is larger than {MAX_BODY} bytes.")
    if request.content_type != "application/json":
        raise registration.RegistrationError("invalid_client_metadata", "Send the metadata as application/json.")
    try:
        return json.loads(request.body)
    except (ValueError, RecursionError):
        raise registration.RegistrationError("invalid_client_metadata", "The body is not JSON; send a JSON object.")


def _response(application, token):
    data = registration.metadata_of(application)
    data["registration_access_token"] = token
    data["registration_client_uri"] = endpoint("registration") + "/" + application.client_id
    if application.plaintext_secret:
        data["client_secret"] = application.plaintext_secret
    return data


class _Endpoint(MachineEndpoint, View):
    def dispatch(self, request, *args, **kwargs):
        if not oidc_settings.DYNAMIC_REGISTRATION:
            return _error("not_found", "Dynamic client registration is off on this provider.", status=404)
        try:
            return super().dispatch(request, *args, **kwargs)
        except registration.RegistrationError as e:
            return _error(e.error, e.description)


class RegistrationView(_Endpoint):
    http_method_names = ["post"]

    def post(self, request):
        token = _bearer(request)
        if not token:
            return _error("invalid_request", "Send the initial access token an admin issued you as "
                          "'Authorization: Bearer <token>' (RFC 7591 3).", status=401)
        initial = registration.usable_initial_token(token)
        if initial is None:
            return _error("invalid_token", "The initial access token is unknown, expired or revoked; ask an admin "
                          "for a new one.", status=401)
        application, registration_token = registration.register(_metadata(request), initial)
        return _json(_response(application, registration_token), status=201)


class ClientConfigurationView(_Endpoint):
    http_method_names = ["get", "put", "delete"]

    def _authenticated(self, request, client_id):
        # 401 for a wrong client too, so the answer never says whether a client exists.
        return registration.registered_application(client_id, _bearer(request))

    def get(self, request, client_id):
        application = self._authenticated(request, client_id)
        if application is None:
            return _refused(request)
        return _json(_response(application, _bearer(request)))

    def put(self, request, client_id):
        application = self._authenticated(request, client_id)
        if application is None:
            return _refused(request)
        registration.update(application, _metadata(request))
        return _json(_response(application, _bearer(request)))

    def delete(self, request, client_id):
        application = self._authenticated(request, client_id)
        if application is None:
            return _refused(request)
        registration.delete(application)
        return HttpResponse(status=204)


def _refused(request):
    if not _bearer(request):
        return _error("invalid_request", "Send the registration access token as 'Authorization: Bearer <token>' "
                      "(RFC 7592 3).", status=401)
    return _error("invalid_token", "The registration access token is not this client's (RFC 7592 3).", status=401)
