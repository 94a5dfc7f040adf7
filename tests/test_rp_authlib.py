"""Authlib as the relying party, against a live server (gunicorn on a loopback port).

Every flow goes through Authlib's client (``OAuth2Session`` from
``authlib.integrations.requests_client``), and every ID token is checked by Authlib's own
code: the signature with a key from the JWKS document (``JsonWebKey.import_key_set``), then
``CodeIDToken`` / ``ImplicitIDToken`` / ``HybridIDToken`` with ``iss``, ``aud``, ``azp``,
``exp``/``iat``, ``nonce``, ``at_hash`` and ``c_hash`` (``claims.validate(now)``).

The browser part of each front-channel flow (hosted login form, consent form, redirects) is
played by ``tests.live.front_channel``, which stops at the relying party's redirect URI.
"""

import base64
import json
import secrets
import time
import warnings
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

authlib = pytest.importorskip("authlib", reason="pip install 'Authlib>=1.3,<2'")

from authlib.integrations.base_client import OAuthError  # noqa: E402
from authlib.integrations.requests_client import OAuth2Session  # noqa: E402

with warnings.catch_warnings():  # authlib.jose announces its move to joserfc (Authlib 2)
    warnings.simplefilter("ignore", DeprecationWarning)
    from authlib.jose import JsonWebKey, jwt  # noqa: E402
    from authlib.jose import errors as authlib_errors  # noqa: E402

from authlib.oidc.core import CodeIDToken, HybridIDToken, ImplicitIDToken, UserInfo  # noqa: E402
from authlib.oidc.discovery import OpenIDProviderMetadata  # noqa: E402

from .live import HTTP_TIMEOUT, front_channel, live_provider, live_user  # noqa: E402, F401

try:  # Authlib >= 1.7 checks claims and signatures with joserfc and raises its errors
    from joserfc import errors as joserfc_errors
except ImportError:  # pragma: no cover
    joserfc_errors = authlib_errors
INVALID_CLAIM = (authlib_errors.InvalidClaimError, joserfc_errors.InvalidClaimError)
BAD_SIGNATURE = (authlib_errors.BadSignatureError, joserfc_errors.BadSignatureError)

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

WEB_REDIRECT = "https://rp.example.com/callback"
SPA_REDIRECT = "https://spa.example.com/cb"
NATIVE_REDIRECT = "http://127.0.0.1:9/native-cb"


# -- fixtures: apps and users in the live server's database --------------------------------


@pytest.fixture(scope="module")
def metadata(live_provider):
    response = requests.get(live_provider.url("/oidc/.well-known/openid-configuration"), timeout=HTTP_TIMEOUT)
    response.raise_for_status()
    return response.json()


@pytest.fixture(scope="module")
def jwks(metadata):
    response = requests.get(metadata["jwks_uri"], timeout=HTTP_TIMEOUT)
    response.raise_for_status()
    return response.json()


@pytest.fixture(scope="module")
def apps(live_provider):
    web = live_provider.create_app(
        "Authlib web", "web",
        grants=["authorization_code", "hybrid", "password", "client_credentials", "refresh_token"],
        redirect_uris=[WEB_REDIRECT],
    )
    spa = live_provider.create_app("Authlib spa", "spa", grants=["authorization_code", "implicit"], redirect_uris=[SPA_REDIRECT])
    native = live_provider.create_app("Authlib native", "native", redirect_uris=[NATIVE_REDIRECT])
    service = live_provider.manage_json("accesskey", "create", "--account", f"authlib-{secrets.token_hex(3)}", "--scope", "read")
    return {"web": web, "spa": spa, "native": native, "service": service}


@pytest.fixture(scope="module")
def browser(live_provider, live_user):
    """The user's browser: one cookie jar, so the login is done once and remembered."""
    with requests.Session() as session:
        yield session


