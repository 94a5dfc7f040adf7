import pytest

from oidc_provider import policy

from .factories import ApplicationFactory, UserFactory


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
