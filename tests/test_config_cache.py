"""The per-process copy of applications, policy, keys and AK/SK pairs (config_cache.py).

Every worker keeps them in memory for speed; a change made anywhere (another process's
command line, the console) must still hold from the very next request, in every worker.
"""

import hashlib
import secrets
import time

import jwt
import pytest
import requests
from django.db import connection
from django.test.utils import CaptureQueriesContext
from oauth2_provider.signals import app_authorized

from oidc_provider import config_cache, keys, policy
from oidc_provider.models import Application, ConfigVersion, GrantPolicy, SigningKey
from tests.factories import ApplicationFactory
from tests.helpers import authorize, basic_auth, consent, exchange, fragment_of, get_code, query_of

from .live import HTTP_TIMEOUT, live_provider  # noqa: F401

# More requests than the live server has workers x threads, so every worker has cached.
REQUESTS = 24


def _cc(live_provider, client_id, secret):
    return requests.post(
        live_provider.url("/oidc/token"), data={"grant_type": "client_credentials", "scope": "read"},
        auth=(client_id, secret), timeout=HTTP_TIMEOUT,
    )


def _statuses(live_provider, client_id, secret):
    return {_cc(live_provider, client_id, secret).status_code for _ in range(REQUESTS)}


def test_a_policy_change_from_another_process_applies_to_the_next_request_in_every_worker(live_provider):
    app = live_provider.create_app(f"cache-{secrets.token_hex(3)}", "service", grants=["client_credentials"])
    assert _statuses(live_provider, app["client_id"], app["client_secret"]) == {200}
    live_provider.manage("oidc_policy", "set", "--type", "service", "--grant", "client_credentials", "--state", "forbidden")
    try:
        responses = [_cc(live_provider, app["client_id"], app["client_secret"]) for _ in range(REQUESTS)]
        assert {r.status_code for r in responses} == {400}
        assert {r.json()["error"] for r in responses} == {"unauthorized_client"}
    finally:
        live_provider.manage("oidc_policy", "set", "--type", "service", "--grant", "client_credentials", "--state", "recommended")
    assert _statuses(live_provider, app["client_id"], app["client_secret"]) == {200}


def test_a_deleted_application_is_refused_on_the_next_request_in_every_worker(live_provider):
    app = live_provider.create_app(f"cache-{secrets.token_hex(3)}", "service", grants=["client_credentials"])
    assert _statuses(live_provider, app["client_id"], app["client_secret"]) == {200}
    live_provider.manage("oidc_app", "delete", app["client_id"])
    assert _statuses(live_provider, app["client_id"], app["client_secret"]) == {401}


def test_a_revoked_access_key_is_refused_on_the_next_request_in_every_worker(live_provider):
    pair = live_provider.manage_json("accesskey", "create", "--account", f"cache-{secrets.token_hex(3)}", "--scope", "read")
    assert _statuses(live_provider, pair["access_key"], pair["secret_key"]) == {200}
    live_provider.manage("accesskey", "revoke", pair["access_key"])
    assert _statuses(live_provider, pair["access_key"], pair["secret_key"]) == {401}


def _published_sets(live_provider):
    """The set of kids each of REQUESTS JWKS fetches saw (one element when every worker agrees)."""
    documents = [requests.get(live_provider.url("/oidc/.well-known/jwks.json"), timeout=HTTP_TIMEOUT).json() for _ in range(REQUESTS)]
    return {frozenset(k["kid"] for k in d["keys"]) for d in documents}


def test_a_rotation_in_another_process_signs_with_a_key_every_worker_already_publishes(live_provider):
    before = _published_sets(live_provider)
    assert len(before) == 1
    new = live_provider.manage_json("oidc_keys", "rotate")
    # The key that signs from now on was announced before the rotation: every worker serves
    # it on the very next request, whether or not its copy of the JWKS has caught up.
    assert new["kid"] in next(iter(before))
    assert all(new["kid"] in kids for kids in _published_sets(live_provider))
    # The newly announced next key reaches every worker within JWKS_CACHE_SECONDS (2 s).
    deadline = time.monotonic() + 2 + 3
    while (seen := _published_sets(live_provider)) != {frozenset(new["published_kids"])}:
        assert time.monotonic() < deadline, seen
        time.sleep(0.2)
    assert set(new["published_kids"]) > next(iter(before))


