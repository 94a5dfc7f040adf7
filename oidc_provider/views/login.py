"""The hosted login page (CONTRACT §3: fields `username` and `password`)."""

from django.contrib.auth import views as auth_views
from django.utils.decorators import method_decorator

from .pages import hosted_page


@method_decorator(hosted_page, name="dispatch")
class LoginView(auth_views.LoginView):
    template_name = "oidc_provider/login.html"

    def get_initial(self):
        initial = super().get_initial()
        if self.request.GET.get("login_hint"):
            initial["username"] = self.request.GET["login_hint"][:150]
        return initial


@method_decorator(hosted_page, name="dispatch")
class LogoutView(auth_views.LogoutView):
    template_name = "oidc_provider/logged_out.html"