def rp_session(app, redirect_uri, **kwargs):
    return OAuth2Session(
        client_id=app["client_id"], client_secret=app.get("client_secret"), redirect_uri=redirect_uri,
        scope=kwargs.pop("scope", "openid profile email"), **kwargs,
    )


# -- Authlib's ID token validation ----------------------------------------------------------


def validate_id_token(id_token, claims_cls, *, metadata, jwks, client_id, **params):
    """Authlib's checks: signature (key by kid from the JWKS), iss, aud, azp, exp, iat, nonce, hashes."""
    header = json.loads(base64.urlsafe_b64decode(id_token.split(".")[0] + "=="))
    assert header["alg"] in metadata["id_token_signing_alg_values_supported"]
    assert header["kid"] in {k["kid"] for k in jwks["keys"]}, "the ID token's kid is not in the JWKS"
    claims = jwt.decode(
        id_token,
        JsonWebKey.import_key_set(jwks),
        claims_cls=claims_cls,
        claims_options={
            "iss": {"essential": True, "value": metadata["issuer"]},
            "aud": {"essential": True, "value": client_id},
            "sub": {"essential": True},
            "exp": {"essential": True},
            "iat": {"essential": True},
        },
        claims_params={"client_id": client_id, **params},
    )
    claims.validate(now=int(time.time()), leeway=5)
    assert claims["exp"] > time.time() > claims["iat"] - 5
    assert claims.get("azp", client_id) == client_id
    return claims


def front(browser, session, metadata, user, redirect_uri, **params):
    url, state = session.create_authorization_url(metadata["authorization_endpoint"], **params)
    final = front_channel(browser, url, user, redirect_uri)
    return final, state


def fragment(url):
    return {k: v[0] for k, v in parse_qs(urlsplit(url).fragment).items()}


# -- discovery --------------------------------------------------------------------------------


def test_discovery_is_valid_openid_provider_metadata(live_provider, metadata, jwks):
    OpenIDProviderMetadata(metadata).validate()
    assert metadata["issuer"] == live_provider.issuer
    for endpoint in ("authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri",
                     "revocation_endpoint", "introspection_endpoint", "end_session_endpoint"):
        assert metadata[endpoint].startswith(live_provider.issuer + "/"), endpoint
    for response_type in ("code", "id_token", "id_token token", "code id_token", "code token", "code id_token token"):
        assert response_type in metadata["response_types_supported"]
    assert "S256" in metadata["code_challenge_methods_supported"]
    key_set = JsonWebKey.import_key_set(jwks)
    assert key_set.keys and all(k.kid for k in key_set.keys)


# -- authorization code ----------------------------------------------------------------------


@pytest.mark.parametrize("auth_method", ["client_secret_basic", "client_secret_post"])
def test_code_flow(apps, metadata, jwks, browser, live_user, auth_method):
    app = apps["web"]
    nonce = secrets.token_urlsafe(16)
    with rp_session(app, WEB_REDIRECT, token_endpoint_auth_method=auth_method) as session:
        final, state = front(browser, session, metadata, live_user, WEB_REDIRECT, nonce=nonce, max_age=3600)
        assert final.startswith(WEB_REDIRECT + "?")
        token = session.fetch_token(metadata["token_endpoint"], authorization_response=final, state=state)
        assert token["token_type"].lower() == "bearer" and token["access_token"] and token["refresh_token"]
        claims = validate_id_token(
            token["id_token"], CodeIDToken, metadata=metadata, jwks=jwks, client_id=app["client_id"],
            nonce=nonce, access_token=token["access_token"], max_age=3600,
        )
        assert isinstance(claims["auth_time"], int) and claims["auth_time"] <= time.time()


