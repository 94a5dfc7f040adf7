"""Each console operation leaves exactly one audit event, with the same keys whichever way it is
done (the admin's list, its pages, the REST API), and a change the provider announces without
an actor (the command line) is recorded too."""

import pytest
from knox.models import AuthToken
from oauth2_provider.models import get_access_token_model
from rest_framework.test import APIClient

from console import audit
from console.models import AuditEvent
from oidc_provider import policy, signals
from oidc_provider.models import AccessAccount, AccessKey, GrantPolicy

from .factories import ApplicationFactory, UserFactory

POLICY_URL = "/admin/oidc_provider/grantpolicy/"
MATRIX_URL = POLICY_URL + "matrix/"
APPS_URL = "/admin/oidc_provider/application/"
KEYS_URL = "/admin/oidc_provider/accesskey/"
POLICY_KEYS = {"application_type", "grant", "previous", "state"}


@pytest.fixture
def api(admin_user):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {AuthToken.objects.create(user=admin_user)[1]}")
    return client


def events(action):
    return list(AuditEvent.objects.filter(action=action).order_by("id"))


def matrix_post(t, g, state):
    data = {}
    for (ct, cg), current in policy.current_policy().items():
        data[f"{ct}__{cg}"] = data[f"was__{ct}__{cg}"] = current
    data[f"{t}__{g}"] = state
    return data


def test_a_policy_change_is_one_event_with_the_same_keys_from_every_console_path(admin_client, api, admin_user):
    """The policy change event: one per changed pair, keys application_type, grant, previous, state."""
    row = GrantPolicy.objects.get(application_type=policy.WEB, grant=policy.HYBRID)
    assert admin_client.post(f"{POLICY_URL}{row.pk}/change/", {"state": policy.RECOMMENDED}).status_code == 302
    assert admin_client.post(MATRIX_URL, matrix_post(policy.WEB, policy.PASSWORD, policy.FORBIDDEN)).status_code == 302
    response = api.put(f"/console/api/policy/{policy.NATIVE}/{policy.PASSWORD}/", {"state": policy.FORBIDDEN}, format="json")
    assert response.status_code == 200

    recorded = events(audit.POLICY_CHANGED)
    assert [(e.details["application_type"], e.details["grant"], e.details["previous"], e.details["state"]) for e in recorded] == [
        (policy.WEB, policy.HYBRID, policy.ALLOWED, policy.RECOMMENDED),
        (policy.WEB, policy.PASSWORD, policy.ALLOWED, policy.FORBIDDEN),
        (policy.NATIVE, policy.PASSWORD, policy.ALLOWED, policy.FORBIDDEN),
    ]
    assert all(set(e.details) == POLICY_KEYS and e.actor == admin_user for e in recorded)
    assert {e.target_type for e in recorded} == {"oidc_provider.grantpolicy"}


def test_setting_a_policy_state_it_already_has_records_nothing(admin_client, api):
    """No change, no event: the API answers with the state, the audit log stays empty."""
    response = api.put(f"/console/api/policy/{policy.WEB}/{policy.HYBRID}/", {"state": policy.ALLOWED}, format="json")
    assert response.status_code == 200 and response.json()["previous_state"] == policy.ALLOWED
    row = GrantPolicy.objects.get(application_type=policy.WEB, grant=policy.HYBRID)
    admin_client.post(f"{POLICY_URL}{row.pk}/change/", {"state": policy.ALLOWED})
    assert not events(audit.POLICY_CHANGED)


def test_the_applications_holding_a_grant_are_the_same_on_every_page(admin_client, api):
    """The matrix's count, the API's list and the admin's warning name the same applications."""
    ApplicationFactory(name="Legacy SPA", application_type=policy.SPA, grant_types=[policy.IMPLICIT])
    ApplicationFactory(name="Other SPA", application_type=policy.SPA, grant_types=[policy.AUTHORIZATION_CODE])
    ApplicationFactory(name="A web app", application_type=policy.WEB, grant_types=[policy.AUTHORIZATION_CODE])

    matrix = admin_client.get(MATRIX_URL)
    cell = next(c for r in matrix.context["rows"] if r["grant"] == policy.IMPLICIT for c in r["cells"] if c["type"] == policy.SPA)
    assert cell["holders"] == 1
    body = api.put(f"/console/api/policy/{policy.SPA}/{policy.IMPLICIT}/", {"state": policy.FORBIDDEN}, format="json").json()
    assert [a["name"] for a in body["applications_holding_grant"]] == ["Legacy SPA"]


