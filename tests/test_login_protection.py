"""Brute force: lockout per username and IP, throttle per IP, on the hosted page and the password grant."""

from axes.models import AccessAttempt

from oidc_provider import policy, throttle
from tests.factories import PASSWORD, ApplicationFactory, UserFactory
from tests.helpers import basic_auth


def _login(client, username, password, ip="10.0.0.1"):
    return client.post("/accounts/login/", {"username": username, "password": password}, REMOTE_ADDR=ip)


def test_five_failures_lock_the_username_for_that_ip_with_a_message(client, user):
    for _ in range(4):
        assert _login(client, user.username, "wrong").status_code == 200
    # The fifth failure locks, and says so; then even the right password is refused.
    assert _login(client, user.username, "wrong").status_code == 429
    locked = _login(client, user.username, PASSWORD)
    assert locked.status_code == 429
    assert b"15" in locked.content  # says for how long
    assert AccessAttempt.objects.filter(username=user.username, ip_address="10.0.0.1").exists()
    # Every lockout and failure is in the audit log, without the password.
    from console.models import AuditEvent

    assert AuditEvent.objects.filter(action="login.locked_out", actor_label=user.username).exists()
    assert AuditEvent.objects.filter(action="login.failed", actor_label=user.username).count() >= 5
    assert "wrong" not in str(list(AuditEvent.objects.values_list("details", flat=True)))


def test_a_lockout_from_one_ip_does_not_lock_the_user_out_elsewhere(client, user):
    for _ in range(6):
        _login(client, user.username, "wrong", ip="10.0.0.66")
    response = _login(client, user.username, PASSWORD, ip="10.0.0.2")
    assert response.status_code == 302


def test_a_successful_login_resets_the_count(client, user):
    for _ in range(4):
        _login(client, user.username, "wrong")
    assert _login(client, user.username, PASSWORD).status_code == 302
    client.logout()
    for _ in range(4):
        _login(client, user.username, "wrong")
    assert _login(client, user.username, PASSWORD).status_code == 302


def test_more_than_100_failures_from_one_ip_are_throttled(client, user, db):
    for _ in range(101):
        throttle.record_failure("10.0.0.9")
    assert _login(client, user.username, PASSWORD, ip="10.0.0.9").status_code == 429
    assert _login(client, user.username, PASSWORD, ip="10.0.0.10").status_code == 302


def test_failed_logins_from_many_usernames_count_toward_the_ip_throttle(client, db):
    for n in range(7):
        _login(client, f"nobody{n}", "wrong", ip="10.0.0.5")
    assert throttle.failures("10.0.0.5") == 7


def test_password_grant_locks_out_with_invalid_grant_naming_the_lockout(client, db):
    user = UserFactory()
    app = ApplicationFactory(application_type=policy.WEB, grant_types=["password"])
    auth = basic_auth(app.client_id, app.plaintext_secret)
    for _ in range(5):
        response = client.post(
            "/oidc/token", {"grant_type": "password", "username": user.username, "password": "wrong", "scope": "openid"},
            HTTP_AUTHORIZATION=auth, REMOTE_ADDR="10.0.0.7",
        )
        assert response.json()["error"] == "invalid_grant"
    response = client.post(
        "/oidc/token", {"grant_type": "password", "username": user.username, "password": PASSWORD, "scope": "openid"},
        HTTP_AUTHORIZATION=auth, REMOTE_ADDR="10.0.0.7",
    )
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "invalid_grant"
    assert "locked" in body["error_description"]


def test_password_grant_failures_are_recorded_with_the_clients_address_and_user_agent(client, db):
    """Authentication backends (axes, our throttle) see the token request's CGI variables
    and headers as META, though oauthlib is handed the text entries of the environ only."""
    user = UserFactory()
    app = ApplicationFactory(application_type=policy.WEB, grant_types=["password"])
    response = client.post(
        "/oidc/token", {"grant_type": "password", "username": user.username, "password": "wrong", "scope": "openid"},
        HTTP_AUTHORIZATION=basic_auth(app.client_id, app.plaintext_secret), REMOTE_ADDR="10.0.0.8", HTTP_USER_AGENT="batch-job/1.0",
    )
    assert response.json()["error"] == "invalid_grant"
    assert throttle.failures("10.0.0.8") == 1
    attempt = AccessAttempt.objects.get(username=user.username)
    assert (attempt.ip_address, attempt.user_agent) == ("10.0.0.8", "batch-job/1.0")
