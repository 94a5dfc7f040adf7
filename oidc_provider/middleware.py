"""A short way through the middleware for the machine-to-machine endpoints.

Token, userinfo, introspection, revocation, discovery and JWKS are called by relying parties
and resource servers, never by a browser session: they read no session, user, message or
CSRF token (they are CSRF-exempt by design), and their error texts are ASCII English (RFC
6749 §5.2), so the site's whole middleware stack is work they do not need. Placed right after
``SecurityMiddleware`` (and WhiteNoise), ``ProtocolEndpointMiddleware`` calls such a view
directly; the middleware above it still sees the response. Every other URL goes down the
whole stack.

A view takes part when it is wrapped in ``protocol_endpoint()`` (``oidc_provider.urls`` does
it). With ``ATOMIC_REQUESTS`` on any database the middleware steps aside, so that setting
keeps its meaning.
"""

from django.conf import settings
from django.urls import Resolver404, get_resolver, get_urlconf
from django.utils import translation


def protocol_endpoint(view):
    """Mark a view as one ``ProtocolEndpointMiddleware`` may call without the rest of the stack."""
    view.protocol_endpoint = True
    return view


class ProtocolEndpointMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response
        self.enabled = not any(db.get("ATOMIC_REQUESTS") for db in settings.DATABASES.values())
        # Path -> match of a protocol endpoint without URL arguments, so a hot path is not
        # resolved anew on every request. Tied to the resolver it came from, so a new URLconf
        # (clear_url_caches(), another ROOT_URLCONF) starts afresh.
        self._resolver = None
        self._matches = {}

    def _match(self, request):
        resolver = get_resolver(getattr(request, "urlconf", None) or get_urlconf())
        if resolver is not self._resolver:
            self._resolver, self._matches = resolver, {}
        path = request.path_info
        match = self._matches.get(path)
        if match is None:
            try:
                match = resolver.resolve(path)
            except Resolver404:
                return None
            if getattr(match.func, "protocol_endpoint", False) and not match.args and not match.kwargs:
                self._matches[path] = match
        return match

    def __call__(self, request):
        if self.enabled:
            match = self._match(request)
            if match is not None and getattr(match.func, "protocol_endpoint", False):
                request.resolver_match = match
                # No LocaleMiddleware here: the thread may still hold the last page's
                # language, and protocol errors are the untranslated English texts.
                translation.deactivate_all()
                response = match.func(request, *match.args, **match.kwargs)
                if callable(getattr(response, "render", None)):
                    response = response.render()
                return response
        return self.get_response(request)