def test_a_key_pair_rotation_is_one_event_naming_both_pairs(admin_client, api):
    """Rotating a pair (admin page or API) leaves one access_key.rotated event, not an issue and a revoke."""
    account = AccessAccount.objects.create(name="nightly", scopes=["read"])
    first = AccessKey.objects.create(account=account, access_key="AKFIRST", secret_key="x")
    second = AccessKey.objects.create(account=account, access_key="AKSECOND", secret_key="x")

    admin_client.post(f"{KEYS_URL}{first.pk}/rotate/")
    assert api.post(f"/console/api/access-keys/{second.pk}/rotate/").status_code == 201

    recorded = events(audit.ACCESS_KEY_ROTATED)
    assert [e.details["previous"] for e in recorded] == ["AKFIRST", "AKSECOND"]
    assert all(e.details["account"] == "nightly" for e in recorded)
    assert not events(audit.ACCESS_KEY_ISSUED) and not events(audit.ACCESS_KEY_REVOKED)


def test_revoking_a_pair_twice_records_it_once(admin_client, api):
    """A pair already revoked: the API answers with it unchanged, the admin says so; one event."""
    account = AccessAccount.objects.create(name="nightly", scopes=["read"])
    key = AccessKey.objects.create(account=account, access_key="AKONCE", secret_key="x")
    assert api.post(f"/console/api/access-keys/{key.pk}/revoke/").status_code == 200
    assert api.post(f"/console/api/access-keys/{key.pk}/revoke/").status_code == 200
    assert admin_client.post(f"{KEYS_URL}{key.pk}/revoke/").status_code == 302
    assert len(events(audit.ACCESS_KEY_REVOKED)) == 1


def test_a_public_application_has_no_secret_to_regenerate_and_nothing_is_recorded(admin_client, api, spa_app):
    """Regenerating a public client's secret is refused (400 from the API, a message in the admin)."""
    assert api.post(f"/console/api/applications/{spa_app.client_id}/regenerate-secret/").status_code == 400
    assert admin_client.post(f"{APPS_URL}{spa_app.pk}/regenerate-secret/").status_code == 302
    assert not events(audit.APPLICATION_SECRET_REGENERATED)


def test_a_secret_regenerated_in_the_admin_or_the_api_is_one_event_without_the_secret(admin_client, api, web_app):
    """One application.secret_regenerated event per regeneration, with the client_id, never the secret."""
    admin_client.post(f"{APPS_URL}{web_app.pk}/regenerate-secret/")
    secret = api.post(f"/console/api/applications/{web_app.client_id}/regenerate-secret/").json()["client_secret"]
    recorded = events(audit.APPLICATION_SECRET_REGENERATED)
    assert len(recorded) == 2 and all(e.details == {"client_id": web_app.client_id} for e in recorded)
    assert secret not in str([e.details for e in recorded])


def test_an_application_created_and_deleted_through_the_api_is_recorded_once_each(api):
    """application.created and application.deleted, with the same keys as from the admin."""
    created = api.post(
        "/console/api/applications/",
        {"name": "Billing", "application_type": policy.SERVICE, "grant_types": [policy.CLIENT_CREDENTIALS]},
        format="json",
    )
    assert created.status_code == 201
    client_id = created.json()["client_id"]
    assert api.delete(f"/console/api/applications/{client_id}/").status_code == 204
    (made,) = events(audit.APPLICATION_CREATED)
    (gone,) = events(audit.APPLICATION_DELETED)
    assert made.details == {"client_id": client_id, "application_type": policy.SERVICE, "grant_types": [policy.CLIENT_CREDENTIALS]}
    assert gone.details == {"client_id": client_id, "application_type": policy.SERVICE}


def test_a_change_announced_without_an_actor_is_recorded_as_the_system(db):
    """The command line changes the configuration through the provider's operations with no
    actor: the provider's announcement alone is recorded, by "system"."""
    signals.grant_policy_changed.send(
        sender=GrantPolicy, application_type=policy.WEB, grant=policy.HYBRID,
        previous=policy.ALLOWED, state=policy.FORBIDDEN, actor=None,
    )
    (event,) = events(audit.POLICY_CHANGED)
    assert event.actor is None and event.actor_label == "system" and set(event.details) == POLICY_KEYS


def test_revoking_a_users_tokens_from_two_rows_is_one_event_per_user(admin_client, web_app):
    """The "revoke all of the selected rows' users" action: one tokens.revoked per user."""
    user = UserFactory()
    AccessToken = get_access_token_model()
    rows = [
        AccessToken.objects.create(user=user, application=web_app, token=f"t{i}", expires="2999-01-01T00:00Z", scope="openid")
        for i in range(2)
    ]
    admin_client.post(
        "/admin/oauth2_provider/accesstoken/",
        {"action": "revoke_all_of_users", "_selected_action": [r.pk for r in rows]},
    )
    (event,) = events(audit.TOKENS_REVOKED)
    assert event.details["scope"] == "user" and event.details["access_tokens"] == 2
    assert not AccessToken.objects.filter(user=user).exists()
