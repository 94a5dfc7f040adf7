from django.urls import path

from .middleware import protocol_endpoint
from .views import discovery
from .views.authorize import AuthorizeView
from .views.introspection import IntrospectionView, RevocationView
from .views.logout import LogoutView
from .views.registration import ClientConfigurationView, RegistrationView
from .views.token import TokenView
from .views.userinfo import UserInfoView

app_name = "oidc_provider"

urlpatterns = [
    path(".well-known/openid-configuration", protocol_endpoint(discovery.discovery), name="discovery"),
    path(".well-known/jwks.json", protocol_endpoint(discovery.jwks), name="jwks"),
    path("auth", AuthorizeView.as_view(), name="authorize"),
    path("token", protocol_endpoint(TokenView.as_view()), name="token"),
    path("me", protocol_endpoint(UserInfoView.as_view()), name="userinfo"),
    path("token/introspection", protocol_endpoint(IntrospectionView.as_view()), name="introspection"),
    path("token/revocation", protocol_endpoint(RevocationView.as_view()), name="revocation"),
    path("session/end", LogoutView.as_view(), name="end-session"),
    path("register", RegistrationView.as_view(), name="registration"),
    path("register/<str:client_id>", ClientConfigurationView.as_view(), name="client-configuration"),
]
