"""What every hosted page (login, consent, logout, errors) shares."""

from functools import wraps

from django.shortcuts import render
from django.utils.translation import gettext as _


def hosted_page(view):
    """Hosted pages cannot be framed, and load nothing from elsewhere."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        response = view(request, *args, **kwargs)
        response["X-Frame-Options"] = "DENY"
        response.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data: https:; style-src 'self' 'unsafe-inline'; "
            "script-src 'self'; frame-ancestors 'none'; form-action 'self' *",
        )
        return response

    return wrapper


def csrf_failure(request, reason=""):
    """A branded, actionable page instead of Django's bare 403 (CSRF_FAILURE_VIEW)."""
    message = _("This form expired or was opened in another window. Go back, reload the page and try again.")
    return hosted_page(lambda r: render(r, "oidc_provider/error.html", {"error": "csrf_failed", "error_description": message}, status=403))(request)


def locked_out(request, credentials=None, *args, **kwargs):
    """django-axes' lockout response (AXES_LOCKOUT_CALLABLE), as a hosted page."""
    from axes.helpers import get_cool_off

    context = {"username": (credentials or {}).get("username"), "cooloff_timedelta": get_cool_off(request)}
    return hosted_page(lambda r: render(r, "oidc_provider/locked_out.html", context, status=429))(request)


def _plain_error(status, message):
    from django.http import HttpResponse

    # No template, no CSRF processing: these run when the request itself could not be read.
    response = HttpResponse(message, status=status, content_type="text/plain; charset=utf-8")
    response["X-Frame-Options"] = "DENY"
    return response


def bad_request(request, exception=None):
    """handler400: the request could not be read (bad charset, bad host, broken body)."""
    return _plain_error(400, "Bad request: the request could not be read. Send UTF-8 form data to a known host.")


def permission_denied(request, exception=None):
    return _plain_error(403, "Forbidden.")


def server_error(request):
    return _plain_error(500, "Server error. The problem has been logged; try again later.")
