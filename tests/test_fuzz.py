"""Hostile input: property-based fuzzing of the protocol endpoints and the login form (hypothesis).

Generated requests -- any method, parameters known and unknown, values valid, almost valid and
absurd (NUL bytes, bad percent-encodings, huge and non-ASCII values, repeated keys), bodies in
any encoding or content type, odd header values -- go to /oidc/auth, /oidc/token, /oidc/me,
/oidc/token/introspection, /oidc/token/revocation, /oidc/session/end and /accounts/login/
through Django's test client (in-process, with CSRF enforced as a browser would see it).
For every request: no 5xx (an exception in a view fails the test, shrunk to the smallest
request that shows it), no token issued, and no state changed (users, applications, codes,
tokens, consents, keys, policy, access keys: the failed-login records that CONTRACT section 7
asks for are the only rows allowed to appear).

Every CI run sends FUZZ_EXAMPLES requests (default 2,100: 300 per endpoint). The long run
(>= 20,000 requests, about 15-20 minutes on two cores) is:

    FUZZ_EXAMPLES=20000 .venv/bin/pytest tests/test_fuzz.py

Add FUZZ_SEED=<n> to replay one run exactly (hypothesis prints the failing example anyway).
"""

import base64
import hashlib
import json
import os
import re
from datetime import timedelta
from urllib.parse import quote, urlencode

import pytest
from django.test import Client
from django.utils import timezone

hypothesis = pytest.importorskip("hypothesis", reason="pip install 'hypothesis>=6'")

from hypothesis import HealthCheck, assume, given, seed, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from .factories import PASSWORD, ApplicationFactory, UserFactory  # noqa: E402

