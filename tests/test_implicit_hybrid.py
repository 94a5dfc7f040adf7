"""Implicit and hybrid flows, response modes (OIDC Core 3.2, 3.3; Multiple Response Types; Form Post)."""

import re
from oidc_provider.claims import subject
from html import unescape
from urllib.parse import urlsplit

import pytest

from oidc_provider import policy
from tests.factories import ApplicationFactory
from tests.helpers import authorize, consent, exchange, fragment_of, left_half_hash, query_of, set_policy, verify_id_token

SPA_URI = "https://spa.example.com/cb"


@pytest.fixture
def implicit_app(db):
    return ApplicationFactory(application_type=policy.SPA, redirect_uris=SPA_URI, grant_types=["authorization_code", "implicit"])


@pytest.fixture
def hybrid_app(db):
    return ApplicationFactory(application_type=policy.WEB, grant_types=["authorization_code", "hybrid", "refresh_token"])


def _front_channel(client, app, **params):
    response = authorize(client, app, **params)
    if response.status_code == 200:
        response = consent(client, response)
    assert response.status_code == 302, response.content[:400]
    assert "?" not in response["Location"].split("#")[0] or response["Location"].startswith(app.redirect_uris.split()[0])
    return fragment_of(response)


def test_implicit_token_returns_only_an_access_token_in_the_fragment(logged_in, implicit_app):
    params = _front_channel(logged_in, implicit_app, response_type="token")
    assert params["access_token"] and params["token_type"].lower() == "bearer" and params["state"] == "xyz"
    assert "refresh_token" not in params and "id_token" not in params and "code" not in params
    me = logged_in.get("/oidc/me", HTTP_AUTHORIZATION=f"Bearer {params['access_token']}")
    assert me.status_code == 200


def test_implicit_id_token_carries_profile_claims_and_no_access_token(logged_in, implicit_app, user):
    """OIDC Core 5.4: with no access token, scope claims go in the ID token."""
    params = _front_channel(logged_in, implicit_app, response_type="id_token", scope="openid email profile")
    assert "access_token" not in params
    claims = verify_id_token(logged_in, params["id_token"], implicit_app.client_id)
    assert claims["nonce"] == "n-0S6_WzA2Mj"
    assert claims["email"] == user.email and claims["name"] == "Ada Lovelace"
    assert "at_hash" not in claims


def test_implicit_id_token_token_has_a_correct_at_hash(logged_in, implicit_app):
    params = _front_channel(logged_in, implicit_app, response_type="id_token token")
    claims = verify_id_token(logged_in, params["id_token"], implicit_app.client_id)
    assert claims["at_hash"] == left_half_hash(params["access_token"])
    assert claims["azp"] == implicit_app.client_id


@pytest.mark.parametrize("response_type", ["id_token", "id_token token", "code id_token", "code id_token token"])
def test_nonce_is_required_whenever_an_id_token_comes_from_the_authorization_endpoint(logged_in, implicit_app, hybrid_app, response_type):
    app = hybrid_app if "code" in response_type else implicit_app
    response = authorize(logged_in, app, response_type=response_type, nonce=None)
    assert fragment_of(response)["error"] == "invalid_request"


def test_hybrid_code_id_token_has_c_hash_and_the_code_gives_access_id_refresh(logged_in, hybrid_app, user):
    params = _front_channel(logged_in, hybrid_app, response_type="code id_token")
    front = verify_id_token(logged_in, params["id_token"], hybrid_app.client_id)
    assert front["c_hash"] == left_half_hash(params["code"])
    assert "access_token" not in params
    tokens = exchange(logged_in, hybrid_app, params["code"], secret=hybrid_app.plaintext_secret).json()
    assert tokens["access_token"] and tokens["refresh_token"]
    back = verify_id_token(logged_in, tokens["id_token"], hybrid_app.client_id)
    assert back["sub"] == front["sub"] == subject(user)
    assert back["nonce"] == front["nonce"] == "n-0S6_WzA2Mj"


def test_hybrid_code_token_returns_code_and_access_token(logged_in, hybrid_app):
    params = _front_channel(logged_in, hybrid_app, response_type="code token")
    assert params["code"] and params["access_token"] and "id_token" not in params
    assert exchange(logged_in, hybrid_app, params["code"], secret=hybrid_app.plaintext_secret).status_code == 200


def test_hybrid_code_id_token_token_has_c_hash_and_at_hash(logged_in, hybrid_app):
    params = _front_channel(logged_in, hybrid_app, response_type="code id_token token")
    claims = verify_id_token(logged_in, params["id_token"], hybrid_app.client_id)
    assert claims["c_hash"] == left_half_hash(params["code"])
    assert claims["at_hash"] == left_half_hash(params["access_token"])


def test_spa_may_not_use_hybrid_even_if_it_asks(logged_in, implicit_app):
    response = authorize(logged_in, implicit_app, response_type="code id_token")
    assert fragment_of(response)["error"] == "unsupported_response_type"


def test_implicit_refused_when_the_policy_forbids_it_at_request_time(logged_in, implicit_app):
    set_policy(policy.SPA, policy.IMPLICIT, policy.FORBIDDEN)
    response = authorize(logged_in, implicit_app, response_type="token")
    assert fragment_of(response)["error"] == "unsupported_response_type"


def test_response_mode_query_is_refused_for_responses_with_tokens(logged_in, implicit_app):
    response = authorize(logged_in, implicit_app, response_type="id_token token", response_mode="query")
    assert response.status_code == 302
    assert "access_token" not in response["Location"]
    assert fragment_of(response)["error"] == "invalid_request"


def test_unknown_response_mode_is_invalid_request(logged_in, implicit_app):
    response = authorize(logged_in, implicit_app, response_mode="jwt")
    assert query_of(response)["error"] == "invalid_request"


def test_code_with_response_mode_fragment(logged_in, hybrid_app):
    hybrid_app.skip_authorization = True
    hybrid_app.save()
    response = authorize(logged_in, hybrid_app, response_mode="fragment")
    assert "code" in fragment_of(response)


def _form_post_fields(response):
    html = response.content.decode()
    action = unescape(re.search(r'<form[^>]*action="([^"]*)"', html).group(1))
    fields = {unescape(n): unescape(v) for n, v in re.findall(r'<input type="hidden" name="([^"]*)" value="([^"]*)"', html)}
    return action, fields


def test_form_post_delivers_the_code_by_a_self_submitting_form(logged_in, hybrid_app):
    response = consent(logged_in, authorize(logged_in, hybrid_app, response_mode="form_post"))
    assert response.status_code == 200
    action, fields = _form_post_fields(response)
    assert action == "https://rp.example.com/callback"
    assert fields["state"] == "xyz" and fields["code"]
    assert "<script>" not in response.content.decode()  # no inline script (strict CSP)
    assert exchange(logged_in, hybrid_app, fields["code"], secret=hybrid_app.plaintext_secret).status_code == 200


def test_form_post_carries_tokens_of_hybrid_flows(logged_in, hybrid_app):
    hybrid_app.skip_authorization = True
    hybrid_app.save()
    response = authorize(logged_in, hybrid_app, response_type="code id_token token", response_mode="form_post")
    _action, fields = _form_post_fields(response)
    assert {"code", "id_token", "access_token", "state"} <= set(fields)


def test_form_post_errors_are_posted_too(client, hybrid_app):
    response = authorize(client, hybrid_app, response_mode="form_post", prompt="none")
    assert response.status_code == 200
    action, fields = _form_post_fields(response)
    assert urlsplit(action).path == "/callback"
    assert fields["error"] == "login_required"
