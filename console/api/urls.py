"""URLs of the console REST API, under ``/console/api/``."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from .access_accounts import AccessAccountViewSet
from .access_keys import AccessKeyViewSet
from .applications import ApplicationViewSet
from .audit_events import AuditEventViewSet
from .docs import DocsView, RootView, SchemaView
from .grant_policy import GrantPolicyViewSet
from .refusals import RefusalViewSet
from .signing_keys import SigningKeyViewSet

router = SimpleRouter()
router.register("applications", ApplicationViewSet, basename="api-applications")
router.register("access-accounts", AccessAccountViewSet, basename="api-access-accounts")
router.register("access-keys", AccessKeyViewSet, basename="api-access-keys")
router.register("signing-keys", SigningKeyViewSet, basename="api-signing-keys")
router.register("audit-events", AuditEventViewSet, basename="api-audit-events")
router.register("refusals", RefusalViewSet, basename="api-refusals")

urlpatterns = [
    path("", RootView.as_view(), name="api-root"),
    # Policy entries are addressed by their two names, /policy/{application_type}/{grant}/,
    # which a router's single lookup cannot express.
    path("policy/", GrantPolicyViewSet.as_view({"get": "list"}), name="api-policy-list"),
    path(
        "policy/<str:application_type>/<str:grant>/",
        GrantPolicyViewSet.as_view({"get": "retrieve", "put": "update", "patch": "partial_update"}),
        name="api-policy-detail",
    ),
    path("schema/", SchemaView.as_view(), name="api-schema"),
    path("docs/", DocsView.as_view(), name="api-docs"),
    *router.urls,
]
