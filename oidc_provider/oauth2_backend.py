"""django-oauth-toolkit's bridge from a Django request to oauthlib, passing headers that are text.

DOT hands oauthlib a copy of the whole WSGI environ as the request's headers. oauthlib
converts every entry to text and indexes it case-insensitively, and for each entry that is
not text (``wsgi.version``, ``wsgi.input``, the server's socket and file wrapper) it raises
and catches an exception: on every token, introspection and revocation request. Here only
the environ's text entries go, the CGI variables and HTTP headers: still all that an
authentication backend finds in ``META`` for the password grant (``build_http_request``).
"""

from oauth2_provider import oauth2_backends


class OAuthLibCore(oauth2_backends.OAuthLibCore):
    def extract_headers(self, request):
        # DOT's headers (its own additions are text too), less what is not text.
        return {name: value for name, value in super().extract_headers(request).items() if type(value) is str}

    def _get_escaped_full_path(self, request):
        # Nothing to escape without a query string (DOT's parses and rebuilds the URL).
        if not request.META.get("QUERY_STRING"):
            return request.get_full_path()
        return super()._get_escaped_full_path(request)
