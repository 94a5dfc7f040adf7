"""The hosted account pages; a site includes them under `accounts/` (or its own prefix)."""

from django.urls import path

from .views.login import LoginView, LogoutView

urlpatterns = [
    path("login/", LoginView.as_view(), name="login"),
    path("logout/", LogoutView.as_view(), name="logout"),
]
