"""The API's front door: the root listing the resources, the OpenAPI schema and the docs page."""

from urllib.parse import urlencode

from django.shortcuts import redirect
from django.urls import reverse
from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.exceptions import NotAuthenticated
from rest_framework.response import Response
from rest_framework.reverse import reverse as api_reverse
from rest_framework.views import APIView

from .permissions import ConsoleAPIMixin

API_PREFIX = "/console/api/"
# The resources the root lists: name -> URL name.
RESOURCES = {
    "applications": "console:api-applications-list",
    "policy": "console:api-policy-list",
    "access-accounts": "console:api-access-accounts-list",
    "access-keys": "console:api-access-keys-list",
    "signing-keys": "console:api-signing-keys-list",
    "audit-events": "console:api-audit-events-list",
    "refusals": "console:api-refusals-list",
    "schema": "console:api-schema",
    "docs": "console:api-docs",
}


def only_console_api(endpoints, **kwargs):
    """drf-spectacular preprocessing hook: the schema describes this API, not the site's other DRF views."""
    return [endpoint for endpoint in endpoints if endpoint[0].startswith(API_PREFIX)]


# The root, the schema and the docs show no data: any console user may read them.
ENTER = {"get": "console.enter", "head": "console.enter", "options": "console.enter"}


class RootView(ConsoleAPIMixin, APIView):
    """The console REST API: one link per resource, plus the OpenAPI schema and its docs page."""

    console_actions = ENTER

    @extend_schema(exclude=True)
    def get(self, request, format=None):
        return Response({name: api_reverse(url_name, request=request) for name, url_name in RESOURCES.items()})


class SchemaView(ConsoleAPIMixin, SpectacularAPIView):
    """The OpenAPI 3 schema (YAML by default; JSON with ``?format=json`` or ``Accept: application/vnd.oai.openapi+json``)."""

    console_actions = ENTER
    custom_settings = {
        "PREPROCESSING_HOOKS": ["console.api.docs.only_console_api"],
        # state, default_state and previous_state share one set of choices: one enum.
        "ENUM_NAME_OVERRIDES": {"PolicyStateEnum": "oidc_provider.policy.STATE_CHOICES"},
    }


class DocsView(ConsoleAPIMixin, SpectacularSwaggerView):
    """Swagger UI over the schema, its JS and CSS from our own /static/ (the sidecar package): no internet needed."""

    console_actions = ENTER
    # An HTML page: OPTIONS has no template to render it with (405, not a 500).
    http_method_names = ["get", "head"]
    url_name = "console:api-schema"

    def handle_exception(self, exc):
        # A person opening the docs page signed out is sent to sign in, then back here.
        if isinstance(exc, NotAuthenticated):
            return redirect(f"{reverse('admin:login')}?{urlencode({'next': self.request.get_full_path()})}")
        return super().handle_exception(exc)
