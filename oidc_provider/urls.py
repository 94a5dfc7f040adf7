from django.urls import path

from .views import discovery
from .views.authorize import AuthorizeView
from .views.introspection import IntrospectionView, RevocationView
from .views.logout import LogoutView
from .views.token import TokenView
from .views.userinfo import UserInfoView

app_name = "oidc_provider"

urlpatterns = [
    path(".well-known/openid-configuration", discovery.discovery, name="discovery"),
    path(".well-known/jwks.json", discovery.jwks, name="jwks"),
    path("auth", AuthorizeView.as_view(), name="authorize"),
    path("token", TokenView.as_view(), name="token"),
    path("me", UserInfoView.as_view(), name="userinfo"),
    path("token/introspection", IntrospectionView.as_view(), name="introspection"),
    path("token/revocation", RevocationView.as_view(), name="revocation"),
    path("session/end", LogoutView.as_view(), name="end-session"),
]
