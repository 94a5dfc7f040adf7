"""The hosted login page (its form posts the fields `username` and `password`) and sign-out."""

from django.contrib.auth import views as auth_views
from django.shortcuts import render

from .. import sessions, throttle
from .decorated import DecoratedView
from .guards import reject_malformed_input
from .pages import allow_frames, hosted_page


class LoginView(DecoratedView, auth_views.LoginView):
    view_decorators = (hosted_page, reject_malformed_input(html=True))
    template_name = "oidc_provider/login.html"

    def post(self, request, *args, **kwargs):
        if throttle.is_throttled(throttle.client_ip(request)):
            return render(request, "oidc_provider/locked_out.html",
                          {"throttled": True, "window_minutes": throttle.LOGIN_WINDOW // 60}, status=429)
        return super().post(request, *args, **kwargs)

    def get_initial(self):
        initial = super().get_initial()
        if self.request.GET.get("login_hint"):
            initial["username"] = self.request.GET["login_hint"][:150]
        return initial


class LogoutView(DecoratedView, auth_views.LogoutView):
    """A GET only asks (a link or a prefetch must not end a session); the POST signs out."""

    view_decorators = (hosted_page,)
    http_method_names = ["get", "head", "post", "options"]
    template_name = "oidc_provider/logged_out.html"

    def get(self, request, *args, **kwargs):
        # get_redirect_url() keeps `next` only when it stays on this site.
        context = {"next": self.get_redirect_url()}
        return render(request, "oidc_provider/logout.html", context)

    def get_context_data(self, **kwargs):
        # The applications the ended session signed into hear of it in hidden frames.
        return {**super().get_context_data(**kwargs), "frames": sessions.frontchannel_frames(self.request)}

    def render_to_response(self, context, **kwargs):
        return allow_frames(super().render_to_response(context, **kwargs), context["frames"])
