"""The dashboard's tokens-per-day counts: added up in memory, written at most once an interval.

The rest of the in-process suite writes every count at once (CONSOLE_TOKEN_COUNT_INTERVAL=0,
conftest); these tests turn the interval on, and the live server runs with the default (1 s).
"""

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.utils import timezone

from console import token_counts
from console.models import DailyTokenCount
from oidc_provider import policy
from tests.factories import ApplicationFactory
from tests.helpers import basic_auth

from .live import HTTP_TIMEOUT, live_provider  # noqa: F401


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
    token_counts.flush()  # no timer left running into the next test


def test_counts_within_the_interval_are_written_once_and_the_dashboard_sees_them(
    admin_client, client, service_app, settings, counted, django_capture_on_commit_callbacks
):
    settings.CONSOLE_TOKEN_COUNT_INTERVAL = 60
    with django_capture_on_commit_callbacks(execute=True):
        issue_cc_tokens(client, service_app, 3)
    assert written() == 0  # in memory: no commit per token

    content = admin_client.get("/admin/").content.decode()
    assert "Client credentials (3)" in content
    assert written() == 3  # one upsert for the three


def test_the_first_count_after_a_quiet_interval_is_written_at_once(
    client, service_app, settings, counted, django_capture_on_commit_callbacks
):
    settings.CONSOLE_TOKEN_COUNT_INTERVAL = 0.05
    time.sleep(0.1)
    with django_capture_on_commit_callbacks(execute=True):
        issue_cc_tokens(client, service_app, 1)
    assert written() == 1


@pytest.mark.django_db(transaction=True)
def test_a_timer_writes_the_counts_when_the_interval_is_up(client, settings, counted):
    settings.CONSOLE_TOKEN_COUNT_INTERVAL = 0.3
    app = ApplicationFactory(application_type=policy.SERVICE, redirect_uris="", post_logout_redirect_uris="")
    token_counts.flush()
    issue_cc_tokens(client, app, 2)
    assert written() == 0
    deadline = time.monotonic() + 10
    while written() < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert written() == 2  # nobody read the dashboard: the timer wrote them


@pytest.mark.parametrize("value", [-1, "soon", None])
def test_a_bad_interval_is_refused_by_the_system_checks(settings, value):
    settings.CONSOLE_TOKEN_COUNT_INTERVAL = value
    with pytest.raises(SystemCheckError, match="CONSOLE_TOKEN_COUNT_INTERVAL"):
        call_command("check")


# -- the running server: several workers, each with its own counts -------------------------


def _written_on(live_provider):
    return live_provider.shell(
        "import json\nfrom django.db.models import Sum\nfrom console.models import DailyTokenCount\n"
        "print(json.dumps(DailyTokenCount.objects.filter(grant='client_credentials').aggregate(n=Sum('count'))['n'] or 0))"
    )


def test_every_worker_writes_its_counts_within_the_interval_exactly_once(live_provider):
    app = live_provider.create_app("Counted", "service", grants=["client_credentials"])
    time.sleep(1.5)  # what earlier tests left in the workers' memory is written by now
    before = _written_on(live_provider)
    url = live_provider.url("/oidc/token")

    def one(_):
        return requests.post(url, data={"grant_type": "client_credentials", "scope": "read"},
                             auth=(app["client_id"], app["client_secret"]), timeout=HTTP_TIMEOUT).status_code

    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(one, range(40)))
    assert statuses == [200] * 40
    deadline = time.monotonic() + 15
    while _written_on(live_provider) < before + 40 and time.monotonic() < deadline:
        time.sleep(0.5)
    time.sleep(1.5)  # a second write of the same counts would show by now
    assert _written_on(live_provider) == before + 40
