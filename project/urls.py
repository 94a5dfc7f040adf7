from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from oidc_provider import health, metrics

urlpatterns = [
    path("oidc/", include("oidc_provider.urls")),
    path("accounts/", include("oidc_provider.account_urls")),
    path("admin/", admin.site.urls),
    path("api/", include("project.api")),
    path("console/", include("console.urls")),
    # set_language: the hosted pages' language switcher posts there.
    path("i18n/", include("django.conf.urls.i18n")),
    path("health/live", health.live, name="health-live"),
    path("health/ready", health.ready, name="health-ready"),
    path("metrics", metrics.scrape, name="metrics"),
    path("", RedirectView.as_view(url="/oidc/.well-known/openid-configuration", permanent=False)),
]

# Error views that do not read the request again (Django's defaults re-run the CSRF check,
# which fails the same way when the body was what could not be read).
handler400 = "oidc_provider.views.pages.bad_request"
handler403 = "oidc_provider.views.pages.permission_denied"
handler404 = "oidc_provider.views.pages.page_not_found"
handler500 = "oidc_provider.views.pages.server_error"
