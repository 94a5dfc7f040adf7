"""A real browser (headless Debian Chromium driven by Playwright) against the live server.

- An SPA page served here on a loopback port (registered as the SPA app's redirect URI and
  allowed origin) makes its PKCE verifier and S256 challenge with ``crypto.subtle``, sends
  the user to our hosted login and consent pages, and exchanges the code from the browser
  with ``fetch`` (CORS). A page on another origin must not be able to read the token answer.
- A hybrid ``code id_token`` login whose fragment is read, and its ``c_hash`` checked, by page script.
- A second Django site using mozilla-django-oidc (tests/rp_site) logs the user in through
  us, then logs out through ``/oidc/session/end`` with ``id_token_hint`` and
  ``post_logout_redirect_uri``, back to the site.

Needs ``apt-get install chromium`` and ``pip install playwright`` (Playwright's own browser
download is never used: Chromium is launched from /usr/bin/chromium).
"""

import base64
import hashlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import jwt
import pytest
import requests

from .helpers import left_half_hash, pkce_pair
from .live import stop_process, HTTP_TIMEOUT, free_port, front_channel, live_provider, live_user  # noqa: F401

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
HERE = Path(__file__).resolve().parent
SPA_HTML = (HERE / "rp" / "spa.html").read_text()
OIDC_CLIENT_TS_HTML = (HERE / "rp" / "oidc-client-ts.html").read_text()
OIDC_CLIENT_TS_JS = HERE / "rp" / "node_modules" / "oidc-client-ts" / "dist" / "browser" / "oidc-client-ts.min.js"
RP_SITE = HERE / "rp_site"
STEP_TIMEOUT_MS = 20_000

try:
    from playwright.sync_api import sync_playwright
except ImportError:  # pragma: no cover - depends on the machine
    sync_playwright = None

if sync_playwright is None:
    pytestmark = pytest.mark.skip(reason="playwright is not installed: pip install playwright")
elif not os.access(CHROMIUM, os.X_OK):
    pytestmark = pytest.mark.skip(reason="no browser at /usr/bin/chromium: apt-get install chromium")


# -- the SPA's own web server -------------------------------------------------------------------


class _SpaHandler(BaseHTTPRequestHandler):
    configs = {}

    def do_GET(self):  # noqa: N802
        path = urlsplit(self.path).path
        if path == "/oidc-client-ts.js" and OIDC_CLIENT_TS_JS.exists():
            self.send(OIDC_CLIENT_TS_JS.read_bytes(), "text/javascript")
            return
        config = self.configs.get(path)
        if config is None:
            self.send_error(404)
            return
        page = OIDC_CLIENT_TS_HTML if path.startswith("/ts") else SPA_HTML
        self.send(page.replace("/*CONFIG*/null", json.dumps(config)).encode(), "text/html; charset=utf-8")

    def send(self, body, content_type):
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class StaticSite:
    """A loopback web server for the SPA's pages; ``configs`` maps a path to the page's CONFIG."""

    def __init__(self, configs, port=None):
        self.port = port or free_port()
        self.origin = f"http://127.0.0.1:{self.port}"
        handler = type("Handler", (_SpaHandler,), {"configs": configs})
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), handler)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


# -- fixtures ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def metadata(live_provider):
    return requests.get(live_provider.url("/oidc/.well-known/openid-configuration"), timeout=HTTP_TIMEOUT).json()


@pytest.fixture(scope="module")
def chromium():
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, timeout=60_000)
        yield browser
        browser.close()


@pytest.fixture
def page(chromium):
    context = chromium.new_context()
    page = context.new_page()
    page.set_default_timeout(STEP_TIMEOUT_MS)
    page.set_default_navigation_timeout(STEP_TIMEOUT_MS)
    yield page
    context.close()


