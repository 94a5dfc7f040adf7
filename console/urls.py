from django.contrib import admin
from django.urls import include, path

from .api_tokens import api_tokens

app_name = "console"

urlpatterns = [
    path("api/", include("console.api.urls")),
    # Through the admin's own wrapper: active staff only (others go to the admin login), CSRF, no cache.
    path("tokens/", admin.site.admin_view(api_tokens), name="api-tokens"),
]
