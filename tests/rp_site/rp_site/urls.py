from django.urls import include, path

from . import views

urlpatterns = [
    path("oidc/", include("mozilla_django_oidc.urls")),
    path("", views.home, name="home"),
    path("logged-out/", views.logged_out, name="logged-out"),
]