@pytest.fixture(scope="module")
def spa(live_provider, metadata):
    """The SPA's pages on one loopback origin, a probe page on another; apps registered for them."""
    spa_port, probe_port = free_port(), free_port()
    origin = f"http://127.0.0.1:{spa_port}"
    spa_app = live_provider.create_app(
        "Browser SPA", "spa", redirect_uris=[f"{origin}/cb"], post_logout_redirect_uris=[f"{origin}/logged-out"],
    )
    # https://spa.example.com is registered too, to tell a loopback-origin problem from a CORS one.
    live_provider.update_app(spa_app["client_id"], allowed_origins=f"{origin} https://spa.example.com")
    hybrid_app = live_provider.create_app(
        "Browser hybrid", "web", grants=["authorization_code", "hybrid"], redirect_uris=[f"{origin}/hybrid-cb"],
    )
    ts_app = live_provider.create_app(
        "oidc-client-ts SPA", "spa", redirect_uris=[f"{origin}/ts-cb"], post_logout_redirect_uris=[f"{origin}/ts-logged-out"],
    )
    common = {k: metadata[k] for k in ("authorization_endpoint", "token_endpoint")}
    ts_config = {"authority": metadata["issuer"], "client_id": ts_app["client_id"]}
    spa_config = {**common, "client_id": spa_app["client_id"], "redirect_uri": f"{origin}/cb"}
    hybrid_config = {**common, "client_id": hybrid_app["client_id"], "redirect_uri": f"{origin}/hybrid-cb"}
    site = StaticSite({"/": spa_config, "/cb": spa_config, "/hybrid": hybrid_config, "/hybrid-cb": hybrid_config,
                       "/ts": ts_config, "/ts-cb": ts_config, "/ts-logged-out": ts_config}, spa_port)
    probe = StaticSite({"/cors-probe": spa_config}, probe_port)
    with site, probe:
        yield {"site": site, "probe": probe, "spa_app": spa_app, "hybrid_app": hybrid_app, "ts_app": ts_app}


def log_in_and_consent(page, user):
    """On our hosted pages: the login form, then the consent form (Allow) when it is shown."""
    page.wait_for_selector("input[name=username]")
    page.fill("input[name=username]", user["username"])
    page.fill("input[name=password]", user["password"])
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/accounts/login/" not in url)
    if urlsplit(page.url).path.endswith("/oidc/auth") and page.locator("button[name=allow]").count():
        page.click("button[name=allow]")


def wait_for_result(page):
    page.wait_for_function("window.__result !== undefined", timeout=STEP_TIMEOUT_MS)
    return page.evaluate("window.__result")


def verify_id_token(metadata, token, client_id):
    jwks = requests.get(metadata["jwks_uri"], timeout=HTTP_TIMEOUT).json()
    kid = jwt.get_unverified_header(token)["kid"]
    key = next(k for k in jwks["keys"] if k["kid"] == kid)
    return jwt.decode(token, jwt.PyJWK(key).key, algorithms=["RS256"], audience=client_id, issuer=metadata["issuer"])


# -- (a) the SPA: PKCE with Web Crypto, code exchanged by fetch --------------------------------------


LOOPBACK_CORS_BUG = (
    "CORS at /oidc/token never allows a registered http loopback origin (e.g. http://127.0.0.1:PORT, which "
    "models.validate_origin accepts, as RFC 8252 allows): (1) oidc_provider/conf.py "
    "dot_settings() leaves DOT's ALLOWED_SCHEMES at ['https'], so Application.origin_allowed() -> "
    "oauth2_provider.models.is_origin_allowed() returns False for any http origin; (2) even past that, oauthlib's "
    "GrantTypeBase._create_cors_headers() adds Access-Control-Allow-Origin only when is_secure_transport(origin) "
    "(https, or OAUTHLIB_INSECURE_TRANSPORT set). So the SPA's fetch of the token response fails with "
    "'TypeError: Failed to fetch'. Verified: with ALLOWED_SCHEMES ['https','http'] and OAUTHLIB_INSECURE_TRANSPORT=1 "
    "on the live server this test passes."
)