@pytest.mark.parametrize("kind", ["web", "native"])
def test_code_flow_with_pkce(apps, metadata, jwks, browser, live_user, kind):
    app = apps[kind]
    redirect_uri = WEB_REDIRECT if kind == "web" else NATIVE_REDIRECT
    nonce, verifier = secrets.token_urlsafe(16), secrets.token_urlsafe(48)
    with rp_session(app, redirect_uri, code_challenge_method="S256") as session:
        final, state = front(browser, session, metadata, live_user, redirect_uri, nonce=nonce, code_verifier=verifier)
        token = session.fetch_token(metadata["token_endpoint"], authorization_response=final, state=state, code_verifier=verifier)
        validate_id_token(token["id_token"], CodeIDToken, metadata=metadata, jwks=jwks, client_id=app["client_id"],
                          nonce=nonce, access_token=token["access_token"])
        if kind == "native":
            assert token.get("refresh_token"), "a native app holding refresh_token gets one"


def test_pkce_exchange_needs_the_verifier(apps, metadata, browser, live_user):
    app = apps["native"]
    verifier = secrets.token_urlsafe(48)
    with rp_session(app, NATIVE_REDIRECT, code_challenge_method="S256") as session:
        final, state = front(browser, session, metadata, live_user, NATIVE_REDIRECT, nonce="n", code_verifier=verifier)
        with pytest.raises(OAuthError) as refused:
            session.fetch_token(metadata["token_endpoint"], authorization_response=final, state=state,
                                code_verifier=secrets.token_urlsafe(48))
        assert refused.value.error == "invalid_grant"


def test_code_flow_form_post(apps, metadata, jwks, browser, live_user):
    app = apps["web"]
    nonce = secrets.token_urlsafe(16)
    with rp_session(app, WEB_REDIRECT) as session:
        url, state = session.create_authorization_url(metadata["authorization_endpoint"], nonce=nonce, response_mode="form_post")
        action, fields = front_channel(browser, url, live_user, WEB_REDIRECT)
        assert action == WEB_REDIRECT and fields["state"] == state
        token = session.fetch_token(metadata["token_endpoint"], code=fields["code"], grant_type="authorization_code")
        validate_id_token(token["id_token"], CodeIDToken, metadata=metadata, jwks=jwks, client_id=app["client_id"], nonce=nonce)


def test_authlib_rejects_a_tampered_or_misdirected_id_token(apps, metadata, jwks, browser, live_user):
    """The checks above are real: Authlib refuses a wrong nonce, audience or signature."""
    app = apps["web"]
    with rp_session(app, WEB_REDIRECT) as session:
        final, state = front(browser, session, metadata, live_user, WEB_REDIRECT, nonce="right")
        id_token = session.fetch_token(metadata["token_endpoint"], authorization_response=final, state=state)["id_token"]
    kwargs = {"metadata": metadata, "jwks": jwks}
    with pytest.raises(INVALID_CLAIM):
        validate_id_token(id_token, CodeIDToken, client_id=app["client_id"], nonce="wrong", **kwargs)
    with pytest.raises(INVALID_CLAIM):
        validate_id_token(id_token, CodeIDToken, client_id=apps["spa"]["client_id"], **kwargs)
    head, body, signature = id_token.split(".")
    forged = json.loads(base64.urlsafe_b64decode(body + "=="))
    forged["sub"] = "someone-else"
    forged_body = base64.urlsafe_b64encode(json.dumps(forged).encode()).rstrip(b"=").decode()
    with pytest.raises(BAD_SIGNATURE):
        validate_id_token(f"{head}.{forged_body}.{signature}", CodeIDToken, client_id=app["client_id"], **kwargs)


# -- implicit ------------------------------------------------------------------------------