# -- in one process ------------------------------------------------------------------------


def _set_secret_as_another_process(app, secret):
    """Give ``app`` a new secret as another process would: rows and version only, no signal
    reaches this process's copy (which has seen the state before)."""
    donor = Application.objects.create(name="Donor", application_type=policy.SERVICE, client_secret=secret)
    stored = Application.objects.filter(pk=donor.pk).values_list("client_secret", flat=True).get()
    Application.objects.filter(pk=app.pk).update(client_secret=stored)
    ConfigVersion.objects.filter(pk=1).update(value=ConfigVersion.objects.get(pk=1).value + 1)


def test_introspection_sees_a_change_another_process_made(client, db):
    """A change another process committed applies to the very next introspection."""
    body = {"grant_type": "client_credentials", "scope": "read"}
    app = Application.objects.create(
        name="Introspecting", application_type=policy.SERVICE, grant_types=[policy.CLIENT_CREDENTIALS],
        client_secret="first-secret",
    )
    token = client.post("/oidc/token", body, HTTP_AUTHORIZATION=basic_auth(app.client_id, "first-secret")).json()["access_token"]

    def introspect(secret):
        return client.post("/oidc/token/introspection", {"token": token}, HTTP_AUTHORIZATION=basic_auth(app.client_id, secret))

    assert introspect("first-secret").json()["active"] is True
    _set_secret_as_another_process(app, "second-secret")
    refused = introspect("first-secret")
    assert refused.status_code == 401, refused.content
    assert introspect("second-secret").json()["active"] is True


