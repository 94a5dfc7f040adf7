"""Revoking an application's tokens, from its page."""

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.utils.translation import gettext as _
from django.utils.translation import ngettext


from .. import services
from ..permissions import require
from .common import admin_context, admin_url


def revocation_message(revoked):
    """What a services.Revoked stands for, in words."""
    return _("Revoked %(access)s, %(refresh)s and %(codes)s.") % {
        "access": ngettext("%d access token", "%d access tokens", revoked.access_tokens) % revoked.access_tokens,
        "refresh": ngettext("%d refresh token", "%d refresh tokens", revoked.refresh_tokens) % revoked.refresh_tokens,
        "codes": ngettext("%d unused authorization code", "%d unused authorization codes", revoked.codes) % revoked.codes,
    }


def revoke_application_tokens(request, model_admin, object_id):
    """Confirm, then revoke every token of one application (all its users must sign in again)."""
    require(request, "tokens.revoke")
    # The admin's own rows: an access account's application is not one of them.
    app = get_object_or_404(model_admin.get_queryset(request), pk=object_id)
    if request.method == "POST":
        forget = bool(request.POST.get("forget_consents"))
        revoked = services.revoke_tokens(request.user, application=app, forget_consents=forget, request=request)
        text = revocation_message(revoked)
        if forget:
            text += " " + ngettext("Forgot %d consent.", "Forgot %d consents.", revoked.consents) % revoked.consents
        messages.success(request, text)
        return redirect(admin_url("oidc_provider_application_change", app.pk))
    access, refresh, consents = services.live_token_counts(app)
    context = admin_context(
        request,
        model_admin,
        _("Revoke all tokens of %(name)s?") % {"name": app.name or app.client_id},
        original=app,
        object=app,
        text=_(
            "Every access token, refresh token and unused authorization code of this application stops "
            "working now; its users have to sign in again. The application itself and its secret are kept."
        ),
        facts=[
            _("Live access tokens: %d") % access,
            _("Live refresh tokens: %d") % refresh,
            _("Consents: %d") % consents,
        ],
        checkbox={"name": "forget_consents", "label": _("Also forget the users' consents (they will be asked again)")},
        button=_("Yes, revoke all tokens"),
        cancel_url=admin_url("oidc_provider_application_change", app.pk),
        danger=True,
    )
    return TemplateResponse(request, "console/admin/confirm.html", context)