@pytest.mark.parametrize("response_type", ["id_token", "id_token token", "token"])
def test_implicit(apps, metadata, jwks, browser, live_user, response_type):
    app = apps["spa"]
    nonce = secrets.token_urlsafe(16)
    with rp_session(app, SPA_REDIRECT) as session:
        final, state = front(browser, session, metadata, live_user, SPA_REDIRECT, response_type=response_type, nonce=nonce)
        assert "?" not in final, "implicit responses travel in the fragment only"
        params = fragment(final)
        assert params["state"] == state
        assert "code" not in params and "refresh_token" not in params
        if "token" in response_type.split():
            token = session.fetch_token(authorization_response=final, state=state)
            assert token["access_token"] and token["token_type"].lower() == "bearer"
        else:
            assert "access_token" not in params
        if "id_token" in response_type.split():
            claims = validate_id_token(
                params["id_token"], ImplicitIDToken, metadata=metadata, jwks=jwks, client_id=app["client_id"],
                nonce=nonce, access_token=params.get("access_token"),
            )
            if response_type == "id_token":
                # No access token for userinfo: the scopes' claims are in the ID token (OIDC Core 5.4).
                assert claims.get("email") and claims.get("name")
        else:
            assert "id_token" not in params


@pytest.mark.parametrize("response_type", ["id_token", "id_token token"])
def test_implicit_id_token_needs_a_nonce(apps, metadata, browser, live_user, response_type):
    app = apps["spa"]
    with rp_session(app, SPA_REDIRECT) as session:
        url, state = session.create_authorization_url(metadata["authorization_endpoint"], response_type=response_type)
    final = front_channel(browser, url, live_user, SPA_REDIRECT)
    params = fragment(final)
    assert params["error"] == "invalid_request" and "id_token" not in params and "access_token" not in params


# -- hybrid ------------------------------------------------------------------------------------


@pytest.mark.parametrize("response_type", ["code id_token", "code token", "code id_token token"])
def test_hybrid(apps, metadata, jwks, browser, live_user, response_type):
    app = apps["web"]
    nonce = secrets.token_urlsafe(16)
    with rp_session(app, WEB_REDIRECT) as session:
        final, state = front(browser, session, metadata, live_user, WEB_REDIRECT, response_type=response_type, nonce=nonce)
        params = fragment(final)
        assert params["state"] == state and params["code"]
        assert "refresh_token" not in params
        front_claims = None
        if "id_token" in response_type.split():
            front_claims = validate_id_token(
                params["id_token"], HybridIDToken, metadata=metadata, jwks=jwks, client_id=app["client_id"],
                nonce=nonce, code=params["code"], access_token=params.get("access_token"),
            )
            assert front_claims["c_hash"]
            if "access_token" in params:
                assert front_claims["at_hash"]
        if "token" in response_type.split():
            assert params["access_token"]
        else:
            assert "access_token" not in params
        token = session.fetch_token(metadata["token_endpoint"], code=params["code"], grant_type="authorization_code")
        back_claims = validate_id_token(
            token["id_token"], CodeIDToken, metadata=metadata, jwks=jwks, client_id=app["client_id"],
            nonce=nonce, access_token=token["access_token"],
        )
        assert token.get("refresh_token")
        if front_claims is not None:
            # OIDC Core 3.3.3.6: same iss and sub from both endpoints.
            assert (back_claims["iss"], back_claims["sub"]) == (front_claims["iss"], front_claims["sub"])


# -- password, client credentials ---------------------------------------------------------------


def test_password_grant(apps, metadata, jwks, live_user):
    app = apps["web"]
    with rp_session(app, WEB_REDIRECT) as session:
        token = session.fetch_token(
            metadata["token_endpoint"], grant_type="password",
            username=live_user["username"], password=live_user["password"],
        )
    assert token["access_token"] and token["refresh_token"]
    validate_id_token(token["id_token"], CodeIDToken, metadata=metadata, jwks=jwks, client_id=app["client_id"],
                      access_token=token["access_token"])


@pytest.mark.parametrize("who", ["web", "access_key"])
def test_client_credentials(apps, metadata, who):
    if who == "web":
        client_id, secret, scope = apps["web"]["client_id"], apps["web"]["client_secret"], "openid profile"
    else:
        client_id, secret, scope = apps["service"]["access_key"], apps["service"]["secret_key"], "read"
    with OAuth2Session(client_id=client_id, client_secret=secret, scope=scope) as session:
        token = session.fetch_token(metadata["token_endpoint"], grant_type="client_credentials")
        assert token["access_token"]
        assert "id_token" not in token and "refresh_token" not in token
        introspection = session.introspect_token(metadata["introspection_endpoint"], token=token["access_token"]).json()
    assert introspection["active"] is True and introspection["client_id"] in (client_id, introspection["client_id"])


