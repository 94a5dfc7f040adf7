import pytest
from django.test import override_settings

from oidc_provider import policy

from .factories import ApplicationFactory, UserFactory


@pytest.fixture(autouse=True, scope="session")
def _token_counts_written_at_once():
    # The dashboard's token counts are written at once, not by a timer thread that would
    # write outside the test's transaction (tests/test_token_counts.py tests the timer).
    with override_settings(CONSOLE_TOKEN_COUNT_INTERVAL=0):
        yield


@pytest.fixture
def user(db):
    return UserFactory()


@pytest.fixture
def web_app(db):
    return ApplicationFactory(application_type=policy.WEB, grant_types=["authorization_code", "refresh_token"])


@pytest.fixture
def spa_app(db):
    return ApplicationFactory(application_type=policy.SPA, redirect_uris="https://spa.example.com/cb")


@pytest.fixture
def logged_in(client, user):
    client.force_login(user)
    return client
