"""A team installs the wheel into its own site (issue "reusable app"): build, install in a fresh
virtual environment, migrate, then a code + PKCE login and an AK/SK call against it.

Slow (a venv and a pip install): about a minute with a warm pip cache.
"""

import base64
import hashlib
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import zipfile
from html import unescape
from pathlib import Path
from urllib.parse import parse_qs, urljoin, urlsplit

import jwt
import pytest
import requests

REPO = Path(__file__).resolve().parent.parent
SITE = Path(__file__).resolve().parent / "install_site"
PASSWORD = "a long team password 42"


def _run(args, cwd, env, timeout=600):
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{args}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel")
    _run([sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "-q", "-w", str(out)], REPO, os.environ.copy())
    (built,) = out.glob("*.whl")
    return built


def test_wheel_holds_the_two_apps_with_templates_static_migrations_and_translations(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names if not n.endswith(".dist-info/") and ".dist-info" not in n.split("/")[0]}
    assert tops == {"oidc_provider", "console"}
    for expected in (
        "oidc_provider/templates/oidc_provider/login.html",
        "oidc_provider/static/oidc_provider/hosted.css",
        "oidc_provider/migrations/0001_initial.py",
        "oidc_provider/locale/zh_Hans/LC_MESSAGES/django.mo",
        "console/migrations/0001_initial.py",
    ):
        assert expected in names


@pytest.fixture(scope="module")
def team_site(wheel, tmp_path_factory):
    """The team's site, migrated, served by runserver from a venv holding only the wheel and its deps."""
    root = tmp_path_factory.mktemp("team")
    site = root / "site"
    shutil.copytree(SITE, site)
    venv = root / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], root, os.environ.copy())
    python = str(venv / "bin" / "python")
    _run([python, "-m", "pip", "install", "-q", str(wheel)], root, os.environ.copy())
    port = _free_port()
    env = {**os.environ, "TEAM_SITE_ISSUER": f"http://127.0.0.1:{port}/auth", "DJANGO_SETTINGS_MODULE": "teamsite.settings"}
    env.pop("DATABASE_URL", None)
    _run([python, "manage.py", "makemigrations", "accounts", "-v0"], site, env)
    _run([python, "manage.py", "migrate", "-v0"], site, env)
    _run([python, "manage.py", "check", "--deploy", "--fail-level", "ERROR"], site, env)
    _run(
        [python, "manage.py", "shell", "-c",
         f"from accounts.models import User; User.objects.create_user('ada@example.com', {PASSWORD!r}, full_name='Ada')"],
        site, env,
    )
    server = subprocess.Popen(
        [python, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload", "--insecure"],
        cwd=site, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                requests.get(f"{base}/auth/.well-known/openid-configuration", timeout=2)
                break
            except requests.ConnectionError:
                time.sleep(0.2)
        yield {"python": python, "site": site, "env": env, "base": base}
    finally:
        server.terminate()
        server.wait(timeout=10)


def _cli(team_site, *args):
    return json.loads(_run([team_site["python"], "manage.py", *args, "--json"], team_site["site"], team_site["env"]))


def _hidden_inputs(html):
    return {unescape(n): unescape(v) for n, v in re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', html)}


def test_discovery_follows_the_sites_own_prefix(team_site):
    meta = requests.get(f"{team_site['base']}/auth/.well-known/openid-configuration", timeout=10).json()
    assert meta["issuer"] == f"{team_site['base']}/auth"
    assert meta["token_endpoint"] == f"{team_site['base']}/auth/token"


def test_code_pkce_login_with_an_email_user_model(team_site):
    base = team_site["base"]
    app = _cli(team_site, "oidc_app", "create", "--name", "Team SPA", "--type", "spa", "--redirect-uri", "http://127.0.0.1:9/cb")
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    browser = requests.Session()
    response = browser.get(
        f"{base}/auth/auth",
        params={"client_id": app["client_id"], "redirect_uri": "http://127.0.0.1:9/cb", "response_type": "code",
                "scope": "openid email profile", "state": "s1", "nonce": "n1",
                "code_challenge": challenge, "code_challenge_method": "S256"},
        allow_redirects=False, timeout=10,
    )
    assert response.status_code == 302 and urlsplit(response.headers["Location"]).path == "/login/"
    login_url = urljoin(base, response.headers["Location"])
    page = browser.get(login_url, timeout=10)
    form = _hidden_inputs(page.text)
    response = browser.post(login_url, data={**form, "username": "ada@example.com", "password": PASSWORD}, allow_redirects=False, timeout=10)
    assert response.status_code == 302, response.text[:500]
    consent = browser.get(urljoin(base, response.headers["Location"]), timeout=10)
    assert consent.status_code == 200 and "Team SPA" in consent.text
    response = browser.post(f"{base}/auth/auth", data={**_hidden_inputs(consent.text), "consent_form": "1", "allow": "1"},
                            allow_redirects=False, timeout=10)
    callback = urlsplit(response.headers["Location"])
    assert callback.netloc == "127.0.0.1:9"
    code = parse_qs(callback.query)["code"][0]
    tokens = requests.post(
        f"{base}/auth/token",
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": "http://127.0.0.1:9/cb",
              "client_id": app["client_id"], "code_verifier": verifier}, timeout=10,
    ).json()
    jwks = requests.get(f"{base}/auth/.well-known/jwks.json", timeout=10).json()
    kid = jwt.get_unverified_header(tokens["id_token"])["kid"]
    key = jwt.PyJWK(next(k for k in jwks["keys"] if k["kid"] == kid)).key
    claims = jwt.decode(tokens["id_token"], key, algorithms=["RS256"], audience=app["client_id"], issuer=f"{base}/auth")
    assert claims["nonce"] == "n1" and claims["sub"] and claims["sub"] != "1"  # opaque, not the database id
    info = requests.get(f"{base}/auth/me", headers={"Authorization": f"Bearer {tokens['access_token']}"}, timeout=10).json()
    assert info["sub"] == claims["sub"] and info["email"] == "ada@example.com" and info["name"] == "Ada"


def test_ak_sk_client_credentials(team_site):
    pair = _cli(team_site, "accesskey", "create", "--account", "nightly-batch", "--scope", "read")
    response = requests.post(
        f"{team_site['base']}/auth/token", data={"grant_type": "client_credentials", "scope": "read"},
        auth=(pair["access_key"], pair["secret_key"]), timeout=10,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["scope"] == "read" and "refresh_token" not in body and "id_token" not in body


def test_cleartokens_in_the_documented_app_order_is_the_providers(team_site):
    """docs/install.md lists oidc_provider first, so cron's cleartokens also forgets spent codes."""
    out = _run([team_site["python"], "manage.py", "cleartokens"], team_site["site"], team_site["env"])
    assert "expired redeemed-code records" in out
