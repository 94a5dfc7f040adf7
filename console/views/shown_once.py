"""Secrets shown once (a new client secret, a new SK), passed from the request that made them
to the page that shows them, encrypted.

The session holds only ciphertext, and its key travels in a short-lived cookie of its own
(HttpOnly, SameSite=Strict, scoped to the admin), so neither the session table nor the
browser alone holds the secret. The page that shows them pops the ciphertext and drops the
cookie: a reload finds nothing.
"""

import json

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings
from django.shortcuts import redirect
from django.urls import reverse

SECRET_SESSION_KEY = "console.shown_once.client_secret"
KEYS_SESSION_KEY = "console.shown_once.access_keys"
SHOWN_ONCE_COOKIE = "console_shown_once"
# Long enough to open the page the redirect points to; a secret not shown by then is lost
# (regenerate it or rotate the pair).
SHOWN_ONCE_SECONDS = 300


def _shown_once_fernet(request):
    """The cipher of this browser's pending secrets: the key in its cookie, or a new one."""
    key = getattr(request, "_console_shown_once_key", None) or request.COOKIES.get(SHOWN_ONCE_COOKIE, "")
    try:
        fernet = Fernet(key)
    except (ValueError, TypeError):
        key = Fernet.generate_key().decode()
        fernet = Fernet(key)
    request._console_shown_once_key = key
    return fernet


def _seal(request, value):
    return _shown_once_fernet(request).encrypt(json.dumps(value).encode()).decode()


def _open(request, token):
    key = request.COOKIES.get(SHOWN_ONCE_COOKIE, "")
    if not isinstance(token, str) or not key:
        return None
    try:
        return json.loads(Fernet(key).decrypt(token.encode(), ttl=SHOWN_ONCE_SECONDS))
    except (InvalidToken, ValueError, TypeError):
        return None


def shown_once(request, response):
    """Give ``response`` the cookie that opens what this request stashed, or drop the cookie
    once nothing is pending; returns ``response``."""
    key = getattr(request, "_console_shown_once_key", None)
    path = reverse("admin:index")
    if key is not None:
        response.set_cookie(
            SHOWN_ONCE_COOKIE, key, max_age=SHOWN_ONCE_SECONDS, path=path,
            secure=settings.SESSION_COOKIE_SECURE, httponly=True, samesite="Strict",
        )
    elif SHOWN_ONCE_COOKIE in request.COOKIES and not (
        request.session.get(SECRET_SESSION_KEY) or request.session.get(KEYS_SESSION_KEY)
    ):
        response.delete_cookie(SHOWN_ONCE_COOKIE, path=path, samesite="Strict")
    response["Cache-Control"] = "no-store"
    return response


def shown_once_redirect(request, url):
    """The redirect to the page that shows what this request stashed."""
    return shown_once(request, redirect(url))


def stash_client_secret(request, application, secret):
    shown = request.session.get(SECRET_SESSION_KEY, {})
    shown[str(application.pk)] = _seal(request, {"client_id": application.client_id, "secret": secret})
    request.session[SECRET_SESSION_KEY] = shown


def pop_client_secret(request, application):
    shown = request.session.get(SECRET_SESSION_KEY, {})
    entry = _open(request, shown.pop(str(application.pk), None))
    if shown:
        request.session[SECRET_SESSION_KEY] = shown
    else:
        request.session.pop(SECRET_SESSION_KEY, None)
    request.session.modified = True
    if isinstance(entry, dict) and entry.get("client_id") == application.client_id and not application.is_public:
        return entry.get("secret")
    return None


def stash_access_keys(request, pairs):
    """Keep (AccessKey, sk) pairs, sealed, for the one page that shows them."""
    request.session[KEYS_SESSION_KEY] = _seal(
        request, [{"key_id": key.pk, "access_key": key.access_key, "secret_key": sk} for key, sk in pairs]
    )


def pop_access_keys(request):
    shown = _open(request, request.session.pop(KEYS_SESSION_KEY, None))
    return [e for e in shown if isinstance(e, dict)] if isinstance(shown, list) else []
