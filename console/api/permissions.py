"""Who may use the console API: active staff users, by session or by API token (CONTRACT §8)."""

from rest_framework.authentication import SessionAuthentication, TokenAuthentication
from rest_framework.permissions import BasePermission

from .parsers import RefuseMalformedInput


class IsConsoleAdmin(BasePermission):
    """An active staff user.

    DRF's IsAdminUser checks ``is_staff`` only; checking ``is_active`` as well means a token
    stops working the moment its user is deactivated, not only when it is deleted.
    """

    message = (
        "The console API is for staff users only: sign in to /admin/ with a staff account, or send "
        "'Authorization: Token <key>' with a staff user's token (manage.py console_token create --user USERNAME)."
    )

    def has_permission(self, request, view):
        user = request.user
        return bool(user and user.is_authenticated and user.is_active and user.is_staff)


class ConsoleAPIMixin(RefuseMalformedInput):
    """Authentication and permission every console API view shares.

    Token first, so an anonymous request gets 401 with ``WWW-Authenticate: Token`` (with
    session first DRF can only answer 403). A session request still has CSRF enforced on
    unsafe methods by SessionAuthentication; a token request cannot be forged by a browser.
    """

    authentication_classes = [TokenAuthentication, SessionAuthentication]
    permission_classes = [IsConsoleAdmin]
