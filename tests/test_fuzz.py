"""Hostile input, generated from the specifications: no 5xx, nothing changed by a refused
request, the server healthy afterwards.

Protocol endpoints (hypothesis): for each endpoint, the parameters its specifications define
(RFC 6749, OpenID Connect Core, RFC 7636, RFC 7662, RFC 7009, RFC 8707, RP-Initiated
Logout, the login form), each drawn from values shaped by its grammar, this deployment's real
values (clients, secrets, redirect URIs, tokens, codes, an ID token) and hostile text; plus
unknown and repeated parameters, any method, bodies in any encoding and content type, raw
bytes, and odd header values (Authorization, Origin, Host, Cookie, Accept-Language).

Console API (schemathesis): every operation of the OpenAPI schema served at
/console/api/schema/, with data that fits the schema and data that breaks it, sent as a
superuser would send it.

A request is refused when it gets a 4xx, or a redirect carrying ``error=``: then every table
a request could change must be exactly as before (failed-login records, sessions and the audit
log record refusals by design). A request that succeeds may change things; the comparison then
starts again from there.

FUZZ_EXAMPLES requests in all (default 2,000, what CI runs); the long run is

    FUZZ_EXAMPLES=20000 .venv/bin/pytest tests/test_fuzz.py

Add FUZZ_SEED=<n> to replay one run exactly (hypothesis prints the failing example anyway).
"""

import base64
import json
import os
import string
from dataclasses import dataclass
from urllib.parse import parse_qs, quote, urlencode, urlsplit

import pytest
from django.test import Client

hypothesis = pytest.importorskip("hypothesis", reason="pip install -e '.[test]'")
schemathesis = pytest.importorskip("schemathesis", reason="pip install -e '.[test]'")

from hypothesis import HealthCheck, given, seed, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from .factories import PASSWORD, ApplicationFactory, UserFactory  # noqa: E402
from .fuzzing import changes, console_api_credentials, snapshot  # noqa: E402
from .helpers import basic_auth, exchange, get_code, pkce_pair  # noqa: E402

TOTAL = int(os.environ.get("FUZZ_EXAMPLES", "2000"))
# Shares of the run: the protocol endpoints carry the provider's attack surface.
PROTOCOL_SHARE = 0.6
SENT = {"protocol": 0, "console": 0}


def fuzz_settings(examples):
    return settings(
        max_examples=max(1, examples),
        deadline=None,
        database=None,  # nothing written to .hypothesis/
        suppress_health_check=list(HealthCheck),
    )


def _maybe_seed(test):
    return seed(int(os.environ["FUZZ_SEED"]))(test) if os.environ.get("FUZZ_SEED") else test


# -- the specifications: each endpoint's parameters ------------------------------------------------

# RFC 6749 4.1.1 / 4.2.1, OIDC Core 3.1.2.1 (and 3.2.2.1, 3.3.2.1), Form Post Response Mode,
# RFC 7636 4.3, RFC 8707 2, OIDC Core 6 (request objects, refused but parsed).
AUTHORIZATION = ["response_type", "client_id", "redirect_uri", "scope", "state", "response_mode", "nonce", "display",
                 "prompt", "max_age", "ui_locales", "claims_locales", "id_token_hint", "login_hint", "acr_values",
                 "claims", "request", "request_uri", "registration", "code_challenge", "code_challenge_method",
                 "resource"]
# RFC 6749 2.3.1, 4.1.3, 4.3.2, 4.4.2, 6; RFC 7636 4.5; RFC 8707 2.2; RFC 7521 4.2 (assertions);
# RFC 8628 3.4 (the device grant, not offered).
TOKEN = ["grant_type", "code", "redirect_uri", "client_id", "client_secret", "code_verifier", "refresh_token", "scope",
         "username", "password", "resource", "audience", "assertion", "client_assertion", "client_assertion_type",
         "device_code"]
