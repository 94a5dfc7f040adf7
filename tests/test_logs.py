"""Logs an operator can collect: JSON lines, one request id from the proxy to the audit log,
and no secret in them."""

import io
import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from console.models import AuditEvent
from oidc_provider import policy
from oidc_provider.logs import JsonFormatter, RequestIdFilter

from . import run_log
from .factories import ApplicationFactory
from .helpers import basic_auth

ROOT = Path(__file__).resolve().parent.parent


def _lines_of(name):
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestIdFilter())
    logger = logging.getLogger(name)
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)  # as with DJANGO_ACCESS_LOG=1
    try:
        yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


@pytest.fixture
def request_lines():
    """What oidc_provider.request writes, as the project's JSON handler formats it."""
    yield from _lines_of("oidc_provider.request")


@pytest.fixture
def django_request_lines():
    """What Django writes of 4xx and 5xx responses (django.request)."""
    yield from _lines_of("django.request")


@pytest.fixture
def provider_settings(settings):
    def apply(**values):
        settings.OIDC_PROVIDER = {**settings.OIDC_PROVIDER, **values}

    return apply


@pytest.mark.django_db
def test_each_response_names_its_request_id_and_its_log_line_is_json_with_it(client, request_lines):
    """One id per request, answered in X-Request-ID and carried by its log line (a JSON object)."""
    response = client.get("/oidc/.well-known/openid-configuration")

    request_id = response["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", request_id)
    (line,) = request_lines()
    assert line["request_id"] == request_id
    assert line["level"] == "INFO" and line["logger"] == "oidc_provider.request"
    assert (line["method"], line["path"], line["status"]) == ("GET", "/oidc/.well-known/openid-configuration", 200)
    assert line["duration_ms"] >= 0 and line["client"] == "127.0.0.1"
    assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", line["time"])
    assert client.get("/oidc/.well-known/openid-configuration")["X-Request-ID"] != request_id


@pytest.mark.django_db
def test_the_request_line_never_holds_the_query_string(client, request_lines):
    """An authorization request's query may carry an id_token_hint or a login_hint: only the
    path is logged."""
    client.get("/oidc/auth", {"response_type": "code", "client_id": "nobody", "id_token_hint": "eyJsecret.part.x"})

    (line,) = request_lines()
    assert line["path"] == "/oidc/auth" and "?" not in line["message"] and "eyJsecret" not in json.dumps(line)


@pytest.mark.django_db
def test_a_newline_in_the_path_cannot_forge_a_second_log_line(client, request_lines):
    """The path is written escaped, as Django writes it in its own lines."""
    client.get("/x%0A2026-01-01 00:00:00,000 WARNING console.audit admin login ok")

    (line,) = request_lines()
    assert "\n" not in line["message"] and "\\n2026-01-01" in line["message"]


@pytest.mark.django_db
def test_djangos_line_for_a_refused_request_has_its_id_and_not_its_query_string(client, django_request_lines):
    """Django logs a 4xx after the middleware has returned, with the request object, whose text
    is the whole URL: the id is still the request's, and the URL is left out (RFC 6750 2.3's
    access_token query parameter is refused, and must not be written down either)."""
    response = client.get("/oidc/me", {"access_token": "a-token-in-the-query-" + "z" * 24})

    assert response.status_code == 400
    (line,) = django_request_lines()
    assert line["request_id"] == response["X-Request-ID"] and line["status_code"] == 400
    assert "a-token-in-the-query" not in json.dumps(line) and "request" not in line


@pytest.mark.django_db
def test_a_request_id_sent_by_a_client_that_is_no_trusted_proxy_is_replaced(client, request_lines):
    """Only a trusted proxy may name the request: anyone else could pose as another request."""
    response = client.get("/health/live", HTTP_X_REQUEST_ID="chosen-by-the-client")

    assert response["X-Request-ID"] != "chosen-by-the-client"
    assert request_lines() == [] or request_lines()[0]["request_id"] == response["X-Request-ID"]


@pytest.mark.django_db
def test_a_trusted_proxys_request_id_is_kept(client, provider_settings, request_lines):
    """Behind OIDC_TRUSTED_PROXIES, the proxy's X-Request-ID joins its access log to ours."""
    provider_settings(TRUSTED_PROXIES="10.9.0.1")

    response = client.get("/oidc/.well-known/openid-configuration", REMOTE_ADDR="10.9.0.1",
                          HTTP_X_FORWARDED_FOR="198.51.100.7", HTTP_X_REQUEST_ID="f3a1c0de-77aa-4b1e-9d2f-000000000001")

    assert response["X-Request-ID"] == "f3a1c0de-77aa-4b1e-9d2f-000000000001"
    (line,) = request_lines()
    assert line["request_id"] == "f3a1c0de-77aa-4b1e-9d2f-000000000001" and line["client"] == "198.51.100.7"


