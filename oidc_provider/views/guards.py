"""Input every endpoint refuses before it reaches oauthlib or the database (CONTRACT §7)."""

import re
from functools import wraps

from django.http import JsonResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from oauth2_provider.compat import login_not_required

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
    if "\x00" in request.META.get("HTTP_AUTHORIZATION", ""):
        return "The Authorization header contains a NUL byte."
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


class MachineEndpoint:
    """A view that relying parties and resource servers call, never a browser's form:
    CSRF-exempt, open without a login (``LoginRequiredMiddleware``), malformed input refused.

    The decorators wrap the view ``as_view()`` returns, once, as DRF's ``APIView`` does:
    ``method_decorator`` on ``dispatch`` builds its decorators again on every request. For
    the same reason a view based on one of django-oauth-toolkit's, whose ``dispatch`` is so
    decorated (with the same two marks), names its undecorated ``dispatch``.
    """

    @classmethod
    def as_view(cls, **initkwargs):
        return csrf_exempt(login_not_required(reject_malformed_input()(super().as_view(**initkwargs))))