# RFC 7662 2.1 and RFC 7009 2.1, with client authentication (RFC 6749 2.3.1).
INTROSPECTION = ["token", "token_type_hint", "client_id", "client_secret"]
# OIDC Core 5.3.1; RFC 6750 2.2 and 2.3 (the access token in the body or the query).
USERINFO = ["access_token", "schema"]
# OpenID Connect RP-Initiated Logout 1.0, 2.
END_SESSION = ["id_token_hint", "logout_hint", "client_id", "post_logout_redirect_uri", "state", "ui_locales"]
# The hosted login form (and its lockout), and the consent form's own fields.
LOGIN = ["username", "password", "next", "csrfmiddlewaretoken"]
CONSENT = ["consent_form", "allow", "csrfmiddlewaretoken"]


@dataclass(frozen=True)
class Endpoint:
    path: str
    methods: tuple
    parameters: list
    required: tuple = ()  # sent in most requests, so that the checks behind them are reached
    logged_in: bool = False  # a logged-in browser as well as an anonymous one
    client_authentication: bool = False  # RFC 6749 2.3.1: HTTP Basic, or the body


ENDPOINTS = [
    Endpoint("/oidc/auth", ("GET", "POST"), AUTHORIZATION + CONSENT,
             required=("response_type", "client_id", "redirect_uri", "scope"), logged_in=True),
    Endpoint("/oidc/token", ("POST",), TOKEN, required=("grant_type",), client_authentication=True),
    Endpoint("/oidc/token/introspection", ("POST",), INTROSPECTION, required=("token",), client_authentication=True),
    Endpoint("/oidc/token/revocation", ("POST",), INTROSPECTION, required=("token",), client_authentication=True),
    Endpoint("/oidc/me", ("GET", "POST"), USERINFO),
    Endpoint("/oidc/session/end", ("GET", "POST"), END_SESSION, logged_in=True),
    Endpoint("/accounts/login/", ("GET", "POST"), LOGIN, required=("username", "password", "csrfmiddlewaretoken")),
    Endpoint("/oidc/.well-known/openid-configuration", ("GET",), []),
    Endpoint("/oidc/.well-known/jwks.json", ("GET",), []),
]
# Discovery documents have no parameters: a few examples cover them.
WEIGHTS = {e.path: (1 if not e.parameters else 8) for e in ENDPOINTS}


def per_endpoint(endpoint):
    share = TOTAL * PROTOCOL_SHARE * WEIGHTS[endpoint.path] / sum(WEIGHTS.values())
    return max(5, round(share))


# -- values, by each parameter's grammar ---------------------------------------------------------------

UNRESERVED = string.ascii_letters + string.digits + "-._~"
nasty_text = st.one_of(
    st.sampled_from(["", " ", "\x00", "%00", "%", "%ZZ", "%ff%fe", "\u202e", "\ufeff", "null", "[]", "{}", "undefined",
                     "' OR 1=1 --", "<script>alert(1)</script>", "../../etc/passwd", "\r\nSet-Cookie: x=1", "\\", "é",
                     "\ud800", "1e999", "-0", "0x10", "true"]),
    # Lengths at the edges: a column's (255), the guard's (8192), just past them.
    st.builds(lambda c, n: c * n, st.sampled_from(["A", "é", "\x00", "%", "🔑", "[", "{"]),
              st.sampled_from([1, 2, 43, 128, 129, 255, 256, 1000, 8192, 8193])),
    st.text(max_size=60),
)
integers_as_text = st.one_of(st.integers(-(10 ** 20), 10 ** 20).map(str), st.sampled_from(["0", "1.5", "abc", "", "+1", "1_0"]))
pkce_value = st.one_of(st.text(UNRESERVED, min_size=43, max_size=128), st.text(UNRESERVED, max_size=200))
uri = st.one_of(
    st.sampled_from(["https://api.example.com/", "https://rp.example.com/callback", "urn:x:y", "//no-scheme", "http://[::1",
                     "https://u:p@host/", "https://host/#frag", "mailto:a@b", "https://exa mple.com/", "javascript:alert(1)"]),
    st.builds("{}://{}/{}".format, st.sampled_from(["https", "http", "com.example.app", "x"]),
              st.text(string.ascii_lowercase + ".-", min_size=1, max_size=20), st.text(max_size=20)),
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=8,
)
claims_value = st.one_of(
    st.builds(json.dumps, st.fixed_dictionaries({}, optional={"id_token": json_values, "userinfo": json_values})),
    st.builds(json.dumps, json_values),
    st.sampled_from(["{", '{"id_token": ', "[" * 3000, "{" * 100 + "}" * 100]),
)


