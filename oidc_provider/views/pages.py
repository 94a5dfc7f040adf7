"""What every hosted page (login, consent, logout, errors) shares."""

from datetime import timedelta
from functools import wraps
from urllib.parse import urlsplit

from django.conf import settings
from django.http import HttpResponse, HttpResponseServerError
from django.shortcuts import render
from django.template import loader
from django.utils import translation
from django.utils.module_loading import import_string


def ui_language(request):
    """The first language of the request's ``ui_locales`` (OIDC Core 3.1.2.1, RP-Initiated
    Logout 2) that the pages speak, or None. A language the user chose with the switcher
    (its cookie) wins over the relying party's hint."""
    if settings.LANGUAGE_COOKIE_NAME in request.COOKIES:
        return None
    for tag in request.GET.get("ui_locales", "").split()[:10]:
        try:
            return translation.get_supported_language_variant(tag.lower())
        except LookupError:
            continue
    return None


CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data: https:; style-src 'self' 'unsafe-inline'; "
    "script-src 'self'; frame-ancestors 'none'; form-action 'self' *"
)


def hosted_page(view):
    """Hosted pages cannot be framed, load nothing from elsewhere, and speak the language
    the relying party asked for in ``ui_locales`` when they can."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        language = ui_language(request)
        if language is not None:
            translation.activate(language)
            request.LANGUAGE_CODE = language
        response = view(request, *args, **kwargs)
        response["X-Frame-Options"] = "DENY"
        response.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        return response

    return wrapper


def allow_frames(response, urls):
    """Let a hosted page frame these URLs (front-channel logout), and nothing else from
    elsewhere: the page's policy with their origins as its only frame sources."""
    origins = sorted({"{0}://{1}".format(*urlsplit(url)[:2]) for url in urls})
    if origins:
        response["Content-Security-Policy"] = CONTENT_SECURITY_POLICY + "; frame-src " + " ".join(origins)
    return response


def csrf_failure(request, reason=""):
    """CSRF_FAILURE_VIEW: the form expired or the browser kept no cookie; say how to get past it.
    Django's reason is not shown: it helps no user and names the check."""
    return hosted_page(lambda r: render(r, "oidc_provider/csrf_failure.html", status=403))(request)


def _cool_off(request):
    """How long a lockout lasts, read from AXES_COOLOFF_TIME as django-axes reads it: a
    timedelta, hours as a number, or a callable (or its dotted path) given the request.
    Read here rather than from axes, so the provider imports without the optional extra."""
    value = getattr(settings, "AXES_COOLOFF_TIME", None)
    if isinstance(value, str):
        value = import_string(value)
    if callable(value):
        value = value(request)
    if isinstance(value, (int, float)):
        value = timedelta(hours=value)
    return value


def locked_out(request, original_response=None, credentials=None):
    """django-axes' lockout response (AXES_LOCKOUT_CALLABLE), as a hosted page."""
    context = {"username": (credentials or {}).get("username"), "cooloff_timedelta": _cool_off(request)}
    return hosted_page(lambda r: render(r, "oidc_provider/locked_out.html", context, status=429))(request)


def _plain_error(status, message):
    # No template, no CSRF processing: these run when the request itself could not be read.
    response = HttpResponse(message, status=status, content_type="text/plain; charset=utf-8")
    response["X-Frame-Options"] = "DENY"
    return response


def bad_request(request, exception=None):
    """handler400: the request could not be read (bad charset, bad host, broken body)."""
    return _plain_error(400, "Bad request: the request could not be read. Send UTF-8 form data to a known host.")


def permission_denied(request, exception=None):
    return _plain_error(403, "Forbidden.")


def page_not_found(request, exception=None):
    """handler404: a hosted page in the user's language. The exception's text is not shown
    (Django's may name URL patterns)."""
    return hosted_page(lambda r: render(r, "oidc_provider/404.html", status=404))(request)


def server_error(request):
    """handler500: a page that needs no request context, database or static files, since any
    of them may be what failed; plain text if even the template cannot be rendered."""
    try:
        html = loader.get_template("oidc_provider/500.html").render()
    except Exception:
        return _plain_error(500, "Server error. The problem has been logged; try again later.")
    response = HttpResponseServerError(html)
    response["X-Frame-Options"] = "DENY"
    response["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    return response
