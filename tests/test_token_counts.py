"""The dashboard's tokens-per-day counts: added up in memory, written at most once an interval.

The rest of the suite writes every count at once (CONSOLE_TOKEN_COUNT_INTERVAL=0, conftest);
these tests turn the interval on.
"""

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.utils import timezone

from console import token_counts
from console.models import DailyTokenCount
from oidc_provider import policy
from tests.factories import ApplicationFactory
from tests.helpers import basic_auth


def issue_cc_tokens(client, app, n):
    for _ in range(n):
        response = client.post(
            "/oidc/token", {"grant_type": "client_credentials", "scope": "read"},
            HTTP_AUTHORIZATION=basic_auth(app.client_id, app.plaintext_secret),
        )
        assert response.status_code == 200, response.content


def written(grant=policy.CLIENT_CREDENTIALS):
    row = DailyTokenCount.objects.filter(day=timezone.localdate(), grant=grant).first()
    return row.count if row else 0


@pytest.fixture
def service_app(db):
    return ApplicationFactory(application_type=policy.SERVICE, redirect_uris="", post_logout_redirect_uris="")


@pytest.fixture
def counted():
    token_counts.flush()  # starts the interval now: what follows is within it
    yield
    token_counts.flush()  # nothing left pending for the next test


def test_with_no_interval_every_token_is_written_as_it_is_issued(client, service_app, django_capture_on_commit_callbacks):
    """CONSOLE_TOKEN_COUNT_INTERVAL = 0: each issued token adds one to its day and grant."""
    with django_capture_on_commit_callbacks(execute=True):
        issue_cc_tokens(client, service_app, 2)
    assert written() == 2


def test_counts_within_the_interval_are_written_once_and_the_dashboard_sees_them(
    admin_client, client, service_app, settings, counted, django_capture_on_commit_callbacks
):
    """Counts within the interval wait in memory; reading the dashboard writes them, once."""
    settings.CONSOLE_TOKEN_COUNT_INTERVAL = 60
    with django_capture_on_commit_callbacks(execute=True):
        issue_cc_tokens(client, service_app, 3)
    assert written() == 0  # in memory: no commit per token

    assert "Client credentials (3)" in admin_client.get("/admin/").content.decode()
    assert written() == 3
    assert "Client credentials (3)" in admin_client.get("/admin/").content.decode()  # not counted twice


def test_the_first_token_after_the_interval_writes_what_waited(
    client, service_app, settings, counted, django_capture_on_commit_callbacks
):
    """A token issued once the interval is up writes its count and those that waited."""
    settings.CONSOLE_TOKEN_COUNT_INTERVAL = 60
    with django_capture_on_commit_callbacks(execute=True):
        issue_cc_tokens(client, service_app, 2)
    assert written() == 0
    settings.CONSOLE_TOKEN_COUNT_INTERVAL = 0
    with django_capture_on_commit_callbacks(execute=True):
        issue_cc_tokens(client, service_app, 1)
    assert written() == 3


def test_a_token_refused_is_not_counted(client, service_app, django_capture_on_commit_callbacks):
    """Only issued tokens count: a wrong secret leaves the day's row as it was."""
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/oidc/token", {"grant_type": "client_credentials", "scope": "read"},
            HTTP_AUTHORIZATION=basic_auth(service_app.client_id, "wrong"),
        )
    assert response.status_code == 401
    assert written() == 0


@pytest.mark.parametrize("value", [-1, "soon", None])
def test_a_bad_interval_is_refused_by_the_system_checks(settings, value):
    """CONSOLE_TOKEN_COUNT_INTERVAL must be a number of seconds, 0 or more."""
    settings.CONSOLE_TOKEN_COUNT_INTERVAL = value
    with pytest.raises(SystemCheckError, match="CONSOLE_TOKEN_COUNT_INTERVAL"):
        call_command("check")