TOTAL = int(os.environ.get("FUZZ_EXAMPLES", "2100"))
ENDPOINTS = [
    "/oidc/auth",
    "/oidc/token",
    "/oidc/me",
    "/oidc/token/introspection",
    "/oidc/token/revocation",
    "/oidc/session/end",
    "/accounts/login/",
]
PER_ENDPOINT = max(1, -(-TOTAL // len(ENDPOINTS)))
SENT = {"requests": 0}

FUZZ_SETTINGS = settings(
    max_examples=PER_ENDPOINT,
    deadline=None,
    database=None,  # nothing written to .hypothesis/
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _maybe_seed(test):
    return seed(int(os.environ["FUZZ_SEED"]))(test) if os.environ.get("FUZZ_SEED") else test


# -- the world the requests are thrown at ---------------------------------------------------------


@pytest.fixture
def world(db, settings):
    """Users, one application of each type (with tokens, a code, a consent), and their values."""
    # The hasher is the slow part of a login; the fuzz is about input handling, not hashing.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    from oauth2_provider.models import get_access_token_model, get_grant_model, get_refresh_token_model

    from oidc_provider import keys
    from oidc_provider.models import Consent

    keys.ensure_active_key()
    user = UserFactory(username="alice")
    UserFactory(username="bob", is_active=False)
    web = ApplicationFactory(application_type="web", grant_types=["authorization_code", "hybrid", "password",
                                                                   "client_credentials", "refresh_token"])
    spa = ApplicationFactory(application_type="spa", redirect_uris="https://spa.example.com/cb",
                             grant_types=["authorization_code", "implicit"], allowed_origins="https://spa.example.com")
    native = ApplicationFactory(application_type="native", redirect_uris="com.example.app:/cb http://127.0.0.1/cb")
    service = ApplicationFactory(application_type="service", redirect_uris="", grant_types=["client_credentials"])
    AccessToken, RefreshToken, Grant = get_access_token_model(), get_refresh_token_model(), get_grant_model()
    later = timezone.now() + timedelta(hours=1)
    # Real tokens of the confidential app only: without its secret nobody may revoke them.
    access = AccessToken.objects.create(user=user, application=web, token="fuzz-access-token-web", expires=later,
                                        scope="openid profile email")
    RefreshToken.objects.create(user=user, application=web, token="fuzz-refresh-token-web", access_token=access)
    Grant.objects.create(user=user, application=web, code="fuzz-code-web", expires=later,
                         redirect_uri=web.redirect_uris.split()[0], scope="openid")
    Consent.objects.create(user=user, application=spa, scope="openid")
    # What a client sees, as a client sees it: an exception inside Django that still ends in a
    # 4xx page (e.g. a bad multipart body) is not a failure; any 5xx is.
    logged_in = Client(enforce_csrf_checks=True, raise_request_exception=False)
    logged_in.force_login(user)
    anonymous = Client(enforce_csrf_checks=True, raise_request_exception=False)
    csrf_page = anonymous.get("/accounts/login/")
    apps = [web, spa, native, service]
    values = {
        "client_id": [a.client_id for a in apps] + ["unknown-client"],
        "client_secret": ["wrong-secret", web.client_id, ""],
        "redirect_uri": [u for a in apps for u in a.redirect_uris.split()]
        + ["https://evil.example.com/cb", "http://127.0.0.1:1/cb", "javascript:alert(1)", "com.example.app:/other"],
        "post_logout_redirect_uri": ["https://rp.example.com/logged-out", "https://evil.example.com/"],
        "response_type": ["code", "token", "id_token", "id_token token", "code id_token", "code token",
                          "code id_token token", "none", "token code", "device_code"],
        "response_mode": ["query", "fragment", "form_post", "jwt", "web_message"],
        "grant_type": ["authorization_code", "password", "client_credentials", "refresh_token", "implicit",
                       "urn:ietf:params:oauth:grant-type:device_code", "urn:ietf:params:oauth:grant-type:jwt-bearer"],
        "scope": ["openid", "openid profile email", "read write", "openid offline_access", "admin", ""],
        "code": ["fuzz-code-web", "spent", ""],
        "refresh_token": ["fuzz-refresh-token-web", "nope"],
        "token": ["fuzz-access-token-web", "fuzz-refresh-token-web", "nope"],
        "token_type_hint": ["access_token", "refresh_token", "id_token", "nonsense"],
        "code_challenge": [base64.urlsafe_b64encode(hashlib.sha256(b"v" * 43).digest()).rstrip(b"=").decode(), "short"],
        "code_challenge_method": ["S256", "plain", "S512"],
        "code_verifier": ["v" * 43, "v" * 200, "short"],
        "username": ["alice", "bob", "nobody", "alice\x00", "ALICE"],
        "password": ["wrong", PASSWORD[::-1], ""],
        "prompt": ["none", "login", "consent", "select_account", "none login"],
        "max_age": ["0", "-1", "99999999999999999999", "1.5", "abc"],
        "id_token_hint": ["eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0.", "not-a-jwt"],
        "nonce": ["n", ""],
        "state": ["s", ""],
        "ui_locales": ["zh-Hans", "xx"],
        "claims": ['{"id_token": {"email": null}}', "{", "[]"],
        "next": ["/oidc/auth?client_id=x", "https://evil.example.com/", "//evil.example.com"],
        "csrfmiddlewaretoken": [csrf_page.cookies["csrftoken"].value if "csrftoken" in csrf_page.cookies else "x"],
        "allow": ["1", "true"],
        "consent_form": ["1"],
    }
    return {"logged_in": logged_in, "anonymous": anonymous, "values": values, "web": web}


def snapshot():
    """Everything a request must not change (failed-login records apart)."""
    from django.contrib.auth import get_user_model
    from oauth2_provider.models import get_access_token_model, get_grant_model, get_id_token_model, get_refresh_token_model

    from oidc_provider.models import AccessAccount, AccessKey, Application, Consent, GrantPolicy, RedeemedCode, SigningKey

    state = {
        "users": list(get_user_model().objects.order_by("pk").values_list("username", "password", "is_active", "last_login")),
        "apps": list(Application.objects.order_by("pk").values_list(
            "client_id", "client_secret", "redirect_uris", "post_logout_redirect_uris", "grant_types", "allowed_origins")),
        "access": list(get_access_token_model().objects.order_by("pk").values_list("pk", "expires", "scope")),
        "refresh": list(get_refresh_token_model().objects.order_by("pk").values_list("pk", "revoked")),
        "id": get_id_token_model().objects.count(),
        "grants": list(get_grant_model().objects.order_by("pk").values_list("pk", "code")),
        "consents": list(Consent.objects.order_by("pk").values_list("pk", "scope")),
        "keys": list(SigningKey.objects.order_by("pk").values_list("kid", "status")),
        "policy": list(GrantPolicy.objects.order_by("pk").values_list("application_type", "grant", "state")),
        "redeemed": RedeemedCode.objects.count(),
        "accounts": list(AccessAccount.objects.order_by("pk").values_list("name", "scopes", "is_active")),
        "access_keys": list(AccessKey.objects.order_by("pk").values_list("access_key", "revoked_at")),
    }
    try:
        from console.models import DailyTokenCount
    except ImportError:  # pragma: no cover
        pass
    else:
        state["daily_tokens"] = list(DailyTokenCount.objects.values_list(*[f.name for f in DailyTokenCount._meta.fields]))
    return state


# -- what a request may be made of ------------------------------------------------------------------

KNOWN_KEYS = [
    "client_id", "client_secret", "redirect_uri", "post_logout_redirect_uri", "response_type", "response_mode",
    "grant_type", "scope", "code", "refresh_token", "token", "token_type_hint", "code_challenge",
    "code_challenge_method", "code_verifier", "username", "password", "prompt", "max_age", "id_token_hint",
    "nonce", "state", "ui_locales", "claims", "next", "csrfmiddlewaretoken", "allow", "consent_form",
    "login_hint", "request", "request_uri", "access_token", "logout_hint", "resource", "audience",
]

safe_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40)
nasty_text = st.one_of(
    st.sampled_from(["", " ", "\x00", "%00", "%", "%ZZ", "%ff%fe", "\u202e", "\ufeff", "null", "[]", "{}", "undefined",
                     "' OR 1=1 --", "<script>alert(1)</script>", "../../etc/passwd", "\r\nSet-Cookie: x=1", "\\", "é"]),
    st.builds(lambda c, n: c * n, st.sampled_from(["A", "é", "\x00", "%", "🔑"]), st.integers(0, 12000)),
    safe_text,
)


@st.composite
def params(draw, values):
    pairs = []
    for _ in range(draw(st.integers(0, 8))):
        key = draw(st.one_of(st.sampled_from(KNOWN_KEYS), st.sampled_from(KNOWN_KEYS), safe_text, nasty_text))
        known = values.get(key)
        value = draw(st.one_of(st.sampled_from(known), nasty_text) if known else nasty_text)
        pairs.append((key, value))
        if draw(st.integers(0, 9)) == 0:  # the same key twice
            pairs.append((key, draw(nasty_text)))
    return pairs


def _encode(pairs, encoding):
    return urlencode([(k, v) for k, v in pairs], encoding=encoding, errors="replace").encode("ascii")


@st.composite
def requests_for(draw, values):
    method = draw(st.sampled_from(["GET", "POST", "POST", "GET", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"]))
    query = draw(params(values))
    body_pairs = draw(params(values))
    encoding = draw(st.sampled_from(["form", "form", "form-latin1", "json", "multipart", "raw", "bad-utf8", "none"]))
    if encoding == "form":
        body, content_type = _encode(body_pairs, "utf-8"), "application/x-www-form-urlencoded"
    elif encoding == "form-latin1":
        body, content_type = _encode(body_pairs, "latin-1"), "application/x-www-form-urlencoded; charset=latin-1"
    elif encoding == "json":
        body, content_type = json.dumps(dict(body_pairs)).encode(), "application/json"
    elif encoding == "multipart":
        boundary = "fuzzboundary"
        parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{quote(k)}"\r\n\r\n{v}\r\n' for k, v in body_pairs]
        body = ("".join(parts) + f"--{boundary}--\r\n").encode("utf-8", "replace")
        content_type = draw(st.sampled_from([f"multipart/form-data; boundary={boundary}", "multipart/form-data"]))
    elif encoding == "raw":
        body = draw(st.binary(max_size=300))
        content_type = draw(st.sampled_from(["application/x-www-form-urlencoded", "text/plain", "application/octet-stream",
                                             "application/x-www-form-urlencoded; charset=utf-16", "x/y; charset=bogus"]))
    elif encoding == "bad-utf8":
        body = b"grant_type=\xff\xfe&client_id=%ff&scope=\xc3\x28&code=\xed\xa0\x80"
        content_type = "application/x-www-form-urlencoded"
    else:
        body, content_type = b"", draw(st.sampled_from(["", "application/x-www-form-urlencoded"]))
    raw_query = draw(st.one_of(
        st.just(urlencode(query, errors="replace")),
        st.just(urlencode(query, errors="replace")),
        st.sampled_from(["%", "%ZZ=1", "a=%ff", "client_id=%00", "=&=&", "&&&", "scope=openid&scope=openid", ";;"]),
    ))
    headers = {}
    auth = draw(st.one_of(
        st.none(),
        st.builds(lambda i, s: "Basic " + base64.b64encode(f"{i}:{s}".encode("utf-8", "replace")).decode(),
                  st.sampled_from(values["client_id"]), st.sampled_from(values["client_secret"]) | safe_text),
        st.builds(lambda t: f"Bearer {t}", st.sampled_from(values["token"]) | nasty_text),
        st.sampled_from(["Basic", "Basic !!!", "Basic " + base64.b64encode(b"\xff\xfe:x").decode(), "Bearer", "Digest x",
                         "Basic " + base64.b64encode(b"no-colon").decode(), "bearer  ", "Basic " + "A" * 9000]),
    ))
    if auth is not None:
        headers["HTTP_AUTHORIZATION"] = auth
    if draw(st.booleans()):
        headers["HTTP_ORIGIN"] = draw(st.sampled_from(["https://spa.example.com", "null", "https://evil.example.com", "x"]))
    if draw(st.integers(0, 4)) == 0:
        headers["HTTP_ACCEPT_LANGUAGE"] = draw(st.sampled_from(["zh-Hans", "*", "xx;q=abc", "é" * 300, ""]))
    if draw(st.integers(0, 6)) == 0:
        headers["HTTP_X_FORWARDED_FOR"] = draw(st.sampled_from(["1.2.3.4", "garbage", "::1, 10.0.0.1"]))
    if draw(st.integers(0, 9)) == 0:
        headers["HTTP_HOST"] = draw(st.sampled_from(["evil.example.com", "127.0.0.1:99999", "localhost", "[::1"]))
    if draw(st.integers(0, 9)) == 0:
        headers["HTTP_COOKIE"] = draw(st.sampled_from(["sessionid=x", "csrftoken=" + "a" * 64, "a=\x01", ";;;"]))
    logged_in = draw(st.booleans())
    return {"method": method, "query": raw_query, "body": body, "content_type": content_type,
            "headers": headers, "logged_in": logged_in}


def send(world, path, request):
    client = world["logged_in"] if request["logged_in"] and path == "/oidc/auth" else world["anonymous"]
    url = f"{path}?{request['query']}" if request["query"] else path
    SENT["requests"] += 1
    return client.generic(request["method"], url, data=request["body"], content_type=request["content_type"],
                          **request["headers"])


def _reset_login_counters():
    """Failed logins are recorded (CONTRACT section 7); reset them so lockouts do not hide deeper paths."""
    from django.core.cache import cache

    cache.clear()
    try:
        from axes.utils import reset
    except ImportError:  # pragma: no cover
        return
    reset()


# -- provider bugs the fuzz found; each has a deterministic test below --------------------------------
#
# The fuzz steers around a known bug (so that it keeps looking for the next one) only while
# that bug's xfail test below fails; when a fix makes that test pass, strict xfail turns it
# red: then delete the xfail mark and the entry here.

OAUTHLIB_INVALID_HEX = re.compile(r"%[^0-9A-Fa-f]|%[0-9A-Fa-f][^0-9A-Fa-f]")  # oauthlib.common.INVALID_HEX_PATTERN
DISALLOWED_HOSTS = ("evil.example.com", "[::1")


def _charset(content_type):
    for part in content_type.split(";")[1:]:
        name, _, value = part.strip().partition("=")
        if name.lower() == "charset":
            return value.strip().lower()
    return None


KNOWN_BUGS = {}  # none open: the bugs found here are fixed and keep their tests below


def known_bug(path, request):
    return any(triggers(path, request) for triggers in KNOWN_BUGS.values())


INVALID_HEX_REASON = (
    "A query string with an invalid percent-escape (e.g. ?%ZZ=1 or ?a=%zz) gives 500 at /oidc/auth, /oidc/token, "
    "/oidc/me, /oidc/token/introspection and /oidc/token/revocation: oauthlib.common.Request() urldecodes the URI "
    "query with oauthlib.common.urldecode(), which raises ValueError('Invalid hex encoding in query string.') "
    "(INVALID_HEX_PATTERN); nothing between Django and oauthlib catches it. oidc_provider/views/guards.py "
    "reject_malformed_input() checks only NUL bytes and lengths of the decoded parameters, so it never sees the raw "
    "escape. CONTRACT section 7: malformed input gets a 4xx with a clear message, never a 500. A fix: in "
    "reject_malformed_input, answer 400 invalid_request when request.META['QUERY_STRING'] matches oauthlib's "
    "INVALID_HEX_PATTERN (or catch ValueError around the oauthlib call)."
)


@pytest.mark.parametrize("path", ["/oidc/auth", "/oidc/token", "/oidc/me", "/oidc/token/introspection", "/oidc/token/revocation"])
@pytest.mark.parametrize("query", ["%ZZ=1", "a=%zz"])
def test_invalid_percent_escape_in_the_query_is_a_4xx(db, path, query):
    response = Client().generic("POST" if path != "/oidc/auth" else "GET", f"{path}?{query}", b"",
                                content_type="application/x-www-form-urlencoded")
    assert 400 <= response.status_code < 500


ERROR_VIEWS_REASON = (
    "Django's default error views (django.views.defaults.bad_request / server_error, used because project/urls.py "
    "sets no handler400/handler500) are wrapped in requires_csrf_token, whose CSRF check reads request.POST again "
    "when the request carries a csrftoken cookie (any browser that has seen our login page). When request.POST is "
    "what failed, the error view fails the same way and the client gets 500: (a) a POST with Content-Type "
    "'application/x-www-form-urlencoded; charset=latin-1' (any non-UTF-8 charset): HttpRequest._load_post_and_files "
    "raises BadRequest on every access, so handler400 and then handler500 raise and gunicorn answers 500 at every "
    "endpoint including /accounts/login/; (b) a disallowed Host header with a multipart body whose part header is "
    "too large: DisallowedHost -> handler400 -> MultiPartParserError -> handler500 -> 500. Verified on the live "
    "gunicorn server. CONTRACT section 7: a 4xx, never a 500. A fix: handler400/handler403/handler500 in "
    "project/urls.py that render the hosted error page without any CSRF processing (or a first middleware that "
    "answers 400 to a form body declared in a charset other than UTF-8)."
)


def _status(client, method, path, **kwargs):
    try:
        return client.generic(method, path, **kwargs).status_code
    except Exception:  # noqa: BLE001 -- the exception escaped Django's handler: the server answers 500
        return 500


@pytest.mark.parametrize("path", ENDPOINTS)
def test_form_body_in_another_charset_is_a_4xx(db, path):
    browser = Client(enforce_csrf_checks=True, raise_request_exception=False)
    browser.get("/accounts/login/")  # the csrftoken cookie
    status = _status(browser, "POST", path, data=b"client_id=x&grant_type=password",
                     content_type="application/x-www-form-urlencoded; charset=latin-1")
    assert 400 <= status < 500


@pytest.mark.parametrize("path", ["/oidc/token", "/accounts/login/"])
def test_bad_host_with_a_bad_multipart_body_is_a_4xx(db, path):
    browser = Client(enforce_csrf_checks=True, raise_request_exception=False)
    browser.get("/accounts/login/")
    body = b'--b\r\nContent-Disposition: form-data; name="' + b"A" * 9000 + b'"\r\n\r\n\r\n--b--\r\n'
    status = _status(browser, "POST", path, data=body, content_type="multipart/form-data; boundary=b",
                     HTTP_HOST="evil.example.com")
    assert 400 <= status < 500


@pytest.mark.parametrize("path", ENDPOINTS)
def test_hostile_input_gets_4xx_and_changes_nothing(world, path):
    before = snapshot()

    @_maybe_seed
    @FUZZ_SETTINGS
    @given(request=requests_for(world["values"]))
    def fuzz(request):
        assume(not known_bug(path, request))
        _reset_login_counters()
        response = send(world, path, request)
        assert response.status_code < 500, (response.status_code, request)
        assert snapshot() == before, f"state changed by {request!r} -> {response.status_code}"

    fuzz()


def test_the_fuzz_sent_enough_requests(request):
    ran = [i for i in request.session.items if i.name.startswith("test_hostile_input_gets_4xx_and_changes_nothing")]
    if len(ran) < len(ENDPOINTS):
        pytest.skip("only part of the fuzz was selected")
    assert SENT["requests"] >= TOTAL, f"{SENT['requests']} requests sent, {TOTAL} wanted"
