"""RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0)."""

from django.utils.decorators import method_decorator
from oauth2_provider.views import RPInitiatedLogoutView

from .guards import reject_malformed_input
from .pages import hosted_page


@method_decorator([hosted_page, reject_malformed_input(html=True)], name="dispatch")
class LogoutView(RPInitiatedLogoutView):
    template_name = "oidc_provider/logout_confirm.html"
