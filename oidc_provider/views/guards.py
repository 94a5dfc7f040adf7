"""Input every endpoint refuses before it reaches oauthlib or the database."""

import re
from functools import wraps

from django.http import JsonResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from oauth2_provider.compat import login_not_required

from .decorated import DecoratedView

MAX_PARAMETER_LENGTH = 8192


# A % not followed by two hex digits: oauthlib's urldecode raises on it.
INVALID_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")


def _problem(request):
    if INVALID_ESCAPE.search(request.META.get("QUERY_STRING", "")):
        return "The query string has an invalid percent-escape; encode '%' as %25."
    for params in (request.GET, request.POST):
        for key, values in params.lists():
            for value in [key, *values]:
                if "\x00" in value:
                    return "A parameter contains a NUL byte; send printable text."
                if len(value) > MAX_PARAMETER_LENGTH:
                    return f"The parameter '{key[:40]}' is longer than {MAX_PARAMETER_LENGTH} characters."
    authorization = request.META.get("HTTP_AUTHORIZATION", "")
    if "\x00" in authorization:
        return "The Authorization header contains a NUL byte."
    if not authorization.isascii():
        # Basic and Bearer credentials are base64 / token68 (RFC 7617, RFC 6750 §2.1): ASCII
        # only; the server decodes a header's raw bytes as Latin-1, which base64 refuses.
        return "The Authorization header must be ASCII: base64-encode 'client_id:client_secret' (RFC 7617)."
    return None


def reject_malformed_input(html=False):
    """400 for NUL bytes (PostgreSQL cannot store them) and absurdly long values."""

    def decorator(view):
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            problem = _problem(request)
            if problem is None:
                return view(request, *args, **kwargs)
            if html:
                context = {"error": "invalid_request", "error_description": problem}
                return render(request, "oidc_provider/error.html", context, status=400)
            response = JsonResponse({"error": "invalid_request", "error_description": problem}, status=400)
            response["Cache-Control"] = "no-store"
            return response

        return wrapper

    return decorator


class MachineEndpoint(DecoratedView):
    """A view that relying parties and resource servers call, never a browser's form:
    CSRF-exempt, open without a login (``LoginRequiredMiddleware``), malformed input refused.

    A view based on one of django-oauth-toolkit's names its undecorated ``dispatch``: DOT's
    is wrapped by ``method_decorator`` in these same two marks, rebuilt on every request.
    """

    view_decorators = (csrf_exempt, login_not_required, reject_malformed_input())
