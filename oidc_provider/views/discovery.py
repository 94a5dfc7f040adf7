"""Discovery (OIDC Discovery 1.0 §3) and the JWKS document."""

import functools
import json
from urllib.parse import urlsplit

from django.core.signals import setting_changed
from django.http import HttpResponse
from django.urls import reverse
from django.views.decorators.http import require_GET

from .. import keys, policy
from ..claims import CLAIM_SCOPES
from ..conf import oidc_settings
from ..scopes import all_scopes


def endpoint(name):
    """An endpoint's absolute URL: the issuer's origin and the path the site mounted it at."""
    parts = urlsplit(oidc_settings.issuer)
    return f"{parts.scheme}://{parts.netloc}{reverse(f'oidc_provider:{name}')}"


def provider_metadata():
    issuer = oidc_settings.issuer
    grant_types = ["authorization_code", "implicit", "password", "client_credentials", "refresh_token"]
    registration = {"registration_endpoint": endpoint("registration")} if oidc_settings.DYNAMIC_REGISTRATION else {}
    return {
        **registration,
        "issuer": issuer,
        "authorization_endpoint": endpoint("authorize"),
        "token_endpoint": endpoint("token"),
        "userinfo_endpoint": endpoint("userinfo"),
        "jwks_uri": endpoint("jwks"),
        "end_session_endpoint": endpoint("end-session"),
        "introspection_endpoint": endpoint("introspection"),
        "revocation_endpoint": endpoint("revocation"),
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "scopes_supported": list(all_scopes()),
        "response_types_supported": list(policy.RESPONSE_TYPES),
        "response_modes_supported": ["query", "fragment", "form_post"],
        "authorization_response_iss_parameter_supported": True,
        "grant_types_supported": grant_types,
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": [keys.ALGORITHM],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": [
            "sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "azp", "at_hash", "c_hash", "sid", *CLAIM_SCOPES,
        ],
        "prompt_values_supported": ["none", "login", "consent", "select_account"],
        "claims_parameter_supported": True,
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
        "ui_locales_supported": ["en", "zh-Hans"],
        # Every ID token carries sid; logout tokens and front-channel frames carry it too.
        "backchannel_logout_supported": True,
        "backchannel_logout_session_supported": True,
        "frontchannel_logout_supported": True,
        "frontchannel_logout_session_supported": True,
    }


def _public_json(body):
    response = HttpResponse(body, content_type="application/json")
    response["Access-Control-Allow-Origin"] = "*"
    response["Cache-Control"] = "public, max-age=300"
    return response


@functools.cache
def discovery_json():
    """The discovery document as bytes, built once per process: it is made of settings and
    URLs only, so serving it needs no database."""
    return json.dumps(provider_metadata()).encode()


setting_changed.connect(lambda **kwargs: discovery_json.cache_clear(), weak=False, dispatch_uid="oidc_provider.discovery")


@require_GET
def discovery(request):
    return _public_json(discovery_json())


@require_GET
def jwks(request):
    return _public_json(keys.jwks_json())