def test_spa_pkce_login_and_code_exchange_in_the_browser(page, spa, live_user, metadata):
    site = spa["site"]
    page.goto(f"{site.origin}/")
    page.wait_for_url(f"{metadata['issuer'].rsplit('/oidc', 1)[0]}/accounts/login/**")
    log_in_and_consent(page, live_user)
    page.wait_for_url(f"{site.origin}/cb?**")
    result = wait_for_result(page)
    assert result["state_ok"] and not result.get("error")
    # The challenge the page sent is the S256 of the verifier it kept (made with crypto.subtle).
    expected = base64.urlsafe_b64encode(hashlib.sha256(result["verifier"].encode()).digest()).rstrip(b"=").decode()
    assert result["challenge"] == expected
    assert not result.get("fetch_error"), f"the browser could not read the token response: {result['fetch_error']}"
    assert result["status"] == 200, result
    body = result["body"]
    assert body["access_token"] and body["token_type"].lower() == "bearer"
    assert "refresh_token" not in body, "spa applications may not refresh under the default policy"
    claims = verify_id_token(metadata, body["id_token"], spa["spa_app"]["client_id"])
    assert claims["nonce"] == result["nonce"]


@pytest.mark.skipif(not OIDC_CLIENT_TS_JS.exists(), reason="no oidc-client-ts: run `npm ci` in tests/rp")
def test_an_oidc_client_ts_spa_signs_in_loads_userinfo_and_signs_out(page, spa, live_user, metadata):
    """oidc-client-ts (the most used SPA library), unmodified, with loadUserInfo: discovery, code
    + PKCE, the token request and the userinfo call from the browser (CORS preflight included),
    then RP-initiated logout with id_token_hint back to its post-logout redirect URI."""
    site = spa["site"]
    page.goto(f"{site.origin}/ts")
    log_in_and_consent(page, live_user)
    page.wait_for_url(f"{site.origin}/ts-cb*")
    result = wait_for_result(page)
    assert "error" not in result, result
    assert result["has_access_token"] and result["scope"] == "openid profile email"
    # The profile holds userinfo's claims, merged by the library after its own userinfo call.
    assert result["profile"]["email"] == f"{live_user['username']}@example.com"
    assert result["profile"]["preferred_username"] == live_user["username"]
    claims = verify_id_token(metadata, result["id_token"], spa["ts_app"]["client_id"])
    assert claims["sid"] and result["profile"]["sub"] == claims["sub"]

    page.click("#logout")
    page.wait_for_url(f"{site.origin}/ts-logged-out*")
    result = wait_for_result(page)
    assert result == {"signed_out": True, "user": None, "state": None}, result
    # Signed out at the provider too: a new sign-in asks for the password again.
    page.goto(f"{site.origin}/ts")
    page.wait_for_selector("input[name=username]")


def test_spa_builds_pkce_with_web_crypto_and_logs_in(page, spa, live_user, metadata):
    """Up to the code: the page's S256 challenge is accepted and the code comes back to it."""
    site = spa["site"]
    page.goto(f"{site.origin}/")
    page.wait_for_selector("input[name=username]")
    assert "code_challenge_method%3DS256" in page.url, page.url  # carried through the login page's next=
    log_in_and_consent(page, live_user)
    page.wait_for_url(f"{site.origin}/cb?**")
    result = wait_for_result(page)
    assert result["state_ok"] and not result.get("error")
    expected = base64.urlsafe_b64encode(hashlib.sha256(result["verifier"].encode()).digest()).rstrip(b"=").decode()
    assert result["challenge"] == expected, "crypto.subtle made a correct S256 challenge"


