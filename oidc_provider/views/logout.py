"""RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0)."""

import jwt
from django.contrib.auth import logout
from django.shortcuts import render
from oauth2_provider.exceptions import (
    InvalidOIDCClientError,
    InvalidOIDCRedirectURIError,
)
from oauth2_provider.http import OAuth2ResponseRedirect
from oauth2_provider.views import RPInitiatedLogoutView
from oauthlib.common import add_params_to_uri

from .. import keys, sessions
from ..models import Application
from .decorated import DecoratedView
from .guards import reject_malformed_input
from .pages import allow_frames, hosted_page


class LogoutView(DecoratedView, RPInitiatedLogoutView):
    view_decorators = (hosted_page, reject_malformed_input(html=True))
    template_name = "oidc_provider/logout_confirm.html"

    def get_request_application(self, id_token, client_id):
        if client_id:
            application = Application.objects.filter(client_id=client_id).first()
            if application is None:
                raise InvalidOIDCClientError()
            return application
        return id_token.application if id_token else None

    def must_prompt(self, token_user):
        # RP-Initiated Logout 2: ask unless the ID token is of the user's current session, so
        # an old ID token sent from another site cannot end this one unasked.
        if super().must_prompt(token_user):
            return True
        return not sessions.is_current(self.request, _hint_sid(self.request))

    def validate_post_logout_redirect_uri(self, application, post_logout_redirect_uri):
        try:
            super().validate_post_logout_redirect_uri(application, post_logout_redirect_uri)
        except (InvalidOIDCClientError, InvalidOIDCRedirectURIError):
            # An unregistered URI is never a redirect target; the user ends on
            # our logged-out page instead.
            self.unregistered_redirect = True

    def do_logout(self, application=None, post_logout_redirect_uri=None, state=None, token_user=None):
        if getattr(self, "unregistered_redirect", False):
            post_logout_redirect_uri = None
        # Ending the login session (a user_logged_out receiver) revokes what was issued in it,
        # for every application it signed into, and tells them; refresh tokens granted for
        # offline_access stay, as they exist to outlive the session (OIDC Core 11).
        logout(self.request)
        # The other applications of the session hear of it in hidden frames (front-channel).
        frames = sessions.frontchannel_frames(self.request)
        if post_logout_redirect_uri:
            target = add_params_to_uri(post_logout_redirect_uri, [("state", state)]) if state else post_logout_redirect_uri
            if not frames:
                return OAuth2ResponseRedirect(target, application.get_allowed_schemes())
            # The frames load before the page moves on, by itself and without script.
            return allow_frames(render(self.request, "oidc_provider/logged_out.html",
                                       {"application": application, "frames": frames, "continue_to": target}), frames)
        return allow_frames(render(self.request, "oidc_provider/logged_out.html",
                                   {"application": application, "frames": frames}), frames)


def _hint_sid(request):
    """The sid of the request's id_token_hint (one this provider signed, expired or not)."""
    hint = request.POST.get("id_token_hint") or request.GET.get("id_token_hint")
    if not hint:
        return None
    try:
        return keys.verify(hint, verify_exp=False).get("sid")
    except jwt.InvalidTokenError:
        return None
