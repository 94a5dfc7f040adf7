"""The signed-in user's own page: who they are, the applications they allowed, sign out."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from ..models import Consent
from .pages import hosted_page


@hosted_page
@never_cache
@require_safe
@login_required
def account(request):
    """Anonymous visitors go to the login page (LOGIN_URL) and come back here."""
    consents = (Consent.objects.filter(user=request.user).select_related("application")
                .order_by("-updated_at", "application__name"))
    return render(request, "oidc_provider/account.html", {"consents": consents})