def test_a_refresh_sees_a_change_another_process_made(client, db):
    """A change another process committed applies to the very next refresh."""
    from django.contrib.auth import get_user_model

    app = Application.objects.create(
        name="Refreshing", application_type=policy.WEB, grant_types=[policy.AUTHORIZATION_CODE, policy.REFRESH_TOKEN],
        redirect_uris="https://rp.example.com/callback", client_secret="first-secret", skip_authorization=True,
    )
    client.force_login(get_user_model().objects.create_user("refresher", password="x" * 20))
    tokens = exchange(client, app, get_code(client, app)["code"], secret="first-secret").json()

    def refresh(secret):
        return client.post("/oidc/token", {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
                           HTTP_AUTHORIZATION=basic_auth(app.client_id, secret))

    _set_secret_as_another_process(app, "second-secret")
    refused = refresh("first-secret")
    assert refused.status_code == 401, refused.content
    rotated = refresh("second-secret")
    assert rotated.status_code == 200, rotated.content
    assert rotated.json()["refresh_token"] != tokens["refresh_token"]


# -- client credentials: a change elsewhere applies to the very next request ----------------

CC_BODY = {"grant_type": "client_credentials", "scope": "read"}


def _service_app(name, secret):
    return Application.objects.create(
        name=name, application_type=policy.SERVICE, grant_types=[policy.CLIENT_CREDENTIALS], client_secret=secret,
    )


def _bump_version_as_another_process():
    ConfigVersion.objects.filter(pk=1).update(value=ConfigVersion.objects.get(pk=1).value + 1)


def _grant_refusals():
    from console.audit import GRANT_REFUSED
    from console.models import AuditEvent

    return AuditEvent.objects.filter(action=GRANT_REFUSED).count()


def test_a_grant_forbidden_elsewhere_is_refused_although_the_copy_allowed_it(client, db):
    """The copy allows the grant, the database no longer does: refused, once (one audit
    event), with no token written."""
    from oauth2_provider.models import get_access_token_model

    app = _service_app("Forbidden elsewhere", "fe-secret")
    auth = basic_auth(app.client_id, "fe-secret")
    assert client.post("/oidc/token", CC_BODY, HTTP_AUTHORIZATION=auth).status_code == 200
    tokens, refusals = get_access_token_model().objects.count(), _grant_refusals()
    GrantPolicy.objects.filter(application_type=policy.SERVICE, grant=policy.CLIENT_CREDENTIALS).update(state=policy.FORBIDDEN)
    _bump_version_as_another_process()
    response = client.post("/oidc/token", CC_BODY, HTTP_AUTHORIZATION=auth)
    assert response.status_code == 400 and response.json()["error"] == "unauthorized_client", response.content
    assert get_access_token_model().objects.count() == tokens
    assert _grant_refusals() == refusals + 1


def test_a_grant_allowed_elsewhere_is_issued_although_the_copy_forbade_it(client, db):
    """The copy forbids the grant, the database allows it again: the token is issued and
    no refusal recorded."""
    app = _service_app("Allowed elsewhere", "ae-secret")
    auth = basic_auth(app.client_id, "ae-secret")
    GrantPolicy.objects.filter(application_type=policy.SERVICE, grant=policy.CLIENT_CREDENTIALS).update(state=policy.FORBIDDEN)
    config_cache.changed()
    assert client.post("/oidc/token", CC_BODY, HTTP_AUTHORIZATION=auth).json()["error"] == "unauthorized_client"
    refusals = _grant_refusals()
    GrantPolicy.objects.filter(application_type=policy.SERVICE, grant=policy.CLIENT_CREDENTIALS).update(state=policy.RECOMMENDED)
    _bump_version_as_another_process()
    response = client.post("/oidc/token", CC_BODY, HTTP_AUTHORIZATION=auth)
    assert response.status_code == 200, response.content
    assert _grant_refusals() == refusals


def test_a_secret_rotated_elsewhere_works_on_the_first_try_and_the_old_one_fails(client, db):
    app = _service_app("Rotated elsewhere", "first-secret")
    assert client.post("/oidc/token", CC_BODY, HTTP_AUTHORIZATION=basic_auth(app.client_id, "first-secret")).status_code == 200
    _set_secret_as_another_process(app, "second-secret")
    assert client.post("/oidc/token", CC_BODY, HTTP_AUTHORIZATION=basic_auth(app.client_id, "second-secret")).status_code == 200
    assert client.post("/oidc/token", CC_BODY, HTTP_AUTHORIZATION=basic_auth(app.client_id, "first-secret")).status_code == 401


def test_a_new_secret_the_copy_has_not_seen_is_neither_counted_nor_announced_as_a_failure(client, db):
    """The copy would refuse the new secret; the refusal is checked against the current
    configuration before it is counted, so the client gets its token and no failure is
    recorded against it (which would bring it nearer a lockout)."""
    from console.audit import CLIENT_AUTH_FAILED
    from console.models import AuditEvent
    from oidc_provider.models import ThrottleCount

    app = _service_app("Rotated, counted", "first-secret")
    assert client.post("/oidc/token", CC_BODY, HTTP_AUTHORIZATION=basic_auth(app.client_id, "first-secret")).status_code == 200
    _set_secret_as_another_process(app, "second-secret")
    counts = ThrottleCount.objects.count()
    response = client.post("/oidc/token", CC_BODY, HTTP_AUTHORIZATION=basic_auth(app.client_id, "second-secret"))
    assert response.status_code == 200, response.content
    assert not AuditEvent.objects.filter(action=CLIENT_AUTH_FAILED).exists()
    assert ThrottleCount.objects.count() == counts


def test_a_client_credentials_request_after_a_change_elsewhere_writes_under_the_new_version(client, db):
    """The first request after a change assumed the old version: its INSERT wrote nothing, and
    the request ran again on the version read, so exactly one token exists for it."""
    from oauth2_provider.models import get_access_token_model

    app = _service_app("Changed meanwhile", "cm-secret")
    auth = basic_auth(app.client_id, "cm-secret")
    assert client.post("/oidc/token", CC_BODY, HTTP_AUTHORIZATION=auth).status_code == 200
    before = get_access_token_model().objects.count()
    _bump_version_as_another_process()
    with CaptureQueriesContext(connection) as captured:
        response = client.post("/oidc/token", CC_BODY, HTTP_AUTHORIZATION=auth)
    assert response.status_code == 200, response.content
    assert get_access_token_model().objects.count() == before + 1
    inserts = [q["sql"] for q in captured.captured_queries if q["sql"].lstrip().upper().startswith("INSERT")]
    assert 1 <= len(inserts) <= 2, inserts


def test_an_application_deleted_elsewhere_gets_no_token(client, db):
    from oauth2_provider.models import get_access_token_model

    app = _service_app("Deleted elsewhere", "de-secret")
    auth = basic_auth(app.client_id, "de-secret")
    assert client.post("/oidc/token", CC_BODY, HTTP_AUTHORIZATION=auth).status_code == 200
    get_access_token_model().objects.filter(application=app).delete()
    Application.objects.filter(pk=app.pk).delete()
    _bump_version_as_another_process()
    response = client.post("/oidc/token", CC_BODY, HTTP_AUTHORIZATION=auth)
    assert response.status_code == 401 and response.json()["error"] == "invalid_client", response.content
    assert not get_access_token_model().objects.exists()


def test_an_access_key_revoked_elsewhere_gets_no_token(client, db):
    from django.utils import timezone
    from oauth2_provider.models import get_access_token_model

    from oidc_provider import access_keys
    from oidc_provider.models import AccessKey

    key, sk = access_keys.issue(access_keys.get_or_create_account("elsewhere", ["read"]))
    auth = basic_auth(key.access_key, sk)
    assert client.post("/oidc/token", CC_BODY, HTTP_AUTHORIZATION=auth).status_code == 200
    issued = get_access_token_model().objects.count()
    AccessKey.objects.filter(pk=key.pk).update(revoked_at=timezone.now())
    _bump_version_as_another_process()
    assert client.post("/oidc/token", CC_BODY, HTTP_AUTHORIZATION=auth).status_code == 401
    assert get_access_token_model().objects.count() == issued


def test_a_bulk_update_applies_once_changed_is_called(client, db):
    app = Application.objects.create(
        name="Bulk", application_type=policy.SERVICE, grant_types=[policy.CLIENT_CREDENTIALS], client_secret="bulk-secret",
    )
    body = {"grant_type": "client_credentials", "scope": "read"}
    auth = basic_auth(app.client_id, "bulk-secret")
    assert client.post("/oidc/token", body, HTTP_AUTHORIZATION=auth).status_code == 200
    # update() sends no signals: a script that uses it says so (docs/install.md).
    GrantPolicy.objects.filter(application_type=policy.SERVICE, grant=policy.CLIENT_CREDENTIALS).update(state=policy.FORBIDDEN)
    config_cache.changed()
    assert client.post("/oidc/token", body, HTTP_AUTHORIZATION=auth).json()["error"] == "unauthorized_client"


def test_app_authorized_is_still_sent_with_the_issued_token(client, db):
    app = Application.objects.create(
        name="Signal", application_type=policy.SERVICE, grant_types=[policy.CLIENT_CREDENTIALS], client_secret="signal-secret",
    )
    seen = []

    def receiver(sender, request, token, **kwargs):
        seen.append(token)

    app_authorized.connect(receiver)
    try:
        response = client.post(
            "/oidc/token", {"grant_type": "client_credentials", "scope": "read"},
            HTTP_AUTHORIZATION=basic_auth(app.client_id, "signal-secret"),
        )
    finally:
        app_authorized.disconnect(receiver)
    assert response.status_code == 200
    assert len(seen) == 1 and seen[0].pk is not None and seen[0].application_id == app.pk
    assert seen[0].token_checksum == hashlib.sha256(response.json()["access_token"].encode()).hexdigest()


@pytest.mark.django_db(transaction=True)
def test_without_the_version_row_nothing_is_cached(client):
    # A flushed database (or one migrated below 0003) has no version row: read through.
    from oidc_provider.models import ConfigVersion

    ConfigVersion.objects.all().delete()
    app = Application.objects.create(
        name="Flushed", application_type=policy.SERVICE, grant_types=[policy.CLIENT_CREDENTIALS], client_secret="flushed-secret",
    )
    ConfigVersion.objects.all().delete()  # the save above wrote one
    body = {"grant_type": "client_credentials", "scope": "read"}
    auth = basic_auth(app.client_id, "flushed-secret")
    assert client.post("/oidc/token", body, HTTP_AUTHORIZATION=auth).status_code == 200
    Application.objects.filter(pk=app.pk).update(grant_types=[])
    assert client.post("/oidc/token", body, HTTP_AUTHORIZATION=auth).json()["error"] == "unauthorized_client"


# -- the JWKS copy ---------------------------------------------------------------------------


def _jwks_kids(client):
    return {k["kid"] for k in client.get("/oidc/.well-known/jwks.json").json()["keys"]}


def _change_keys_as_another_process_would(**changes):
    """Change key rows and the version without this process hearing of it (no signals)."""
    SigningKey.objects.filter(status=SigningKey.NEXT).update(**changes)
    ConfigVersion.objects.filter(pk=1).update(value=secrets.randbits(62))


@pytest.mark.django_db(transaction=True)
def test_a_jwks_that_announces_the_next_key_is_served_from_memory_for_a_bounded_time(client, settings, django_assert_num_queries):
    settings.OIDC_PROVIDER = {**settings.OIDC_PROVIDER, "JWKS_CACHE_SECONDS": 0.5}
    keys.ensure_active_key()
    upcoming = SigningKey.objects.get(status=SigningKey.NEXT).kid
    assert upcoming in _jwks_kids(client)
    with django_assert_num_queries(0):
        assert upcoming in _jwks_kids(client)
    _change_keys_as_another_process_would(status=SigningKey.RETIRED)
    assert upcoming in _jwks_kids(client)  # the copy, still within its half second
    time.sleep(0.6)
    assert upcoming not in _jwks_kids(client)


@pytest.mark.django_db(transaction=True)
def test_a_jwks_without_a_next_key_asks_the_database_on_every_request(client, settings):
    settings.OIDC_PROVIDER = {**settings.OIDC_PROVIDER, "JWKS_CACHE_SECONDS": 60}
    keys.ensure_active_key()
    SigningKey.objects.filter(status=SigningKey.NEXT).delete()  # a database from before next keys
    active = SigningKey.objects.get(status=SigningKey.ACTIVE)
    assert _jwks_kids(client) == {active.kid}
    # Another process rotates the old way: a key nobody has seen signs at once.
    fresh = keys.generate(status=SigningKey.INACTIVE)
    ConfigVersion.objects.filter(pk=1).update(value=secrets.randbits(62))
    assert fresh.kid in _jwks_kids(client)


@pytest.mark.django_db(transaction=True)
def test_a_change_in_this_process_is_published_at_once_whatever_the_copy(client, settings):
    settings.OIDC_PROVIDER = {**settings.OIDC_PROVIDER, "JWKS_CACHE_SECONDS": 60}
    keys.ensure_active_key()
    _jwks_kids(client)
    upcoming = SigningKey.objects.get(status=SigningKey.NEXT)
    keys.retire(upcoming)
    kids = _jwks_kids(client)
    assert upcoming.kid not in kids and SigningKey.objects.get(status=SigningKey.NEXT).kid in kids


def test_discovery_reads_no_database(client, db, django_assert_num_queries):
    client.get("/oidc/.well-known/openid-configuration")
    with django_assert_num_queries(0):
        assert client.get("/oidc/.well-known/openid-configuration").json()["jwks_uri"].endswith("/oidc/.well-known/jwks.json")


def test_a_change_elsewhere_applies_to_the_next_code_exchange_for_one_read_of_the_version(logged_in, web_app):
    # Another process's change (here: a bulk update and a new version, this process's copy
    # not told) applies to the very next request, which reads the version once.
    warm = get_code(logged_in, web_app)["code"]
    assert exchange(logged_in, web_app, warm, secret=web_app.plaintext_secret).status_code == 200
    code = get_code(logged_in, web_app)["code"]
    GrantPolicy.objects.filter(application_type=policy.WEB, grant=policy.AUTHORIZATION_CODE).update(state=policy.FORBIDDEN)
    ConfigVersion.objects.filter(pk=1).update(value=secrets.randbits(62))
    with CaptureQueriesContext(connection) as captured:
        response = exchange(logged_in, web_app, code, secret=web_app.plaintext_secret)
    assert response.status_code == 400 and response.json()["error"] == "unauthorized_client", response.content
    version_reads = [q["sql"] for q in captured.captured_queries if "oidc_provider_configversion" in q["sql"]]
    assert len(version_reads) == 1


def test_a_userinfo_after_a_change_elsewhere_reads_the_version_once_and_the_application_afresh(logged_in, web_app):
    """The version may travel inside the token's SELECT; either way a change elsewhere drops
    the copy, and the token's application is read again, not taken from the old copy."""
    bearer = "Bearer " + exchange(logged_in, web_app, get_code(logged_in, web_app)["code"],
                                  secret=web_app.plaintext_secret).json()["access_token"]
    assert logged_in.get("/oidc/me", HTTP_AUTHORIZATION=bearer).status_code == 200
    _bump_version_as_another_process()
    with CaptureQueriesContext(connection) as captured:
        response = logged_in.get("/oidc/me", HTTP_AUTHORIZATION=bearer)
    assert response.status_code == 200 and response.json()["sub"]
    sql = [q["sql"] for q in captured.captured_queries]
    assert len([q for q in sql if "oidc_provider_configversion" in q]) == 1, sql
    tables = [q.split(" FROM ")[1].split()[0].strip('"`') for q in sql if " FROM " in q]
    assert Application._meta.db_table in tables, sql


# -- the authorization endpoint: a change elsewhere applies to the very next request ----------

SPA_URI = "https://spa.example.com/cb"


def _grants():
    from oauth2_provider.models import get_grant_model

    return get_grant_model().objects.count()


def _warm(logged_in, app):
    """Consent remembered and the application in this process's copy."""
    assert get_code(logged_in, app)["code"]


def test_a_response_type_forbidden_elsewhere_is_refused_although_the_copy_allowed_it(logged_in, web_app):
    """The copy allows the code flow, the database no longer does: refused, once (one audit
    event), with no code written."""
    _warm(logged_in, web_app)
    codes, refusals = _grants(), _grant_refusals()
    GrantPolicy.objects.filter(application_type=policy.WEB, grant=policy.AUTHORIZATION_CODE).update(state=policy.FORBIDDEN)
    _bump_version_as_another_process()
    response = authorize(logged_in, web_app)
    assert response.status_code == 302, response.content[:300]
    assert query_of(response)["error"] == "unsupported_response_type" and "code" not in query_of(response)
    assert _grants() == codes
    assert _grant_refusals() == refusals + 1


def test_a_response_type_allowed_elsewhere_is_issued_although_the_copy_forbade_it(logged_in, web_app):
    """The copy forbids the code flow, the database allows it again: a code, and no refusal
    recorded."""
    _warm(logged_in, web_app)
    GrantPolicy.objects.filter(application_type=policy.WEB, grant=policy.AUTHORIZATION_CODE).update(state=policy.FORBIDDEN)
    config_cache.changed()
    assert query_of(authorize(logged_in, web_app))["error"] == "unsupported_response_type"
    refusals = _grant_refusals()
    GrantPolicy.objects.filter(application_type=policy.WEB, grant=policy.AUTHORIZATION_CODE).update(state=policy.RECOMMENDED)
    _bump_version_as_another_process()
    response = authorize(logged_in, web_app)
    assert response.status_code == 302 and query_of(response)["code"], response.content[:300]
    assert _grant_refusals() == refusals


def test_an_application_deleted_elsewhere_gets_an_error_page_and_no_code(logged_in, web_app):
    _warm(logged_in, web_app)
    Application.objects.filter(pk=web_app.pk).delete()
    _bump_version_as_another_process()
    response = authorize(logged_in, web_app)
    assert response.status_code == 400 and b"client_id" in response.content, response.content[:300]
    assert _grants() == 0


def test_a_redirect_uri_removed_elsewhere_gets_an_error_page_and_no_code(logged_in, web_app):
    """Never a redirect to a URI the application no longer registers, whatever the copy says."""
    _warm(logged_in, web_app)
    old_uri, codes = web_app.redirect_uris.split()[0], _grants()
    Application.objects.filter(pk=web_app.pk).update(redirect_uris="https://moved.example.com/cb")
    _bump_version_as_another_process()
    response = authorize(logged_in, web_app, redirect_uri=old_uri)
    assert response.status_code == 400 and "Location" not in response, response.content[:300]
    assert _grants() == codes
    moved = authorize(logged_in, web_app, redirect_uri="https://moved.example.com/cb")
    assert moved.status_code == 302 and moved["Location"].startswith("https://moved.example.com/cb?") and query_of(moved)["code"]


def test_a_login_page_reads_the_version_and_nothing_else(client, logged_in, web_app):
    """The login page needs the client and redirect URI checked (against the version read),
    and nothing more."""
    _warm(logged_in, web_app)
    client.logout()
    with CaptureQueriesContext(connection) as captured:
        response = authorize(client, web_app)
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/"), response
    sent = [q["sql"] for q in captured.captured_queries]
    assert len(sent) == 1 and ConfigVersion._meta.db_table in sent[0], sent


def test_an_implicit_id_token_is_signed_with_the_key_activated_elsewhere(logged_in, db):
    """No ID token signed with a key the copy still thinks active."""
    app = ApplicationFactory(application_type=policy.SPA, redirect_uris=SPA_URI, grant_types=["authorization_code", "implicit"])
    keys.ensure_active_key()
    first = fragment_of(consent(logged_in, authorize(logged_in, app, response_type="id_token")))["id_token"]
    old_kid = jwt.get_unverified_header(first)["kid"]
    new_kid = SigningKey.objects.get(status=SigningKey.NEXT).kid
    SigningKey.objects.filter(kid=old_kid).update(status=SigningKey.INACTIVE)
    SigningKey.objects.filter(kid=new_kid).update(status=SigningKey.ACTIVE)
    _bump_version_as_another_process()
    response = authorize(logged_in, app, response_type="id_token")
    assert response.status_code == 302, response.content[:300]
    assert jwt.get_unverified_header(fragment_of(response)["id_token"])["kid"] == new_kid != old_kid


def test_a_redirect_uri_registered_elsewhere_works_at_the_first_try(logged_in, web_app):
    """The copy does not know the new URI; the database does: a code, at the first try."""
    _warm(logged_in, web_app)
    Application.objects.filter(pk=web_app.pk).update(redirect_uris=f"{web_app.redirect_uris} https://new.example.com/cb")
    _bump_version_as_another_process()
    response = authorize(logged_in, web_app, redirect_uri="https://new.example.com/cb")
    assert response.status_code == 302 and response["Location"].startswith("https://new.example.com/cb?"), response.content[:300]
    assert query_of(response)["code"]
