"""The token endpoint's refusals (RFC 6749 §5.2, RFC 7636 §4.6)."""

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone
from oauth2_provider.models import get_access_token_model, get_grant_model, get_id_token_model, get_refresh_token_model

from oidc_provider import policy
from oidc_provider.models import RedeemedCode
from oidc_provider.validators import OIDCValidator, code_digest
from tests.factories import ApplicationFactory
from tests.helpers import basic_auth, exchange, get_code, pkce_pair, set_policy

AccessToken = get_access_token_model()
RefreshToken = get_refresh_token_model()
IDToken = get_id_token_model()
Grant = get_grant_model()


def _error(response, status=400):
    assert response.status_code == status, response.content
    assert response["Cache-Control"] == "no-store"
    return response.json()["error"]


def test_code_reuse_fails_and_revokes_tokens_issued_from_it(logged_in, web_app):
    """OIDCC codereuse / RFC 6749 §4.1.2: the second exchange fails and revokes the first's tokens."""
    code = get_code(logged_in, web_app)["code"]
    first = exchange(logged_in, web_app, code, secret=web_app.plaintext_secret).json()
    me = logged_in.get("/oidc/me", HTTP_AUTHORIZATION=f"Bearer {first['access_token']}")
    assert me.status_code == 200
    assert _error(exchange(logged_in, web_app, code, secret=web_app.plaintext_secret)) == "invalid_grant"
    me = logged_in.get("/oidc/me", HTTP_AUTHORIZATION=f"Bearer {first['access_token']}")
    assert me.status_code == 401
    refresh = logged_in.post(
        "/oidc/token",
        {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
        HTTP_AUTHORIZATION=basic_auth(web_app.client_id, web_app.plaintext_secret),
    )
    assert _error(refresh) == "invalid_grant"


def test_code_reuse_after_a_refresh_revokes_the_rotated_tokens_too(logged_in, web_app):
    code = get_code(logged_in, web_app)["code"]
    first = exchange(logged_in, web_app, code, secret=web_app.plaintext_secret).json()
    rotated = logged_in.post(
        "/oidc/token", {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
        HTTP_AUTHORIZATION=basic_auth(web_app.client_id, web_app.plaintext_secret),
    ).json()
    assert _error(exchange(logged_in, web_app, code, secret=web_app.plaintext_secret)) == "invalid_grant"
    assert logged_in.get("/oidc/me", HTTP_AUTHORIZATION=f"Bearer {rotated['access_token']}").status_code == 401
    refresh = logged_in.post(
        "/oidc/token", {"grant_type": "refresh_token", "refresh_token": rotated["refresh_token"]},
        HTTP_AUTHORIZATION=basic_auth(web_app.client_id, web_app.plaintext_secret),
    )
    assert _error(refresh) == "invalid_grant"


def test_code_reuse_without_a_refresh_token_revokes_the_access_token(logged_in, db):
    app = ApplicationFactory(application_type=policy.WEB, grant_types=["authorization_code"])
    code = get_code(logged_in, app)["code"]
    first = exchange(logged_in, app, code, secret=app.plaintext_secret).json()
    assert "refresh_token" not in first and RedeemedCode.objects.count() == 1
    assert _error(exchange(logged_in, app, code, secret=app.plaintext_secret)) == "invalid_grant"
    assert logged_in.get("/oidc/me", HTTP_AUTHORIZATION=f"Bearer {first['access_token']}").status_code == 401


def test_a_spent_code_presented_by_another_client_revokes_nothing(logged_in, web_app, db):
    code = get_code(logged_in, web_app)["code"]
    first = exchange(logged_in, web_app, code, secret=web_app.plaintext_secret).json()
    other = ApplicationFactory(application_type=policy.WEB, grant_types=["authorization_code", "refresh_token"])
    assert _error(exchange(logged_in, other, code, secret=other.plaintext_secret)) == "invalid_grant"
    assert logged_in.get("/oidc/me", HTTP_AUTHORIZATION=f"Bearer {first['access_token']}").status_code == 200


@pytest.mark.django_db(transaction=True)  # the failed exchange rolls its own transaction back, as in production
def test_a_code_spent_by_another_request_after_validation_issues_nothing(logged_in, web_app, monkeypatch):
    """The race two parallel exchanges run, made certain: the Grant goes between this request's
    validation and its writes. Single use then rests on the DELETE (the one statement on
    PostgreSQL, the transaction elsewhere): invalid_grant, and no token row written."""
    code = get_code(logged_in, web_app)["code"]
    saving = OIDCValidator.save_bearer_token

    def spent_meanwhile(self, token, request, *args, **kwargs):
        with connection.cursor() as cursor:  # another request's DELETE: no ORM, no signals
            cursor.execute(f"DELETE FROM {connection.ops.quote_name(Grant._meta.db_table)} WHERE code = %s", [code_digest(code)])
        return saving(self, token, request, *args, **kwargs)

    monkeypatch.setattr(OIDCValidator, "save_bearer_token", spent_meanwhile)
    rows = (AccessToken.objects.count(), RefreshToken.objects.count(), IDToken.objects.count(), RedeemedCode.objects.count())
    response = exchange(logged_in, web_app, code, secret=web_app.plaintext_secret)
    assert _error(response) == "invalid_grant"
    assert "already been used" in response.json()["error_description"]
    assert (AccessToken.objects.count(), RefreshToken.objects.count(), IDToken.objects.count(), RedeemedCode.objects.count()) == rows


def test_expired_code_is_invalid_grant(logged_in, web_app):
    code = get_code(logged_in, web_app)["code"]
    get_grant_model().objects.filter(code=code_digest(code)).update(expires=timezone.now() - timedelta(seconds=1))
    assert _error(exchange(logged_in, web_app, code, secret=web_app.plaintext_secret)) == "invalid_grant"


def test_code_from_another_client_is_invalid_grant(logged_in, web_app, db):
    other = ApplicationFactory(application_type=policy.WEB)
    code = get_code(logged_in, web_app)["code"]
    assert _error(exchange(logged_in, other, code, secret=other.plaintext_secret)) == "invalid_grant"
    # The rightful client can still use it.
    assert exchange(logged_in, web_app, code, secret=web_app.plaintext_secret).status_code == 200


def test_wrong_redirect_uri_at_exchange_is_invalid_grant(logged_in, web_app):
    web_app.redirect_uris = "https://rp.example.com/callback https://rp.example.com/other"
    web_app.save()
    code = get_code(logged_in, web_app)["code"]
    response = exchange(logged_in, web_app, code, secret=web_app.plaintext_secret, redirect_uri="https://rp.example.com/other")
    assert _error(response) in ("invalid_grant", "invalid_request")


@pytest.mark.parametrize("secret", ["wrong", "", None])
def test_wrong_client_secret_is_invalid_client_401(logged_in, web_app, secret):
    code = get_code(logged_in, web_app)["code"]
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": "https://rp.example.com/callback"}
    if secret is None:
        data["client_id"] = web_app.client_id
        response = logged_in.post("/oidc/token", data)
    else:
        response = logged_in.post("/oidc/token", data, HTTP_AUTHORIZATION=basic_auth(web_app.client_id, secret))
    assert _error(response, 401) == "invalid_client"


def test_a_code_presented_with_a_wrong_secret_is_refused_and_stays_redeemable(logged_in, web_app):
    """RFC 6749 §3.2.1, §4.1.3: the client authenticates before its code is accepted; the code
    read ahead of that authentication is neither spent nor revealed by a failed attempt."""
    code = get_code(logged_in, web_app)["code"]
    assert _error(exchange(logged_in, web_app, code, secret="wrong"), 401) == "invalid_client"
    assert Grant.objects.filter(code=code_digest(code)).exists()
    response = exchange(logged_in, web_app, code, secret=web_app.plaintext_secret)
    assert response.status_code == 200 and response.json()["id_token"], response.content


def test_a_refresh_token_presented_with_a_wrong_secret_is_refused_and_stays_live(logged_in, web_app):
    """RFC 6749 §6: a confidential client authenticates before its refresh token is rotated."""
    tokens = exchange(logged_in, web_app, get_code(logged_in, web_app)["code"], secret=web_app.plaintext_secret).json()
    data = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    refused = logged_in.post("/oidc/token", data, HTTP_AUTHORIZATION=basic_auth(web_app.client_id, "wrong"))
    assert _error(refused, 401) == "invalid_client"
    assert not RefreshToken.objects.filter(revoked__isnull=False).exists()
    rotated = logged_in.post("/oidc/token", data, HTTP_AUTHORIZATION=basic_auth(web_app.client_id, web_app.plaintext_secret))
    assert rotated.status_code == 200 and rotated.json()["refresh_token"] != tokens["refresh_token"], rotated.content


def test_stored_digest_is_not_accepted_as_the_secret(logged_in, web_app):
    code = get_code(logged_in, web_app)["code"]
    response = exchange(logged_in, web_app, code, secret=web_app.client_secret)
    assert _error(response, 401) == "invalid_client"


def test_pkce_missing_verifier_is_refused(logged_in, spa_app):
    _verifier, challenge = pkce_pair()
    code = get_code(logged_in, spa_app, code_challenge=challenge, code_challenge_method="S256")["code"]
    assert _error(exchange(logged_in, spa_app, code)) == "invalid_request"


def test_pkce_wrong_verifier_is_invalid_grant(logged_in, spa_app):
    _verifier, challenge = pkce_pair()
    code = get_code(logged_in, spa_app, code_challenge=challenge, code_challenge_method="S256")["code"]
    other_verifier, _ = pkce_pair()
    response = exchange(logged_in, spa_app, code, code_verifier=other_verifier)
    assert _error(response) == "invalid_grant"
    assert not get_access_token_model().objects.exists()


def test_grant_the_app_does_not_hold_is_unauthorized_client(client, web_app, user):
    """Under the default policy web holds code + refresh, not password."""
    response = client.post(
        "/oidc/token",
        {"grant_type": "password", "username": user.username, "password": "x"},
        HTTP_AUTHORIZATION=basic_auth(web_app.client_id, web_app.plaintext_secret),
    )
    assert _error(response) == "unauthorized_client"


def test_policy_forbidding_a_grant_applies_to_the_next_token_request(logged_in, web_app):
    code = get_code(logged_in, web_app)["code"]
    set_policy(policy.WEB, policy.AUTHORIZATION_CODE, policy.FORBIDDEN)
    assert _error(exchange(logged_in, web_app, code, secret=web_app.plaintext_secret)) == "unauthorized_client"


def test_unknown_grant_type_is_unsupported(client, web_app):
    response = client.post(
        "/oidc/token", {"grant_type": "urn:x"}, HTTP_AUTHORIZATION=basic_auth(web_app.client_id, web_app.plaintext_secret)
    )
    assert _error(response) == "unsupported_grant_type"


def test_token_endpoint_refuses_get(client, db):
    assert client.get("/oidc/token").status_code == 405


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"grant_type": "authorization_code"},
        {"grant_type": "authorization_code", "code": "\x00"},
        {"grant_type": "authorization_code", "code": "x" * 100000},
        b"grant_type=refresh_token&refresh_token=%FF%FE%00",
        b"grant_type=authorization_code&code=%C3%28&redirect_uri=%E0%80%80",
        b"\xff\xfe=\x00",
    ],
)
def test_malformed_token_requests_get_a_4xx(client, web_app, data):
    auth = basic_auth(web_app.client_id, web_app.plaintext_secret)
    if isinstance(data, bytes):
        response = client.generic("POST", "/oidc/token", data, "application/x-www-form-urlencoded", HTTP_AUTHORIZATION=auth)
    else:
        response = client.post("/oidc/token", data, HTTP_AUTHORIZATION=auth)
    assert 400 <= response.status_code < 500


def test_malformed_basic_auth_headers_get_401(client, db):
    for header in ("Basic", "Basic !!!", "Basic " + "A" * 5000, "Bearer x"):
        response = client.post("/oidc/token", {"grant_type": "client_credentials"}, HTTP_AUTHORIZATION=header)
        assert response.status_code in (400, 401), header


def test_error_reports_never_show_the_client_secret_or_password(client, db):
    from django.views.debug import SafeExceptionReporterFilter

    app = ApplicationFactory(application_type=policy.WEB, grant_types=["authorization_code"])
    response = client.post(
        "/oidc/token",
        {"grant_type": "password", "username": "alice", "password": "pw-in-the-clear",
         "client_id": app.client_id, "client_secret": app.plaintext_secret},
    )
    assert response.status_code in (400, 401)
    shown = SafeExceptionReporterFilter().get_post_parameters(response.wsgi_request)
    assert shown["client_secret"] != app.plaintext_secret and set(shown["client_secret"]) == {"*"}
    assert shown["password"] != "pw-in-the-clear" and set(shown["password"]) == {"*"}
    assert shown["username"] == "alice"
