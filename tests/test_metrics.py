"""Prometheus metrics at /metrics: what is counted, and who may read it."""

import pytest
from django.test import Client

from tests.factories import PASSWORD, ApplicationFactory
from tests.helpers import basic_auth

from oidc_provider import policy


@pytest.fixture
def metrics_for(settings):
    def allow(networks="", token=None):
        settings.OIDC_PROVIDER = {**settings.OIDC_PROVIDER, "METRICS_ALLOWED_NETWORKS": networks, "METRICS_TOKEN": token}

    return allow


def _sample(text, name, **labels):
    """The value of one sample of the exposition text, or 0."""
    wanted = name + ("{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}" if labels else "")
    for line in text.splitlines():
        if line.startswith(wanted + " "):
            return float(line.split()[-1])
    return 0.0


def _scrape(client=None, **headers):
    return (client or Client()).get("/metrics", **headers)


def test_nobody_reads_the_metrics_until_the_settings_name_someone(db, metrics_for):
    """By default /metrics is not there for anyone (404): it tells how the provider is used."""
    metrics_for()
    assert _scrape().status_code == 404


def test_an_allowed_network_reads_the_metrics_and_another_does_not(db, metrics_for):
    metrics_for(networks="10.0.0.0/8, 127.0.0.1")
    response = _scrape()
    assert response.status_code == 200 and response["Content-Type"].startswith("text/plain")
    assert "oidc_request_duration_seconds" in response.content.decode()
    assert _scrape(REMOTE_ADDR="192.0.2.7").status_code == 404
    # A forged X-Forwarded-For from an untrusted peer changes nothing.
    assert _scrape(REMOTE_ADDR="192.0.2.7", HTTP_X_FORWARDED_FOR="127.0.0.1").status_code == 404


def test_a_bearer_token_reads_the_metrics_and_a_wrong_one_does_not(db, metrics_for):
    metrics_for(token="scrape-secret-123")
    assert _scrape(REMOTE_ADDR="192.0.2.7", HTTP_AUTHORIZATION="Bearer scrape-secret-123").status_code == 200
    assert _scrape(REMOTE_ADDR="192.0.2.7", HTTP_AUTHORIZATION="Bearer scrape-secret-12").status_code == 404
    assert _scrape(REMOTE_ADDR="192.0.2.7", HTTP_AUTHORIZATION="Basic scrape-secret-123").status_code == 404


def test_tokens_issued_refusals_and_latency_are_counted_per_grant_application_and_endpoint(db, metrics_for):
    """Tokens per grant and application, refusals per reason, latency and database time per endpoint."""
    metrics_for(networks="127.0.0.1")
    app = ApplicationFactory(application_type=policy.SERVICE, grant_types=["client_credentials"])
    before = _scrape().content.decode()
    client = Client()
    ok = client.post("/oidc/token", {"grant_type": "client_credentials"},
                     HTTP_AUTHORIZATION=basic_auth(app.client_id, app.plaintext_secret))
    assert ok.status_code == 200
    bad = client.post("/oidc/token", {"grant_type": "client_credentials"},
                      HTTP_AUTHORIZATION=basic_auth(app.client_id, "wrong"))
    assert bad.status_code == 401
    refused = client.post("/oidc/token", {"grant_type": "password", "username": "x", "password": "y"},
                          HTTP_AUTHORIZATION=basic_auth(app.client_id, app.plaintext_secret))
    assert refused.status_code == 400
    after = _scrape().content.decode()
    issued = dict(grant="client_credentials", client_id=app.client_id)
    assert _sample(after, "oidc_tokens_issued_total", **issued) == _sample(before, "oidc_tokens_issued_total", **issued) + 1
    assert _sample(after, "oidc_refusals_total", reason="invalid_client") >= _sample(before, "oidc_refusals_total", reason="invalid_client") + 1
    assert _sample(after, "oidc_refusals_total", reason="unauthorized_client") >= 1
    assert _sample(after, "oidc_request_duration_seconds_count", endpoint="token") >= _sample(
        before, "oidc_request_duration_seconds_count", endpoint="token") + 3
    assert _sample(after, "oidc_database_seconds_total", endpoint="token") > 0
    # Nothing secret in the scrape.
    assert app.plaintext_secret not in after and ok.json()["access_token"] not in after


def test_sign_ins_and_lockouts_are_counted(db, metrics_for, user):
    metrics_for(networks="127.0.0.1")
    before = _scrape().content.decode()
    browser = Client()
    for _ in range(5):
        browser.post("/accounts/login/", {"username": user.username, "password": "nope"})
    browser.post("/accounts/login/", {"username": user.username, "password": PASSWORD})
    after = _scrape().content.decode()
    assert _sample(after, "oidc_logins_total", outcome="failure") >= _sample(before, "oidc_logins_total", outcome="failure") + 4
    assert _sample(after, "oidc_lockouts_total") >= _sample(before, "oidc_lockouts_total") + 1


def test_an_allowed_network_that_is_not_one_is_a_system_check_error(settings):
    from django.core.management import call_command
    from django.core.management.base import SystemCheckError

    settings.OIDC_PROVIDER = {**settings.OIDC_PROVIDER, "METRICS_ALLOWED_NETWORKS": "10.0.0.0/8, office"}
    with pytest.raises(SystemCheckError, match="oidc_provider.E016"):
        call_command("check")