def spec_values(world):
    """For each parameter, what its specification says it is, and this deployment's real values."""
    v = world["values"]
    scopes = ["openid", "profile", "email", "offline_access", "read", "write", "admin", "phone", "address"]
    return {
        "response_type": st.lists(st.sampled_from(["code", "token", "id_token", "none", "device_code"]), max_size=3).map(" ".join),
        "client_id": st.sampled_from(v["client_id"]),
        "redirect_uri": st.one_of(st.sampled_from(v["redirect_uri"]), st.sampled_from(v["redirect_uri"]).map(lambda u: u + "/x"),
                                  st.sampled_from(v["redirect_uri"]).map(str.upper), uri),
        "post_logout_redirect_uri": st.one_of(st.sampled_from(v["post_logout_redirect_uri"]), uri),
        "scope": st.lists(st.sampled_from(scopes), max_size=4).map(" ".join),
        "state": st.text(max_size=40),
        "nonce": st.one_of(st.text(max_size=40), st.text(UNRESERVED, min_size=250, max_size=300)),
        "response_mode": st.sampled_from(["query", "fragment", "form_post", "jwt", "web_message", "Query"]),
        "display": st.sampled_from(["page", "popup", "touch", "wap", "tv"]),
        "prompt": st.lists(st.sampled_from(["none", "login", "consent", "select_account", "create"]), max_size=3).map(" ".join),
        "max_age": integers_as_text,
        "ui_locales": st.lists(st.sampled_from(["en", "zh-Hans", "fr-CA", "x-pig-latin", "*", "é"]), max_size=3).map(" ".join),
        "claims_locales": st.sampled_from(["en", "zh"]),
        "id_token_hint": st.sampled_from(v["id_token"]),
        "login_hint": st.sampled_from(["alice", "bob", "alice@example.com"]),
        "logout_hint": st.sampled_from(["alice", "bob"]),
        "acr_values": st.sampled_from(["urn:mace:incommon:iap:silver", "0"]),
        "claims": claims_value,
        "request": st.sampled_from(["eyJhbGciOiJub25lIn0.e30.", "x"]),
        "request_uri": uri,
        "registration": st.builds(json.dumps, json_values),
        "code_challenge": st.one_of(pkce_value, st.just(v["code_challenge"])),
        "code_challenge_method": st.sampled_from(["S256", "plain", "S512", ""]),
        "resource": uri,
        "grant_type": st.sampled_from(["authorization_code", "password", "client_credentials", "refresh_token", "implicit",
                                       "urn:ietf:params:oauth:grant-type:device_code",
                                       "urn:ietf:params:oauth:grant-type:jwt-bearer",
                                       "urn:ietf:params:oauth:grant-type:token-exchange", "urn:ietf:params:oauth:grant-type:saml2-bearer"]),
        "code": st.sampled_from(v["code"]),
        "client_secret": st.sampled_from(v["client_secret"]),
        "code_verifier": st.one_of(pkce_value, st.just(v["code_verifier"])),
        "refresh_token": st.sampled_from(v["token"]),
        "username": st.sampled_from(["alice", "bob", "nobody", "ALICE", "alice\x00", "root"]),
        "password": st.sampled_from(["wrong", PASSWORD, ""]),
        "audience": uri,
        "assertion": st.sampled_from(v["id_token"]),
        "client_assertion": st.sampled_from(v["id_token"]),
        "client_assertion_type": st.sampled_from(["urn:ietf:params:oauth:client-assertion-type:jwt-bearer", "x"]),
        "device_code": st.text(max_size=20),
        "token": st.sampled_from(v["token"]),
        "access_token": st.sampled_from(v["token"]),
        "token_type_hint": st.sampled_from(["access_token", "refresh_token", "id_token", "nonsense"]),
        "schema": st.just("openid"),
        "next": st.sampled_from(["/oidc/auth?client_id=x", "https://evil.example.com/", "//evil.example.com", "/console/"]),
        "csrfmiddlewaretoken": st.sampled_from(v["csrf"]),
        "consent_form": st.just("1"),
        "allow": st.sampled_from(["1", "true", ""]),
    }


