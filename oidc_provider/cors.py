"""CORS for the endpoints a browser application calls itself: token, userinfo, revocation.

An origin is let in where an application lists it among its allowed origins (an SPA's and a
native app's default to the origins of their redirect URIs). A preflight carries no client
credentials, so it is answered for an origin that some application lists; the request that
follows is answered for the origin of the client it names.
"""

from urllib.parse import urlsplit

from django.http import HttpResponse

from .models import Application

PREFLIGHT_MAX_AGE = 600  # seconds a browser may reuse a preflight's answer
ALLOWED_HEADERS = "Authorization, Content-Type"


def origins_of(uris):
    """The http(s) origins of ``uris`` (redirect URIs), in order, each once."""
    origins = []
    for uri in uris:
        try:
            parts = urlsplit(uri)
        except ValueError:
            continue
        origin = f"{parts.scheme}://{parts.netloc}".lower()
        if parts.scheme in ("https", "http") and parts.netloc and origin not in origins:
            origins.append(origin)
    return origins


def registered(origin):
    """Whether some application lists ``origin`` among its allowed origins."""
    listed = Application.objects.filter(allowed_origins__contains=origin).values_list("allowed_origins", flat=True)
    return any(origin in origins.split() for origins in listed)


def allow_client_origin(request, response, client_id):
    """Let ``request``'s origin read ``response`` when the client it names lists that origin,
    on errors too, so an SPA can read `invalid_grant` and start over. True when let in, False
    when the client is known and does not list the origin, None otherwise."""
    origin = request.META.get("HTTP_ORIGIN")
    if not origin or not client_id:
        return None
    application = Application.objects.filter(client_id=client_id).only("allowed_origins").first()
    if application is None:
        return None
    if origin in application.allowed_origins.split():
        response["Access-Control-Allow-Origin"] = origin
        response["Vary"] = "Origin"
        return True
    return False


class Preflight:
    """A view's answer to OPTIONS: the CORS preflight for ``preflight_methods``."""

    preflight_methods = ("POST",)

    def options(self, request, *args, **kwargs):
        response = HttpResponse(status=204)
        response["Vary"] = "Origin"
        origin = request.META.get("HTTP_ORIGIN")
        if origin and registered(origin):
            response["Access-Control-Allow-Origin"] = origin
            response["Access-Control-Allow-Methods"] = ", ".join(self.preflight_methods)
            response["Access-Control-Allow-Headers"] = ALLOWED_HEADERS
            response["Access-Control-Max-Age"] = str(PREFLIGHT_MAX_AGE)
        return response