@pytest.mark.django_db
@pytest.mark.parametrize("offered", ["two\nlines", 'a"quote', "x" * 129, "spaces are not ids", ""])
def test_a_malformed_request_id_even_from_a_trusted_proxy_is_replaced(client, provider_settings, offered):
    """A newline, a quote or a kilobyte would forge or bloat log lines: a fresh id is used."""
    provider_settings(TRUSTED_PROXIES="10.9.0.1")

    response = client.get("/oidc/.well-known/openid-configuration", REMOTE_ADDR="10.9.0.1", HTTP_X_REQUEST_ID=offered)

    assert re.fullmatch(r"[0-9a-f]{32}", response["X-Request-ID"])


@pytest.mark.django_db
def test_the_audit_event_of_a_request_carries_its_request_id(client, user):
    """A failed sign-in's audit event names the request that made it: one id finds both."""
    response = client.post("/accounts/login/", {"username": user.username, "password": "wrong-password"})

    event = AuditEvent.objects.get(action="login.failed")
    assert event.request_id == response["X-Request-ID"]


@pytest.mark.django_db
def test_a_token_request_refused_for_its_secret_is_audited_with_its_request_id(client):
    """The token endpoint takes the short way through the middleware; its audit events still
    get the id."""
    app = ApplicationFactory(application_type=policy.SERVICE, redirect_uris="", post_logout_redirect_uris="")

    response = client.post("/oidc/token", {"grant_type": "client_credentials"},
                           HTTP_AUTHORIZATION=basic_auth(app.client_id, "not-the-secret"))

    assert response.status_code == 401
    event = AuditEvent.objects.get(action="client_auth.failed")
    assert event.request_id == response["X-Request-ID"]


def test_records_made_outside_a_request_have_an_empty_request_id():
    record = logging.LogRecord("x", logging.WARNING, __file__, 1, "outside", (), None)

    RequestIdFilter().filter(record)

    assert json.loads(JsonFormatter().format(record))["request_id"] == ""


def _log_line_of_a_fresh_process(**env):
    script = "import django, logging; django.setup(); logging.getLogger('probe').warning('hello %s', 'there')"
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "project.settings", **env},
    )
    assert result.returncode == 0, result.stderr
    return result.stderr.strip().splitlines()[-1]


def test_the_request_line_is_off_unless_asked_for():
    """DJANGO_ACCESS_LOG: off by default (a proxy usually keeps an access log already), on with 1."""
    script = "import django, logging; django.setup(); print(logging.getLogger('oidc_provider.request').isEnabledFor(logging.INFO))"
    for env, expected in (({}, "False"), ({"DJANGO_ACCESS_LOG": "1"}, "True")):
        result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60,
                                env={**os.environ, "DJANGO_SETTINGS_MODULE": "project.settings", **env})
        assert result.stdout.strip() == expected, result.stderr


def test_the_project_logs_json_lines_by_default_and_text_when_asked():
    """DJANGO_LOG_FORMAT: json (the default) for log collectors, text for a person."""
    line = json.loads(_log_line_of_a_fresh_process())
    assert (line["level"], line["logger"], line["message"], line["request_id"]) == ("WARNING", "probe", "hello there", "")

    text = _log_line_of_a_fresh_process(DJANGO_LOG_FORMAT="text")
    assert text.endswith("WARNING probe [] hello there")


def test_no_secret_handed_out_during_the_run_is_in_its_logs(client, django_db_blocker):
    """Secrets never reach a log: every client secret, SK, code, token, ID token, session key
    and API token made while the whole run went on (this test runs last) is looked for in
    everything the run logged."""
    # Run alone, this test still has something to look for: a full token request, logged.
    with django_db_blocker.unblock():
        from django.db import transaction

        with transaction.atomic():
            app = ApplicationFactory(application_type=policy.SERVICE, redirect_uris="", post_logout_redirect_uris="")
            response = client.post("/oidc/token", {"grant_type": "client_credentials"},
                                   HTTP_AUTHORIZATION=basic_auth(app.client_id, app.plaintext_secret))
            assert response.status_code == 200
            transaction.set_rollback(True)
    assert response.json()["access_token"] in run_log.handed_out
    assert app.plaintext_secret in run_log.handed_out

    logged = run_log.logged_text()
    assert '"logger": "oidc_provider.request"' in logged
    leaked = run_log.secrets_in(logged)
    assert not leaked, f"{len(leaked)} secret(s) found in {run_log.log_path}, e.g. {sorted(leaked)[0][:12]}..."


test_no_secret_handed_out_during_the_run_is_in_its_logs.runs_last = True


def test_the_search_for_secrets_finds_one_inside_a_query_string_a_header_or_a_json_value():
    """The last test is only as good as its search: a secret written inside other text is found."""
    secret = "s3cr3t-" + "q" * 36
    run_log.handed_out.add(secret)
    try:
        for text in (f"GET /cb?code={secret}&state=x", f'{{"authorization": "Bearer {secret}"}}', f"prefix{secret}suffix"):
            assert run_log.secrets_in(text) == {secret}
        assert run_log.secrets_in("nothing like it " + secret[:30]) == set()
    finally:
        run_log.handed_out.discard(secret)
