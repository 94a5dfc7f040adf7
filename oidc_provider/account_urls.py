"""The hosted account pages; a site includes them under `accounts/` (or its own prefix)."""

from django.urls import path
from django.views.generic import RedirectView

from .views.account import account
from .views.login import LoginView, LogoutView

urlpatterns = [
    path("", account, name="account"),
    # Django's default LOGIN_REDIRECT_URL, so a site that keeps it lands on the account page.
    path("profile/", RedirectView.as_view(pattern_name="account", permanent=False)),
    path("login/", LoginView.as_view(), name="login"),
    path("logout/", LogoutView.as_view(), name="logout"),
]
