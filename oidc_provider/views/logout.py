"""RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0)."""

from django.contrib.auth import logout
from django.shortcuts import render
from oauth2_provider.exceptions import (
    InvalidOIDCClientError,
    InvalidOIDCRedirectURIError,
)
from oauth2_provider.http import OAuth2ResponseRedirect
from oauth2_provider.views import RPInitiatedLogoutView
from oauthlib.common import add_params_to_uri

from .. import sessions
from ..models import Application
from .decorated import DecoratedView
from .guards import reject_malformed_input
from .pages import hosted_page


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
            return render(self.request, "oidc_provider/logged_out.html",
                          {"application": application, "frames": frames, "continue_to": target})
        return render(self.request, "oidc_provider/logged_out.html", {"application": application, "frames": frames})