def test_token_endpoint_cors_for_a_registered_https_origin(live_provider, spa, live_user, metadata):
    """The CORS rule itself, with an https origin the SPA app registered: the answer names it."""
    app = spa["spa_app"]
    verifier, challenge = pkce_pair()
    query = urlencode({
        "client_id": app["client_id"], "redirect_uri": app["redirect_uris"][0], "response_type": "code",
        "scope": "openid", "state": "s", "code_challenge": challenge, "code_challenge_method": "S256",
    })
    with requests.Session() as browser:
        final = front_channel(browser, f"{metadata['authorization_endpoint']}?{query}", live_user, app["redirect_uris"][0])
    code = dict(p.split("=", 1) for p in urlsplit(final).query.split("&"))["code"]
    response = requests.post(metadata["token_endpoint"], data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": app["redirect_uris"][0],
        "client_id": app["client_id"], "code_verifier": verifier,
    }, headers={"Origin": "https://spa.example.com"}, timeout=HTTP_TIMEOUT)
    assert response.status_code == 200, response.text
    assert response.headers.get("Access-Control-Allow-Origin") == "https://spa.example.com"


def test_token_endpoint_errors_are_readable_by_a_registered_origin(spa, metadata):
    response = requests.post(metadata["token_endpoint"], data={
        "grant_type": "authorization_code", "code": "spent-or-expired", "client_id": spa["spa_app"]["client_id"],
        "redirect_uri": f"{spa['site'].origin}/cb", "code_verifier": "x" * 43,
    }, headers={"Origin": "https://spa.example.com"}, timeout=HTTP_TIMEOUT)
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"
    assert response.headers.get("Access-Control-Allow-Origin") == "https://spa.example.com"


def test_token_endpoint_refuses_cors_to_other_origins(page, spa, metadata):
    """A page on an origin the app did not register cannot read the token endpoint's answer."""
    probe = spa["probe"]
    page.goto(f"{probe.origin}/cors-probe")
    result = wait_for_result(page)
    assert "fetch_error" in result and "status" not in result, result
    for origin in (probe.origin, "https://evil.example.com"):
        response = requests.post(metadata["token_endpoint"], data={
            "grant_type": "authorization_code", "code": "not-a-code", "client_id": spa["spa_app"]["client_id"],
            "redirect_uri": f"{spa['site'].origin}/cb", "code_verifier": "x" * 43,
        }, headers={"Origin": origin}, timeout=HTTP_TIMEOUT)
        assert response.status_code in (400, 401)
        assert "Access-Control-Allow-Origin" not in response.headers, origin


# -- (b) hybrid: the fragment, read by page script ------------------------------------------------------


def test_hybrid_fragment_read_by_page_script(page, spa, live_user, metadata, live_provider):
    site, app = spa["site"], spa["hybrid_app"]
    page.goto(f"{site.origin}/hybrid")
    log_in_and_consent(page, live_user)
    page.wait_for_url(f"{site.origin}/hybrid-cb#**")
    result = wait_for_result(page)
    assert not result["in_query"], "nothing of a hybrid response travels in the query"
    fragment = result["fragment"]
    assert set(fragment) >= {"code", "id_token", "state"} and "access_token" not in fragment
    assert result["state_ok"] and result["nonce_ok"] and result["c_hash_ok"], result
    claims = verify_id_token(metadata, fragment["id_token"], app["client_id"])
    assert claims["c_hash"] == left_half_hash(fragment["code"])
    # The backend then exchanges the code with its secret.
    response = requests.post(metadata["token_endpoint"], data={
        "grant_type": "authorization_code", "code": fragment["code"], "redirect_uri": f"{site.origin}/hybrid-cb",
    }, auth=(app["client_id"], app["client_secret"]), timeout=HTTP_TIMEOUT)
    assert response.status_code == 200, response.text
    assert verify_id_token(metadata, response.json()["id_token"], app["client_id"])["sub"] == claims["sub"]


# -- (c, d) a Django site with mozilla-django-oidc: login, then logout back to it ------------------------


