"""The demo backend API a relying party calls with its access token (the docs' last step)."""

from django.urls import path
from rest_framework.response import Response

from oidc_provider import claims
from oidc_provider.resource_server import ProtectedResourceView


class MeView(ProtectedResourceView):
    """Who the token speaks for: needs scope `profile` and an end user."""

    required_scopes = ["profile"]

    def get(self, request):
        if request.user is None or not request.user.is_authenticated:
            return Response({"detail": "This token has no end user behind it."}, status=403)
        return Response(claims.claims_for_scopes(request.user, request.auth.scope.split()))


class EchoView(ProtectedResourceView):
    """Echoes what it is sent: needs the resource permission `read` (GET) or `write` (POST)."""

    def get_required_scopes(self):
        return ["write"] if self.request.method == "POST" else ["read"]

    def initial(self, request, *args, **kwargs):
        self.required_scopes = self.get_required_scopes()
        super().initial(request, *args, **kwargs)

    def get(self, request):
        return Response({"client_id": request.auth.application.client_id, "scope": request.auth.scope, "query": request.query_params})

    def post(self, request):
        return Response({"client_id": request.auth.application.client_id, "scope": request.auth.scope, "data": request.data})


urlpatterns = [
    path("me", MeView.as_view(), name="api-me"),
    path("echo", EchoView.as_view(), name="api-echo"),
]