@st.composite
def parameters(draw, endpoint, grammar):
    """Each of the endpoint's parameters, present or not, by its grammar or hostile; unknown and repeated ones."""
    pairs = []
    for name in endpoint.parameters:
        if draw(st.integers(0, 9)) < (8 if name in endpoint.required else 3):
            value = draw(grammar[name] if draw(st.integers(0, 4)) else nasty_text)
            pairs.append((name, value))
            if draw(st.integers(0, 12)) == 0:  # the same parameter twice
                pairs.append((name, draw(st.one_of(grammar[name], nasty_text))))
    for _ in range(draw(st.integers(0, 2))):  # parameters no specification defines
        pairs.append((draw(st.one_of(st.text(max_size=12), nasty_text)), draw(nasty_text)))
    return draw(st.permutations(pairs)) if pairs else pairs


def _encode(pairs, encoding):
    return urlencode(pairs, encoding=encoding, errors="replace").encode("ascii")


# Header values as a server receives them: the raw bytes decoded as Latin-1.
latin1_text = st.text(st.characters(min_codepoint=1, max_codepoint=255), max_size=60)


@st.composite
def requests_for(draw, endpoint, grammar, values):
    method = draw(st.one_of(st.sampled_from(endpoint.methods), st.sampled_from(endpoint.methods),
                            st.sampled_from(endpoint.methods),
                            st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"])))
    pairs = draw(parameters(endpoint, grammar))
    # A POST's parameters belong in its form body (RFC 6749 3.2, OIDC Core 3.1.2.1); mostly there.
    in_query = method in ("GET", "HEAD") or draw(st.integers(0, 3)) == 0
    query_pairs, body_pairs = (pairs, []) if in_query else ([], pairs)
    encoding = draw(st.sampled_from(["form"] * 6 + ["form-latin1", "json", "multipart", "multipart", "raw", "none"]))
    if encoding == "form":
        body, content_type = _encode(body_pairs, "utf-8"), "application/x-www-form-urlencoded"
    elif encoding == "form-latin1":
        body, content_type = _encode(body_pairs, "latin-1"), "application/x-www-form-urlencoded; charset=latin-1"
    elif encoding == "json":
        body, content_type = json.dumps(dict(body_pairs)).encode(), "application/json"
    elif encoding == "multipart":
        boundary = "fuzzboundary"
        names = [quote(k, errors="replace") for k, _ in body_pairs]
        parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{n}"\r\n\r\n{v}\r\n' for n, (_, v) in zip(names, body_pairs)]
        body = ("".join(parts) + f"--{boundary}--\r\n").encode("utf-8", "replace")
        content_type = draw(st.sampled_from([f"multipart/form-data; boundary={boundary}", "multipart/form-data"]))
    elif encoding == "raw":
        body = draw(st.binary(max_size=300))
        content_type = draw(st.sampled_from(["application/x-www-form-urlencoded", "text/plain", "application/octet-stream",
                                             "application/x-www-form-urlencoded; charset=utf-16", "x/y; charset=bogus"]))
    else:
        body, content_type = b"", draw(st.sampled_from(["", "application/x-www-form-urlencoded"]))
    query = draw(st.one_of(
        st.just(urlencode(query_pairs, errors="replace")),
        st.just(urlencode(query_pairs, errors="replace")),
        st.sampled_from(["%", "%ZZ=1", "a=%ff", "client_id=%00", "=&=&", "&&&", "scope=openid&scope=openid", ";;"]),
        latin1_text.map(lambda raw: raw.replace("#", "")),  # raw bytes, not percent-encoded
    ))
    headers = {}
    basic = st.builds(basic_auth, st.sampled_from(values["client_id"]), st.sampled_from(values["client_secret"]))
    auth = draw(st.one_of(
        st.none(), st.none(), basic, *([basic, basic] if endpoint.client_authentication else []),
        st.builds(lambda t: f"Bearer {t}", st.sampled_from(values["token"])),
        st.builds(lambda scheme, raw: f"{scheme} {raw}", st.sampled_from(["Basic", "Bearer", "Token", "Digest"]), latin1_text),
        st.builds(lambda raw: "Basic " + base64.b64encode(raw).decode(), st.binary(max_size=40)),
        st.sampled_from(["Basic", "Bearer", "Basic " + "A" * 9000, "Basic " + base64.b64encode(b"no-colon").decode()]),
    ))
    if auth is not None:
        headers["HTTP_AUTHORIZATION"] = auth
    if draw(st.integers(0, 2)) == 0:
        headers["HTTP_ORIGIN"] = draw(st.one_of(st.sampled_from(["https://spa.example.com", "null", "https://evil.example.com"]), latin1_text))
    if draw(st.integers(0, 4)) == 0:
        headers["HTTP_ACCEPT_LANGUAGE"] = draw(st.one_of(st.sampled_from(["zh-Hans", "*", "xx;q=abc", "é" * 300, ""]), latin1_text))
    if draw(st.integers(0, 6)) == 0:
        headers["HTTP_X_FORWARDED_FOR"] = draw(st.one_of(st.sampled_from(["1.2.3.4", "garbage", "::1, 10.0.0.1"]), latin1_text))
    if draw(st.integers(0, 9)) == 0:
        headers["HTTP_HOST"] = draw(st.sampled_from(["evil.example.com", "127.0.0.1:99999", "localhost", "[::1", "é"]))
    if draw(st.integers(0, 9)) == 0:
        headers["HTTP_COOKIE"] = draw(st.one_of(st.sampled_from(["sessionid=x", "csrftoken=" + "a" * 64, ";;;"]), latin1_text))
    return {"method": method, "query": query, "body": body, "content_type": content_type, "headers": headers,
            "logged_in": endpoint.logged_in and draw(st.booleans())}


# -- the world the requests are thrown at ----------------------------------------------------------------


@pytest.fixture
def world(db, settings):
    """Users, an application of each type, and real values: secrets, a code, tokens, an ID token."""
    # The hasher is the slow part of a login; the fuzz is about input handling, not hashing.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    from oidc_provider import keys

    keys.ensure_active_key()
    user = UserFactory(username="alice")
    UserFactory(username="bob", is_active=False)
    web = ApplicationFactory(application_type="web", grant_types=["authorization_code", "hybrid", "password",
                                                                   "client_credentials", "refresh_token"])
    spa = ApplicationFactory(application_type="spa", redirect_uris="https://spa.example.com/cb",
                             grant_types=["authorization_code", "implicit"], allowed_origins="https://spa.example.com")
    native = ApplicationFactory(application_type="native", redirect_uris="com.example.app:/cb http://127.0.0.1/cb")
    service = ApplicationFactory(application_type="service", redirect_uris="", grant_types=["client_credentials"])
    # Real tokens and an ID token, from a code flow through HTTP; one code left unspent.
    browser = Client(raise_request_exception=False)
    browser.force_login(user)
    verifier, challenge = pkce_pair()
    tokens = exchange(browser, web, get_code(browser, web, scope="openid profile email offline_access")["code"],
                      secret=web.plaintext_secret).json()
    unspent = get_code(browser, web, code_challenge=challenge, code_challenge_method="S256")["code"]
    logged_in = Client(enforce_csrf_checks=True, raise_request_exception=False)
    logged_in.force_login(user)
    anonymous = Client(enforce_csrf_checks=True, raise_request_exception=False)
    csrf = anonymous.get("/accounts/login/").cookies.get("csrftoken")
    apps = [web, spa, native, service]
    values = {
        "client_id": [a.client_id for a in apps] + ["unknown-client", ""],
        "client_secret": [web.plaintext_secret, service.plaintext_secret, "wrong-secret", web.client_id, ""],
        "redirect_uri": [u for a in apps for u in a.redirect_uris.split()],
        "post_logout_redirect_uri": ["https://rp.example.com/logged-out", "https://evil.example.com/"],
        "code": [unspent, "spent", ""],
        "token": [tokens["access_token"], tokens["refresh_token"], tokens["id_token"], "nope"],
        "id_token": [tokens["id_token"], tokens["id_token"][:-4] + "AAAA", "eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0.", "x"],
        "code_challenge": challenge,
        "code_verifier": verifier,
        "csrf": [csrf.value if csrf else "x", "x"],
    }
    return {"logged_in": logged_in, "anonymous": anonymous, "values": values, "web": web, "user": user}


def send(world, path, request):
    client = world["logged_in"] if request["logged_in"] else world["anonymous"]
    url = f"{path}?{request['query']}" if request["query"] else path
    SENT["protocol"] += 1
    return client.generic(request["method"], url, data=request["body"], content_type=request["content_type"],
                          **request["headers"])


def refused(response):
    """A 4xx, or a redirect that carries an OAuth error back to the client."""
    if 400 <= response.status_code < 500:
        return True
    if response.status_code in (301, 302, 303) and response.has_header("Location"):
        parts = urlsplit(response["Location"])
        return "error" in parse_qs(parts.query) or "error" in parse_qs(parts.fragment)
    return False


def _reset_login_counters():
    """Failed logins and client authentications are counted and lock out; forget them so that
    lockouts and throttles do not hide deeper paths."""
    from django.core.cache import cache

    from oidc_provider.models import ThrottleCount

    cache.clear()
    ThrottleCount.objects.all().delete()
    try:
        from axes.utils import reset
    except ImportError:  # pragma: no cover
        return
    reset()


def assert_healthy(world):
    """After the fuzz: discovery, a whole code flow, userinfo and the console API still work."""
    client = Client(raise_request_exception=True)
    assert client.get("/oidc/.well-known/openid-configuration").status_code == 200
    client.force_login(world["user"])
    web = world["web"]
    tokens = exchange(client, web, get_code(client, web)["code"], secret=web.plaintext_secret)
    assert tokens.status_code == 200, tokens.content
    me = Client().get("/oidc/me", HTTP_AUTHORIZATION=f"Bearer {tokens.json()['access_token']}")
    assert me.status_code == 200 and me.json()["sub"]


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=[e.path for e in ENDPOINTS])
def test_hostile_input_at_a_protocol_endpoint_gets_4xx_and_changes_nothing(world, endpoint):
    """Malformed input of any kind gets a 4xx with a clear message, never a 500, and changes nothing."""
    grammar = spec_values(world)
    state = {"before": snapshot()}

    @_maybe_seed
    @fuzz_settings(per_endpoint(endpoint))
    @given(request=requests_for(endpoint, grammar, world["values"]))
    def fuzz(request):
        _reset_login_counters()
        response = send(world, endpoint.path, request)
        assert response.status_code < 500, (response.status_code, request)
        after = snapshot()
        if refused(response):
            assert changes(state["before"], after) == {}, f"{request!r} -> {response.status_code} changed state"
        state["before"] = after

    fuzz()
    assert_healthy(world)


# -- the console API, from its OpenAPI schema ---------------------------------------------------------------


@pytest.fixture
def console(db, world):
    """A superuser's credentials and the API's schema as the API serves it."""
    admin = UserFactory(username="root", is_staff=True, is_superuser=True)
    headers = console_api_credentials(admin)
    response = Client().get("/console/api/schema/", {"format": "json"}, HTTP_ACCEPT="application/json", **headers)
    assert response.status_code == 200, response.content[:300]
    schema = json.loads(response.content)
    return {"headers": headers, "schema": schema, "admin": admin}


def console_operations():
    """Every operation of the console API's schema, as labels ("GET /console/api/..."), for
    collection; the test itself reads the schema the API serves."""
    from drf_spectacular.generators import SchemaGenerator

    paths = SchemaGenerator().get_schema(request=None, public=True)["paths"]
    return [f"{method.upper()} {path}" for path, item in paths.items() for method in item if method != "parameters"]


CONSOLE_OPERATIONS = console_operations()
CONSOLE_PER_OPERATION = max(5, round(TOTAL * (1 - PROTOCOL_SHARE) / len(CONSOLE_OPERATIONS)))


def real_path_parameters(label):
    """Path parameters naming objects that exist, so generated bodies reach past the 404."""
    from oidc_provider import access_keys
    from oidc_provider.models import Application, SigningKey

    account = access_keys.get_or_create_account("fuzz-account", ["read"])
    if "/access-keys/" in label:
        object_id = access_keys.issue(account)[0].pk
    else:
        object_id = account.pk
    values = {
        "client_id": Application.objects.order_by("pk").values_list("client_id", flat=True).first(),
        "id": object_id,
        "kid": SigningKey.objects.values_list("kid", flat=True).first(),
        "application_type": "web",
        "grant": "implicit",
    }
    return {k: v for k, v in values.items() if v is not None and "{" + k + "}" in label}


def _send_case(case, headers):
    """A schemathesis case through Django's test client, as the API's clients send it."""
    kwargs = case.as_transport_kwargs(base_url="http://testserver")
    sent_headers = kwargs.get("headers") or {}
    request_headers = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in sent_headers.items()
                       if k.lower() not in ("content-type", "content-length", "authorization", "host")}
    query = urlencode(kwargs.get("params") or {}, doseq=True)
    path = urlsplit(kwargs["url"]).path + (f"?{query}" if query else "")
    content_type = sent_headers.get("Content-Type", "application/json")
    if "json" in kwargs:
        data, content_type = json.dumps(kwargs["json"]), "application/json"
    else:
        data = kwargs.get("data") or b""
        if isinstance(data, dict):
            data, content_type = urlencode(data, doseq=True), "application/x-www-form-urlencoded"
    SENT["console"] += 1
    client = Client(raise_request_exception=False)
    response = client.generic(case.method.upper(), path, data=data, content_type=content_type, **headers, **request_headers)
    if SENT["console"] % 7 == 0:  # what a browser's preflight and DRF's metadata see
        SENT["console"] += 1
        options = client.options(path, **headers)
        assert options.status_code < 500, ("OPTIONS", path, options.status_code)
    return response


