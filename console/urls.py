from django.urls import include, path

app_name = "console"

urlpatterns = [
    path("api/", include("console.api.urls")),
]
