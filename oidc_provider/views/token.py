"""The token endpoint (RFC 6749 §3.2)."""

from django.db import router, transaction
from django.utils.decorators import method_decorator
from django.views.decorators.csrf import csrf_exempt
from oauth2_provider.models import get_access_token_model
from oauth2_provider.views import TokenView as DOTTokenView

from ..models import Application
from .guards import reject_malformed_input


@method_decorator([csrf_exempt, reject_malformed_input()], name="dispatch")
class TokenView(DOTTokenView):
    def post(self, request, *args, **kwargs):
        # One transaction per exchange: a request that loses the race for a code rolls
        # back every token it saved (validators.invalidate_authorization_code).
        with transaction.atomic(using=router.db_for_write(get_access_token_model())):
            response = super().post(request, *args, **kwargs)
        response["Cache-Control"] = "no-store"
        response["Pragma"] = "no-cache"
        self.allow_registered_origin(request, response)
        return response

    @staticmethod
    def allow_registered_origin(request, response):
        """CORS for a browser app's registered origin, on errors too, so an SPA can read
        `invalid_grant` and start over (oauthlib adds it for https successes only)."""
        origin = request.META.get("HTTP_ORIGIN")
        client_id = request.POST.get("client_id")
        if not origin or not client_id:
            return
        application = Application.objects.filter(client_id=client_id).only("allowed_origins").first()
        if application is not None and origin in application.allowed_origins.split():
            response["Access-Control-Allow-Origin"] = origin
            response["Vary"] = "Origin"

    def http_method_not_allowed(self, request, *args, **kwargs):
        response = super().http_method_not_allowed(request, *args, **kwargs)
        response["Cache-Control"] = "no-store"
        return response