@pytest.mark.parametrize("label", CONSOLE_OPERATIONS)
def test_every_console_api_operation_answers_generated_input_without_5xx(console, label):
    """Every operation in the schema, with input that fits it and input that breaks it (schemathesis):
    never a 5xx; a refused request changes nothing."""
    from schemathesis import GenerationMode

    schema = schemathesis.openapi.from_dict(console["schema"])
    operation = schema.find_operation_by_label(label)
    assert operation is not None, f"{label} is not in the schema the API serves"
    real = real_path_parameters(label)
    strategies = [operation.as_strategy(mode) for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)]
    if real:
        strategies += [operation.as_strategy(mode, path_parameters=real)
                       for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)]
    state = {"before": snapshot()}

    @_maybe_seed
    @fuzz_settings(CONSOLE_PER_OPERATION)
    @given(case=st.one_of(strategies))
    def fuzz(case):
        _reset_login_counters()
        response = _send_case(case, console["headers"])
        detail = (response.status_code, case.method, case.formatted_path, case.query, case.body)
        assert response.status_code < 500, detail
        after = snapshot()
        if 400 <= response.status_code < 500:
            assert changes(state["before"], after) == {}, detail
        state["before"] = after

    fuzz()
    # Healthy afterwards: the API's lists still answer.
    client = Client(raise_request_exception=True)
    for path in ("/console/api/", "/console/api/applications/", "/console/api/policy/", "/console/api/audit-events/"):
        assert client.get(path, **console["headers"]).status_code == 200, path


def test_the_fuzz_sent_enough_requests(request):
    """FUZZ_EXAMPLES requests in all, when the whole module ran."""
    names = [i.name for i in request.session.items if i.module.__name__ == __name__]
    if not all(any(n.startswith(prefix) for n in names) for prefix in ("test_hostile_input", "test_every_console_api")):
        pytest.skip("only part of the fuzz was selected")
    if request.session.testsfailed:
        pytest.skip("a fuzz test failed first")
    assert SENT["protocol"] + SENT["console"] >= TOTAL, SENT
