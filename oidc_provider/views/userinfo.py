"""The userinfo endpoint (OIDC Core 5.3)."""

from django.utils.decorators import method_decorator
from django.views.decorators.csrf import csrf_exempt
from oauth2_provider.views import UserInfoView as DOTUserInfoView


@method_decorator(csrf_exempt, name="dispatch")
class UserInfoView(DOTUserInfoView):
    def _create_userinfo_response(self, request):
        response = super()._create_userinfo_response(request)
        response["Cache-Control"] = "no-store"
        response["Access-Control-Allow-Origin"] = "*"
        return response