class RPSite:
    def __init__(self, metadata, client_id, client_secret, port):
        self.tmp = Path(tempfile.mkdtemp(prefix="rp-site-"))
        self.port = port
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "rp_site.settings",
            "PYTHONPATH": str(RP_SITE),
            "RP_DATA_DIR": str(self.tmp),
            "RP_SECRET_KEY": secrets.token_urlsafe(40),
            "RP_CLIENT_ID": client_id,
            "RP_CLIENT_SECRET": client_secret,
            "RP_AUTHORIZATION_ENDPOINT": metadata["authorization_endpoint"],
            "RP_TOKEN_ENDPOINT": metadata["token_endpoint"],
            "RP_USERINFO_ENDPOINT": metadata["userinfo_endpoint"],
            "RP_JWKS_URI": metadata["jwks_uri"],
            "RP_END_SESSION_ENDPOINT": metadata["end_session_endpoint"],
            "RP_BASE_URL": self.base_url,
        }
        for name in ("DATABASE_URL", "DJANGO_DATA_DIR", "OIDC_ISSUER"):
            self.env.pop(name, None)
        self.process = None

    def start(self):
        subprocess.run(
            [sys.executable, "-m", "django", "migrate", "--noinput"], cwd=RP_SITE, env=self.env,
            check=True, capture_output=True, timeout=120,
        )
        self.log = open(self.tmp / "rp.log", "ab")
        self.process = subprocess.Popen(
            [str(Path(sys.executable).with_name("gunicorn")), "rp_site.wsgi", "--bind", f"127.0.0.1:{self.port}",
             "--workers", "1", "--threads", "4", "--timeout", "60"],
            cwd=RP_SITE, env=self.env, stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the RP site exited: {self.read_log()}")
            try:
                requests.get(f"{self.base_url}/logged-out/", timeout=2)
                return self
            except requests.RequestException:
                time.sleep(0.2)
        raise RuntimeError(f"the RP site did not start: {self.read_log()}")

    def read_log(self):
        return (self.tmp / "rp.log").read_text(errors="replace")[-4000:]

    def stop(self):
        stop_process(self.process)
        if getattr(self, "log", None):
            self.log.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


@pytest.fixture(scope="module")
def rp_site(live_provider, metadata):
    pytest.importorskip("mozilla_django_oidc", reason="pip install 'mozilla-django-oidc>=4'")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    app = live_provider.create_app(
        "RP site (mozilla-django-oidc)", "web", redirect_uris=[f"{base}/oidc/callback/"],
        post_logout_redirect_uris=[f"{base}/logged-out/"],
    )
    site = RPSite(metadata, app["client_id"], app["client_secret"], port)
    try:
        yield site.start(), app
    finally:
        site.stop()


def test_mozilla_django_oidc_site_login_and_logout(page, rp_site, live_user, live_provider, metadata):
    site, app = rp_site
    provider = metadata["issuer"].rsplit("/oidc", 1)[0]
    # (c) login: the site sends the browser to us, and takes it back signed in.
    page.goto(f"{site.base_url}/")
    page.wait_for_url(f"{provider}/accounts/login/**")
    log_in_and_consent(page, live_user)
    page.wait_for_url(f"{site.base_url}/", timeout=STEP_TIMEOUT_MS)
    assert page.text_content("#who") == f"Signed in to the RP site as {live_user['username']}@example.com", site.read_log()
    assert live_provider.token_counts(app["client_id"])["access"] == 1

    # (d) logout: the site's logout sends the browser to /oidc/session/end with id_token_hint
    # and post_logout_redirect_uri; we end the session and send it back, with the state.
    seen = []
    page.on("request", lambda r: seen.append(r.url) if r.url.startswith(metadata["end_session_endpoint"]) else None)
    page.click("#logout")
    page.wait_for_url(f"{site.base_url}/logged-out/**")
    assert page.text_content("#bye") == "Signed out of the RP site (anonymous)"
    assert page.text_content("#state") == "rp-site-logout"
    assert seen and "id_token_hint=" in seen[0] and "post_logout_redirect_uri=" in seen[0], seen
    # Our session is over too: the next login asks for the password again.
    page.goto(f"{site.base_url}/")
    page.wait_for_url(f"{provider}/accounts/login/**")
    # And the site's tokens are gone (logout revokes the logging-out app's tokens).
    assert live_provider.token_counts(app["client_id"])["access"] == 0
