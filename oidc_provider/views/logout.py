"""RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0)."""

from django.contrib.auth import logout
from django.shortcuts import render
from oauth2_provider.exceptions import (
    InvalidOIDCClientError,
    InvalidOIDCRedirectURIError,
)
from oauth2_provider.models import get_access_token_model, get_refresh_token_model
from oauth2_provider.views import RPInitiatedLogoutView

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
        user = self.request.user
        # Only the session's own user logs out their tokens: an ID token alone (which may
        # have leaked) is a hint, not a credential to revoke someone's tokens with.
        if application is not None and user.is_authenticated and token_user in (None, user):
            # The relying party that logs the user out loses its tokens; other applications
            # keep theirs (a user logging out of one app keeps their other apps' offline access).
            access_tokens = get_access_token_model().objects.filter(user=user, application=application)
            get_refresh_token_model().objects.filter(user=user, application=application, revoked__isnull=True).delete()
            access_tokens.delete()
        if post_logout_redirect_uri:
            return super().do_logout(application, post_logout_redirect_uri, state, token_user=None)
        logout(self.request)
        return render(self.request, "oidc_provider/logged_out.html", {"application": application})
