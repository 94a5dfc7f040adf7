"""Configuration changes made from the command line announce themselves, so they are audited
like the console's: the policy, applications, their secrets and AK/SK pairs."""

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from oidc_provider import policy, signals
from oidc_provider.models import AccessKey, Application
from tests.factories import ApplicationFactory
from tests.helpers import basic_auth

pytestmark = pytest.mark.django_db


def run_json(*args):
    out = StringIO()
    call_command(*args, "--json", stdout=out, stderr=StringIO())
    return json.loads(out.getvalue())


@pytest.fixture
def sent():
    """Every configuration signal sent during the test, as (name, kwargs) in order."""
    received = []
    names = ("grant_policy_changed", "client_secret_regenerated", "access_key_issued", "access_key_revoked",
             "access_key_rotated", "application_created", "application_deleted")
    receivers = {}
    for name in names:
        def receiver(sender, signal=None, _name=name, **kwargs):
            received.append((_name, kwargs))
        receivers[name] = receiver
        getattr(signals, name).connect(receiver)
    yield received
    for name, receiver in receivers.items():
        getattr(signals, name).disconnect(receiver)


def _cc(client, client_id, secret):
    return client.post("/oidc/token", {"grant_type": "client_credentials"}, HTTP_AUTHORIZATION=basic_auth(client_id, secret))


def test_policy_set_announces_the_change_with_both_states_and_no_actor(sent):
    """A policy change from the CLI is sent with the previous and new state; the CLI has no actor."""
    run_json("oidc_policy", "set", "--type", "native", "--grant", "implicit", "--state", "allowed")

    assert sent == [("grant_policy_changed", {
        "application_type": "native", "grant": "implicit", "previous": "forbidden", "state": "allowed", "actor": None,
    })]


def test_policy_set_to_the_state_in_force_announces_nothing(sent):
    """Setting a pair to the state it already has changes nothing, so nothing is announced."""
    run_json("oidc_policy", "set", "--type", "web", "--grant", "authorization_code", "--state", "recommended")

    assert sent == []


def test_policy_set_refused_announces_nothing(sent):
    """A refused change (an unknown state) is not announced."""
    with pytest.raises(CommandError, match="sometimes"):
        call_command("oidc_policy", "set", application_type="web", grant="password", state="sometimes", stdout=StringIO())

    assert sent == []


def test_app_create_announces_the_new_application(sent):
    """Registering an application from the CLI announces it, with no actor."""
    data = run_json("oidc_app", "create", "--name", "Batch", "--type", "service")

    assert [(name, kwargs["application"].client_id, kwargs["actor"]) for name, kwargs in sent] == [
        ("application_created", data["client_id"], None)
    ]


def test_app_create_refused_announces_nothing(sent):
    """An application the policy refuses is neither saved nor announced."""
    with pytest.raises(CommandError):
        run_json("oidc_app", "create", "--name", "Old SPA", "--type", "spa", "--grant", "password",
                 "--redirect-uri", "https://spa.example.com/cb")

    assert sent == [] and not Application.objects.filter(name="Old SPA").exists()


def test_app_delete_announces_the_application_it_deletes(sent, web_app):
    """Deleting an application from the CLI announces which one, before it is gone."""
    run_json("oidc_app", "delete", web_app.client_id)

    assert [(name, kwargs["application"].client_id, kwargs["actor"]) for name, kwargs in sent] == [
        ("application_deleted", web_app.client_id, None)
    ]
    assert not Application.objects.filter(client_id=web_app.client_id).exists()


def test_regenerate_secret_prints_a_new_secret_that_replaces_the_old_one(client, sent):
    """The new secret authenticates, the old one no longer does, and the change is announced."""
    app = ApplicationFactory(application_type=policy.SERVICE, redirect_uris="", post_logout_redirect_uris="")
    old = app.plaintext_secret

    data = run_json("oidc_app", "regenerate-secret", app.client_id)

    assert data["client_secret"] and data["client_secret"] != old
    assert _cc(client, app.client_id, data["client_secret"]).status_code == 200
    assert _cc(client, app.client_id, old).status_code == 401
    assert [(name, kwargs["application"].client_id, kwargs["actor"]) for name, kwargs in sent] == [
        ("client_secret_regenerated", app.client_id, None)
    ]


def test_regenerate_secret_of_a_public_client_is_refused(spa_app, sent):
    """A public client has no secret to regenerate: refused, nothing announced."""
    with pytest.raises(CommandError, match="public"):
        run_json("oidc_app", "regenerate-secret", spa_app.client_id)

    spa_app.refresh_from_db()
    assert spa_app.client_secret == "" and sent == []


def test_regenerate_secret_of_an_unknown_client_is_refused(sent):
    with pytest.raises(CommandError, match="no-such-client"):
        run_json("oidc_app", "regenerate-secret", "no-such-client")

    assert sent == []


def test_accesskey_create_rotate_and_revoke_announce_each_pair(sent):
    """Issuing, rotating and revoking AK/SK pairs from the CLI announce each act once: a
    rotation is one event naming the new pair (and the one it replaced)."""
    first = run_json("accesskey", "create", "--account", "billing", "--scope", "read")
    rotated = run_json("accesskey", "rotate", first["access_key"])
    run_json("accesskey", "revoke", rotated["access_key"])

    assert [(name, kwargs["key"].access_key, kwargs["actor"]) for name, kwargs in sent] == [
        ("access_key_issued", first["access_key"], None),
        ("access_key_rotated", rotated["access_key"], None),
        ("access_key_revoked", rotated["access_key"], None),
    ]
    assert sent[1][1]["previous"].access_key == first["access_key"]
    assert all(isinstance(kwargs["key"], AccessKey) for _, kwargs in sent)


def test_accesskey_revoke_twice_announces_once(sent):
    """Revoking a pair already revoked changes nothing, so it is announced once."""
    key = run_json("accesskey", "create", "--account", "billing", "--scope", "read")["access_key"]
    run_json("accesskey", "revoke", key)
    run_json("accesskey", "revoke", key)

    assert [name for name, _ in sent] == ["access_key_issued", "access_key_revoked"]
