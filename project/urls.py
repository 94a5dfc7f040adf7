from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

urlpatterns = [
    path("oidc/", include("oidc_provider.urls")),
    path("accounts/", include("oidc_provider.account_urls")),
    path("admin/", admin.site.urls),
    path("api/", include("project.api")),
    path("console/", include("console.urls")),
    path("", RedirectView.as_view(url="/oidc/.well-known/openid-configuration", permanent=False)),
]
