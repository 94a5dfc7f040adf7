from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.middleware.csrf import get_token
from django.utils.html import escape


@login_required
def home(request):
    return HttpResponse(
        "<!doctype html><title>RP site</title>"
        f'<p id="who">Signed in to the RP site as {escape(request.user.email)}</p>'
        '<form method="post" action="/oidc/logout/">'
        f'<input type="hidden" name="csrfmiddlewaretoken" value="{get_token(request)}">'
        '<button id="logout" type="submit">Sign out</button></form>'
    )


def logged_out(request):
    state = escape(request.GET.get("state", ""))
    who = "anonymous" if not request.user.is_authenticated else escape(request.user.email)
    return HttpResponse(
        f'<!doctype html><title>Signed out</title><p id="bye">Signed out of the RP site ({who})</p>'
        f'<p id="state">{state}</p>'
    )


def provider_logout_url(request):
    """OIDC_OP_LOGOUT_URL_METHOD: RP-initiated logout at the provider, back to this site."""
    params = {
        "id_token_hint": request.session.get("oidc_id_token", ""),
        "post_logout_redirect_uri": f"{settings.RP_BASE_URL}/logged-out/",
        "client_id": settings.OIDC_RP_CLIENT_ID,
        "state": "rp-site-logout",
    }
    return f"{settings.OIDC_OP_END_SESSION_ENDPOINT}?{urlencode(params)}"
