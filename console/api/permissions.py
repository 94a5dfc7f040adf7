"""Who may use the console API: active staff users, by session or by API token, each request
checked against the same permissions as the admin pages (``console.permissions``)."""

from drf_spectacular.contrib.knox_auth_token import KnoxTokenScheme
from knox.auth import TokenAuthentication
from rest_framework.authentication import SessionAuthentication
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.permissions import BasePermission

from console.permissions import allowed, is_console_user

from .parsers import RefuseMalformedInput


# DRF action -> the console action it is, for the plain model operations of a resource.
# OPTIONS is DRF's "metadata": it describes the resource, so it needs the right to read it.
MODEL_ACTIONS = {
    "list": "view",
    "retrieve": "view",
    "metadata": "view",
    "create": "add",
    "update": "change",
    "partial_update": "change",
    "destroy": "delete",
}


class ConsoleTokenAuthentication(TokenAuthentication):
    """django-rest-knox's tokens (a digest stored; ``Authorization: Token <key>``).

    A key that is not UTF-8 is an invalid token (401), not an error in the server.
    """

    def authenticate_credentials(self, token):
        try:
            token.decode("utf-8")
        except UnicodeDecodeError:
            raise AuthenticationFailed("Invalid token.") from None
        return super().authenticate_credentials(token)


class ConsoleTokenScheme(KnoxTokenScheme):
    """The OpenAPI schema names the console's token as it names knox's (``Token <key>``)."""

    target_class = ConsoleTokenAuthentication


class ConsolePermission(BasePermission):
    """An active staff user holding the permissions of the console action the request is.

    The view names its resource (``console_resource``, e.g. ``"application"``) and any extra
    actions (``console_actions``, DRF action -> console action). A request whose action has no
    rule is refused, so an endpoint added without one is closed, not open.
    """

    message = (
        "The console API is for staff users only: sign in to /admin/ with a staff account, or send "
        "'Authorization: Token <key>' with a staff user's token (create one at /console/tokens/)."
    )
    denied = "You do not have the permission to do this ({action}); ask an administrator for a role that includes it."

    def has_permission(self, request, view):
        if not is_console_user(request.user):
            return False
        if not hasattr(view, request.method.lower()):
            return True  # no such method here: let DRF answer 405
        action = console_action(view, request)
        if allowed(request.user, action):
            return True
        self.message = self.denied.format(action=action or "an action without a rule")
        return False


def console_action(view, request):
    """The console action a request to ``view`` is, or None when the view has no rule for it."""
    drf_action = getattr(view, "action", None)
    extra = getattr(view, "console_actions", {})
    if drf_action in extra:
        return extra[drf_action]
    if drf_action is None:  # an APIView: by HTTP method
        return extra.get(request.method.lower())
    resource = getattr(view, "console_resource", None)
    if resource and drf_action in MODEL_ACTIONS:
        return f"{resource}.{MODEL_ACTIONS[drf_action]}"
    return None


class ConsoleAPIMixin(RefuseMalformedInput):
    """Authentication and permission every console API view shares.

    Token first, so an anonymous request gets 401 with ``WWW-Authenticate: Token`` (with
    session first DRF can only answer 403). A session request still has CSRF enforced on
    unsafe methods by SessionAuthentication; a token request cannot be forged by a browser.
    """

    authentication_classes = [ConsoleTokenAuthentication, SessionAuthentication]
    permission_classes = [ConsolePermission]