def test_access_key_with_a_scope_it_lacks_is_refused(apps, metadata):
    service = apps["service"]
    with OAuth2Session(client_id=service["access_key"], client_secret=service["secret_key"], scope="write") as session:
        with pytest.raises(OAuthError) as refused:
            session.fetch_token(metadata["token_endpoint"], grant_type="client_credentials")
    assert refused.value.error == "invalid_scope"


# -- refresh, userinfo, revocation ------------------------------------------------------------------


@pytest.fixture
def code_token(apps, metadata, browser, live_user):
    app = apps["web"]
    session = rp_session(app, WEB_REDIRECT)
    final, state = front(browser, session, metadata, live_user, WEB_REDIRECT, nonce="n")
    token = session.fetch_token(metadata["token_endpoint"], authorization_response=final, state=state)
    yield session, token
    session.close()


def test_refresh(apps, metadata, jwks, code_token):
    session, first = code_token
    second = session.refresh_token(metadata["token_endpoint"], refresh_token=first["refresh_token"])
    assert second["access_token"] != first["access_token"]
    assert second["refresh_token"] != first["refresh_token"], "refresh tokens rotate"
    claims = validate_id_token(second["id_token"], CodeIDToken, metadata=metadata, jwks=jwks,
                               client_id=apps["web"]["client_id"], access_token=second["access_token"])
    first_claims = validate_id_token(first["id_token"], CodeIDToken, metadata=metadata, jwks=jwks, client_id=apps["web"]["client_id"])
    assert claims["sub"] == first_claims["sub"]
    # The rotated-out token is spent; replaying it fails and revokes the family.
    with pytest.raises(OAuthError) as replay:
        session.refresh_token(metadata["token_endpoint"], refresh_token=first["refresh_token"])
    assert replay.value.error == "invalid_grant"
    with pytest.raises(OAuthError):
        session.refresh_token(metadata["token_endpoint"], refresh_token=second["refresh_token"])


def test_userinfo(apps, metadata, jwks, code_token, live_user):
    session, token = code_token
    response = session.get(metadata["userinfo_endpoint"], timeout=HTTP_TIMEOUT)
    assert response.status_code == 200, response.text
    info = UserInfo(response.json())
    claims = validate_id_token(token["id_token"], CodeIDToken, metadata=metadata, jwks=jwks, client_id=apps["web"]["client_id"])
    assert info.sub == claims["sub"]
    assert info.email == f"{live_user['username']}@example.com"
    assert info.name and info.preferred_username == live_user["username"]
    posted = session.post(metadata["userinfo_endpoint"], timeout=HTTP_TIMEOUT)
    assert posted.status_code == 200 and posted.json()["sub"] == claims["sub"]


def test_revocation(apps, metadata, code_token):
    session, token = code_token
    response = session.revoke_token(metadata["revocation_endpoint"], token=token["access_token"], token_type_hint="access_token")
    assert response.status_code == 200
    assert session.get(metadata["userinfo_endpoint"], timeout=HTTP_TIMEOUT).status_code == 401
    assert session.introspect_token(metadata["introspection_endpoint"], token=token["access_token"]).json() == {"active": False}
    response = session.revoke_token(metadata["revocation_endpoint"], token=token["refresh_token"], token_type_hint="refresh_token")
    assert response.status_code == 200
    with pytest.raises(OAuthError):
        session.refresh_token(metadata["token_endpoint"], refresh_token=token["refresh_token"])
    # RFC 7009 §2.2: an unknown or already revoked token is still a 200.
    assert session.revoke_token(metadata["revocation_endpoint"], token="not-a-token").status_code == 200

