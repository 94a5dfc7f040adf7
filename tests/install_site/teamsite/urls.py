from django.contrib import admin
from django.contrib.auth.views import LoginView
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("login/", LoginView.as_view(template_name="oidc_provider/login.html")),
    # docs/install.md, step 5: the provider, at the issuer's path.
    path("auth/", include("oidc_provider.urls")),
]
