"""`manage.py check --deploy` on the production settings is clean, or names the environment
variable that fixes each warning (issue 24, "Done when").

Run as an operator would: a subprocess with DJANGO_DEBUG=0, a fresh data folder and only the
environment given here.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

REPO = Path(__file__).resolve().parent.parent

# Every variable a deployment may set (README, "Configuration").
DEPLOYMENT_VARIABLES = {
    "DJANGO_SECRET_KEY", "DJANGO_DEBUG", "DJANGO_ALLOWED_HOSTS", "DATABASE_URL", "DJANGO_DATA_DIR",
    "OIDC_ISSUER", "REDIS_URL", "OIDC_KEY_ENCRYPTION_KEY", "OIDC_TRUSTED_PROXIES", "EMAIL_URL",
    "DJANGO_BEHIND_TLS_PROXY", "DJANGO_SECURE_COOKIES", "DJANGO_SECURE_HSTS_SECONDS",
    "DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", "DJANGO_SECURE_HSTS_PRELOAD", "DJANGO_SECURE_SSL_REDIRECT",
}

# What a production deployment behind a TLS proxy sets.
PRODUCTION = {
    "DJANGO_DEBUG": "0",
    "OIDC_ISSUER": "https://id.example.com/oidc",
    "DJANGO_ALLOWED_HOSTS": "id.example.com",
    "DJANGO_BEHIND_TLS_PROXY": "1",
    "DJANGO_SECURE_SSL_REDIRECT": "1",
    "DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS": "1",
    "DJANGO_SECURE_HSTS_PRELOAD": "1",
}


def check_deploy(tmp_path, **environment):
    env = {k: v for k, v in os.environ.items() if k not in DEPLOYMENT_VARIABLES and not k.startswith("DJANGO_SECURE_")}
    env.update({"DJANGO_DATA_DIR": str(tmp_path), "DJANGO_DEBUG": "0", **environment})
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy"], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    # One entry per message: "?: (id) text" and its HINT line.
    messages = re.findall(r"^\S*: \(([\w.]+)\) (.*?)(?:\n\tHINT: (.*?))?$(?=\n\S|\n\n|\Z)", output, re.M | re.S)
    return output, {ident: f"{text} {hint}" for ident, text, hint in messages}


def test_every_remaining_warning_of_a_default_start_names_its_environment_variable(tmp_path):
    """A fresh clone with DEBUG off: each warning says which variable to set."""
    output, messages = check_deploy(tmp_path)
    assert messages, output
    for ident, text in messages.items():
        named = {name for name in DEPLOYMENT_VARIABLES if re.search(rf"\b{name}\b", text)}
        assert named, f"{ident} names no environment variable: {text}"
    # The generated key-encryption key beside the database is one of them.
    assert "OIDC_KEY_ENCRYPTION_KEY" in messages["project.W002"]
    assert str(tmp_path / "key_encryption_key") in messages["project.W002"]


@pytest.mark.parametrize(
    "ident, variable",
    [
        ("project.security.W004", "DJANGO_SECURE_HSTS_SECONDS"),
        ("project.security.W008", "DJANGO_SECURE_SSL_REDIRECT"),
        ("project.security.W012", "DJANGO_SECURE_COOKIES"),
        ("project.security.W016", "DJANGO_SECURE_COOKIES"),
        ("project.W001", "DJANGO_SECRET_KEY"),
        ("project.W002", "OIDC_KEY_ENCRYPTION_KEY"),
    ],
)
def test_a_plain_http_start_is_told_which_variable_fixes_each_warning(tmp_path, ident, variable):
    _output, messages = check_deploy(tmp_path)
    assert variable in messages[ident]


def test_production_settings_from_the_environment_are_clean(tmp_path):
    """https issuer, secrets from the environment, behind a TLS proxy: nothing left to fix."""
    _output, messages = check_deploy(
        tmp_path,
        **PRODUCTION,
        DJANGO_SECRET_KEY="x" * 20 + "a-long-random-production-secret-key-0123456789",
        OIDC_KEY_ENCRYPTION_KEY=Fernet.generate_key().decode(),
    )
    assert not messages, messages
    assert not (tmp_path / "key_encryption_key").exists() and not (tmp_path / "secret_key").exists()


def test_an_https_issuer_turns_on_secure_cookies_and_hsts_by_default(tmp_path):
    _output, messages = check_deploy(tmp_path, OIDC_ISSUER="https://id.example.com/oidc", DJANGO_ALLOWED_HOSTS="id.example.com")
    for ident in ("project.security.W004", "project.security.W012", "project.security.W016"):
        assert ident not in messages
    # Beyond this host, and the redirect that needs to know about the proxy: the operator opts in.
    assert "DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS" in messages["project.security.W005"]
    assert "DJANGO_SECURE_HSTS_PRELOAD" in messages["project.security.W021"]
    assert "DJANGO_SECURE_SSL_REDIRECT" in messages["project.security.W008"]


def test_the_key_encryption_key_warning_goes_once_it_comes_from_the_environment(tmp_path):
    _output, messages = check_deploy(tmp_path, OIDC_KEY_ENCRYPTION_KEY=Fernet.generate_key().decode())
    assert "project.W002" not in messages
    assert not (tmp_path / "key_encryption_key").exists()


def test_a_malformed_key_encryption_key_stops_the_start_with_a_fix(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in DEPLOYMENT_VARIABLES}
    env.update({"DJANGO_DATA_DIR": str(tmp_path), "OIDC_KEY_ENCRYPTION_KEY": "not-a-fernet-key"})
    result = subprocess.run([sys.executable, "manage.py", "check"], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    assert "oidc_provider.E009" in result.stderr and "Fernet.generate_key" in result.stderr


# -- the RFC 9700 gates of django-oauth-toolkit that check --deploy asks for -----------------------


@pytest.mark.django_db
def test_every_authorization_response_carries_the_published_issuer(logged_in, web_app):
    """RFC 9207 2: `iss` in the authorization response equals the discovery document's issuer."""
    from tests.helpers import get_code

    issuer = logged_in.get("/oidc/.well-known/openid-configuration").json()["issuer"]
    assert logged_in.get("/oidc/.well-known/openid-configuration").json()["authorization_response_iss_parameter_supported"] is True
    assert get_code(logged_in, web_app)["iss"] == issuer


@pytest.mark.django_db
def test_an_access_token_in_the_query_string_is_not_accepted(logged_in, web_app):
    """RFC 9700 4.3.2 / RFC 6750 5.3: tokens in URLs leak into logs and Referer headers."""
    from tests.helpers import exchange, get_code

    token = exchange(logged_in, web_app, get_code(logged_in, web_app)["code"], secret=web_app.plaintext_secret).json()["access_token"]
    assert logged_in.get("/oidc/me", HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 200
    refused = logged_in.get("/oidc/me", {"access_token": token})
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_request"
    assert "Authorization header" in refused.json()["error_description"]


@pytest.mark.django_db
def test_an_authorization_error_response_carries_the_issuer_too(logged_in, web_app):
    """RFC 9207 2: `iss` in error responses as well (here: the user declines consent)."""
    from tests.helpers import authorize, query_of

    page = authorize(logged_in, web_app)
    form = page.context["form"]
    data = {f.name: f.value() or "" for f in form}
    data["consent_form"] = "1"
    declined = query_of(logged_in.post("/oidc/auth", data))
    assert declined["error"] == "access_denied"
    assert declined["iss"] == logged_in.get("/oidc/.well-known/openid-configuration").json()["issuer"]
