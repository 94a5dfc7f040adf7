"""A staff user's own console API tokens (django-rest-knox): list, create (shown once), revoke.

The token is stored as a digest; its clear value is in the response to the POST that made it
and nowhere else (no session, no message, no redirect). Listing shows the start of the digest,
never the token or the part of it knox indexes.
"""

from datetime import timedelta

from django.contrib import admin, messages
from django.db import transaction
from django.http import HttpResponseNotAllowed
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from knox.models import get_token_model

from . import audit

# Lifetimes offered when creating a token, in days; the first is preselected.
LIFETIMES = (30, 7, 1, 90)
DIGEST_SHOWN = 12


def digest_prefix(token):
    return token.digest[:DIGEST_SHOWN]


def create_token(user, days=None, *, request=None, actor_label=None):
    """A new token for ``user``, recorded in the audit log; returns (AuthToken, clear token)."""
    AuthToken = get_token_model()
    kwargs = {} if days is None else {"expiry": timedelta(days=days)}
    with transaction.atomic():
        instance, token = AuthToken.objects.create(user=user, **kwargs)
        audit.record(
            audit.API_TOKEN_CREATED, request=request, actor_label=actor_label, target=user,
            target_label=user.get_username(), digest_prefix=digest_prefix(instance),
            expires_at=instance.expiry.isoformat() if instance.expiry else None,
        )
    return instance, token


def _page(request, *, new_token=None, status=200):
    AuthToken = get_token_model()
    now = timezone.now()
    tokens = [
        {"prefix": digest_prefix(t), "created": t.created, "expiry": t.expiry, "expired": bool(t.expiry and t.expiry < now)}
        for t in AuthToken.objects.filter(user=request.user).order_by("-created")
    ]
    context = {
        **admin.site.each_context(request),
        "title": _("My console API tokens"),
        "tokens": tokens,
        "new_token": new_token,
        "lifetimes": LIFETIMES,
        "api_url": reverse("console:api-root"),
    }
    response = TemplateResponse(request, "console/api_tokens.html", context, status=status)
    # A new token is on this page once: never let a cache keep it.
    response["Cache-Control"] = "no-store"
    return response


def api_tokens(request):
    """GET: the user's tokens. POST create: a new one, shown in this response only. POST revoke: one gone."""
    if request.method == "GET":
        return _page(request)
    if request.method != "POST":
        return HttpResponseNotAllowed(["GET", "POST"])
    if request.POST.get("action") == "create":
        try:
            days = int(request.POST.get("days", LIFETIMES[0]))
        except ValueError:
            days = None
        if days not in LIFETIMES:
            messages.error(request, _("Choose a lifetime among those offered: %s days.") % ", ".join(map(str, sorted(LIFETIMES))))
            return _page(request, status=400)
        instance, token = create_token(request.user, days, request=request)
        return _page(request, new_token={"token": token, "prefix": digest_prefix(instance), "expiry": instance.expiry})
    if request.POST.get("action") == "revoke":
        prefix = request.POST.get("token", "")
        AuthToken = get_token_model()
        # Only the user's own tokens; a prefix must name exactly one.
        matches = list(AuthToken.objects.filter(user=request.user, digest__startswith=prefix)[:2]) if len(prefix) == DIGEST_SHOWN else []
        if len(matches) != 1:
            messages.error(request, _("No token of yours starts with that digest; reload the page and try again."))
            return redirect("console:api-tokens")
        with transaction.atomic():
            matches[0].delete()
            audit.record(
                audit.API_TOKEN_REVOKED, request=request, target=request.user,
                target_label=request.user.get_username(), digest_prefix=prefix,
            )
        messages.success(request, _("Token %(prefix)s… revoked: it no longer works.") % {"prefix": prefix})
        return redirect("console:api-tokens")
    messages.error(request, _("Unknown action: use the buttons on this page."))
    return _page(request, status=400)
