"""Brute force, counted right: limits shared by every worker, failed client authentication
throttled and audited, unknown ids indistinguishable from wrong secrets, the client's address
behind trusted proxies, and introspection for authenticated confidential clients only."""

import base64
import json
import re
from io import StringIO
from unittest import mock

import pytest
import requests
from axes.models import AccessAttempt
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from console.models import AuditEvent
from oidc_provider import policy, secrets
from tests.factories import PASSWORD, ApplicationFactory, UserFactory
from tests.helpers import basic_auth, exchange, get_code
from tests.live import HTTP_TIMEOUT, LiveProvider

# -- helpers ------------------------------------------------------------------------------------


@pytest.fixture
def provider_settings(settings):
    """Change OIDC_PROVIDER keys for one test (the rest of the site's dict kept)."""

    def apply(**values):
        settings.OIDC_PROVIDER = {**settings.OIDC_PROVIDER, **values}

    return apply


@pytest.fixture
def service_app(db):
    return ApplicationFactory(application_type=policy.SERVICE, redirect_uris="", post_logout_redirect_uris="")


def _cc(client, client_id, secret, ip="10.1.0.1", **extra):
    return client.post(
        "/oidc/token", {"grant_type": "client_credentials", "scope": "read"},
        HTTP_AUTHORIZATION=basic_auth(client_id, secret), REMOTE_ADDR=ip, **extra,
    )


def _access_key(account="etl"):
    out = StringIO()
    call_command("accesskey", "create", "--account", account, "--scope", "read", "--json", stdout=out)
    return json.loads(out.getvalue())


def _assert_throttled(response):
    assert response.status_code == 429
    assert response.json()["error"] == "invalid_client"
    assert response["Cache-Control"] == "no-store"
    retry_after = int(response["Retry-After"])
    assert 0 < retry_after <= 15 * 60
    return retry_after


# -- failed client authentication, throttled per address and per client ----------------------


def test_wrong_secrets_from_one_address_are_throttled_with_retry_after(client, service_app, provider_settings):
    """More than CLIENT_AUTH_FAILURES_PER_IP failed client authentications from one address
    within the window: 429 with Retry-After, the right secret included; others go on."""
    provider_settings(CLIENT_AUTH_FAILURES_PER_IP=3, CLIENT_AUTH_FAILURES_PER_CLIENT=0)
    for _ in range(3):
        response = _cc(client, service_app.client_id, "wrong", ip="10.1.0.2")
        assert response.status_code == 401 and response.json()["error"] == "invalid_client"
    _assert_throttled(_cc(client, service_app.client_id, "wrong", ip="10.1.0.2"))
    _assert_throttled(_cc(client, service_app.client_id, service_app.plaintext_secret, ip="10.1.0.2"))
    assert _cc(client, service_app.client_id, service_app.plaintext_secret, ip="10.1.0.3").status_code == 200


def test_the_default_limit_per_address_is_100_failures(client, service_app):
    """Like the login throttle: more than 100 failures from one address within 15 minutes;
    the 101st is answered 429 and starts the block."""
    for n in range(100):
        assert _cc(client, f"unknown-{n}", "wrong", ip="10.1.0.4").status_code == 401
    _assert_throttled(_cc(client, "unknown-100", "wrong", ip="10.1.0.4"))
    _assert_throttled(_cc(client, service_app.client_id, service_app.plaintext_secret, ip="10.1.0.4"))


def test_failures_for_one_client_from_many_addresses_throttle_that_client(client, service_app, provider_settings):
    """Guessing one client's secret from many addresses is limited per client too."""
    provider_settings(CLIENT_AUTH_FAILURES_PER_IP=1000, CLIENT_AUTH_FAILURES_PER_CLIENT=3)
    for n in range(3):
        assert _cc(client, service_app.client_id, "wrong", ip=f"10.2.0.{n}").status_code == 401
    _assert_throttled(_cc(client, service_app.client_id, "wrong", ip="10.2.0.9"))
    _assert_throttled(_cc(client, service_app.client_id, service_app.plaintext_secret, ip="10.2.0.10"))
    other = ApplicationFactory(application_type=policy.SERVICE, redirect_uris="", post_logout_redirect_uris="")
    assert _cc(client, other.client_id, other.plaintext_secret, ip="10.2.0.10").status_code == 200


def test_wrong_sks_throttle_the_access_key(client, db, provider_settings):
    """An AK/SK pair is a client: wrong SKs count against the AK and the address."""
    provider_settings(CLIENT_AUTH_FAILURES_PER_IP=1000, CLIENT_AUTH_FAILURES_PER_CLIENT=2)
    pair = _access_key()
    for n in range(2):
        assert _cc(client, pair["access_key"], "wrong", ip=f"10.3.0.{n}").status_code == 401
    _assert_throttled(_cc(client, pair["access_key"], "wrong", ip="10.3.0.8"))
    _assert_throttled(_cc(client, pair["access_key"], pair["secret_key"], ip="10.3.0.9"))


def test_unknown_clients_count_toward_the_address_limit(client, service_app, provider_settings):
    """Enumerating client_ids or AKs fails like guessing secrets does."""
    provider_settings(CLIENT_AUTH_FAILURES_PER_IP=2, CLIENT_AUTH_FAILURES_PER_CLIENT=0)
    assert _cc(client, "no-such-client", "x", ip="10.4.0.1").status_code == 401
    assert _cc(client, "AK000000000000000000000000", "x", ip="10.4.0.1").status_code == 401
    _assert_throttled(_cc(client, "another", "x", ip="10.4.0.1"))


def test_public_clients_naming_unknown_client_ids_are_throttled(client, spa_app, provider_settings):
    """A refresh or code exchange that names a client_id without a secret: an unknown one is
    a failure, counted like a wrong secret."""
    provider_settings(CLIENT_AUTH_FAILURES_PER_IP=2, CLIENT_AUTH_FAILURES_PER_CLIENT=0)
    for _ in range(2):
        response = client.post("/oidc/token", {"grant_type": "refresh_token", "refresh_token": "x", "client_id": "nobody"},
                               REMOTE_ADDR="10.4.1.1")
        assert response.status_code == 401
    _assert_throttled(client.post("/oidc/token", {"grant_type": "refresh_token", "refresh_token": "x", "client_id": "nobody"},
                                  REMOTE_ADDR="10.4.1.1"))
    response = client.post("/oidc/token", {"grant_type": "refresh_token", "refresh_token": "x", "client_id": spa_app.client_id},
                           REMOTE_ADDR="10.4.1.1")
    _assert_throttled(response)


def test_introspection_and_revocation_failures_are_throttled(client, web_app, provider_settings):
    provider_settings(CLIENT_AUTH_FAILURES_PER_IP=2, CLIENT_AUTH_FAILURES_PER_CLIENT=0)
    wrong = basic_auth(web_app.client_id, "wrong")
    assert client.post("/oidc/token/introspection", {"token": "t"}, HTTP_AUTHORIZATION=wrong, REMOTE_ADDR="10.5.0.1").status_code == 401
    assert client.post("/oidc/token/revocation", {"token": "t"}, HTTP_AUTHORIZATION=wrong, REMOTE_ADDR="10.5.0.1").status_code == 401
    _assert_throttled(client.post("/oidc/token/revocation", {"token": "t"}, HTTP_AUTHORIZATION=wrong, REMOTE_ADDR="10.5.0.1"))
    right = basic_auth(web_app.client_id, web_app.plaintext_secret)
    _assert_throttled(client.post("/oidc/token/introspection", {"token": "t"}, HTTP_AUTHORIZATION=right, REMOTE_ADDR="10.5.0.1"))
    _assert_throttled(client.post("/oidc/token/revocation", {"token": "t"}, HTTP_AUTHORIZATION=right, REMOTE_ADDR="10.5.0.1"))
    assert client.post("/oidc/token/introspection", {"token": "t"}, HTTP_AUTHORIZATION=right, REMOTE_ADDR="10.5.0.2").json() == {"active": False}


def test_failed_and_throttled_client_authentications_are_audited(client, service_app, provider_settings):
    """Every failure and every refusal for too many is in the audit log, with the address and
    the client_id presented, never the secret."""
    provider_settings(CLIENT_AUTH_FAILURES_PER_IP=1, CLIENT_AUTH_FAILURES_PER_CLIENT=0)
    _cc(client, service_app.client_id, "guess-one", ip="10.6.0.1")
    _cc(client, service_app.client_id, "guess-two", ip="10.6.0.1")
    _cc(client, service_app.client_id, "guess-three", ip="10.6.0.1")
    failed = AuditEvent.objects.filter(action="client_auth.failed")
    throttled = AuditEvent.objects.filter(action="client_auth.throttled")
    assert failed.count() == 1 and throttled.count() == 2
    for event in [*failed, *throttled]:
        assert (event.actor_label, event.ip_address) == (service_app.client_id, "10.6.0.1")
        assert event.details["path"] == "/oidc/token"
    assert "guess" not in str(list(AuditEvent.objects.values_list("details", flat=True)))


def test_a_success_does_not_count_and_leaves_the_limit_untouched(client, service_app, provider_settings):
    provider_settings(CLIENT_AUTH_FAILURES_PER_IP=2, CLIENT_AUTH_FAILURES_PER_CLIENT=2)
    for _ in range(5):
        assert _cc(client, service_app.client_id, service_app.plaintext_secret, ip="10.7.0.1").status_code == 200
    assert not AuditEvent.objects.filter(action__startswith="client_auth.").exists()
    assert _cc(client, service_app.client_id, "wrong", ip="10.7.0.1").status_code == 401


# -- an unknown id costs what a wrong secret costs ---------------------------------------------


def _cost(client, client_id, secret, ip):
    """(digests computed, SQL statements run) by one token request. The refusal records'
    pruning, due once a minute whoever asks, is left out."""
    with mock.patch.object(secrets, "digest", wraps=secrets.digest) as digest, CaptureQueriesContext(connection) as queries, \
            mock.patch("console.refusals._prune_due", return_value=False):
        response = _cc(client, client_id, secret, ip=ip)
    assert response.status_code == 401
    # A value or NULL is the same statement (the refusal record names the application or none);
    # PostgreSQL's rendering writes a literal with a non-ASCII character as E'...'.
    return digest.call_count, [" ".join(re.sub(r"(?:\bE)?'[^']*'|\d+|\bNULL\b", "?", q["sql"]).split())
                               for q in queries.captured_queries]


def test_an_unknown_client_id_costs_what_a_known_one_with_a_wrong_secret_costs(client, service_app):
    """Timing must not tell which client_ids exist: the same digests and the same statements
    (the known client is in the per-process copy, as it is for a busy client)."""
    assert _cc(client, service_app.client_id, service_app.plaintext_secret, ip="10.8.0.1").status_code == 200
    known = _cost(client, service_app.client_id, "wrong-secret", ip="10.8.0.2")
    unknown = _cost(client, "x" * len(service_app.client_id), "wrong-secret", ip="10.8.0.3")
    assert known[0] == unknown[0] == 1
    assert known[1] == unknown[1]


def test_an_unknown_ak_costs_what_a_known_ak_with_a_wrong_sk_costs(client, db):
    """Timing must not tell which AKs exist (an attacker could then aim at real accounts)."""
    pair = _access_key()
    assert _cc(client, pair["access_key"], pair["secret_key"], ip="10.8.1.1").status_code == 200
    known = _cost(client, pair["access_key"], "wrong-secret", ip="10.8.1.2")
    unknown = _cost(client, "AK" + "0" * 24, "wrong-secret", ip="10.8.1.3")
    assert known[0] == unknown[0]
    assert known[1] == unknown[1]


# -- introspection needs a confidential client's secret -----------------------------------------


def test_a_public_client_naming_itself_cannot_introspect(client, logged_in, web_app, spa_app):
    """RFC 7662 §2.1: the endpoint must know who asks; a public client's client_id proves
    nothing, and would otherwise learn the username and sub behind any token."""
    code = get_code(logged_in, web_app, scope="openid profile")["code"]
    token = exchange(logged_in, web_app, code, secret=web_app.plaintext_secret).json()["access_token"]
    response = client.post("/oidc/token/introspection", {"token": token, "client_id": spa_app.client_id})
    assert response.status_code == 401 and response.json()["error"] == "invalid_client"
    assert "username" not in response.content.decode()


def test_introspection_without_any_client_is_401(client, db):
    response = client.post("/oidc/token/introspection", {"token": "anything"})
    assert response.status_code == 401 and response.json()["error"] == "invalid_client"


def test_a_public_client_with_a_secret_still_cannot_introspect(client, db):
    """Whatever secret a public application may hold, it is not a confidential client."""
    native = ApplicationFactory(application_type=policy.NATIVE, redirect_uris="com.example.app:/cb")
    native.client_secret = secrets.digest("a-secret")
    native.save()
    response = client.post("/oidc/token/introspection", {"token": "t"}, HTTP_AUTHORIZATION=basic_auth(native.client_id, "a-secret"))
    assert response.status_code == 401 and response.json()["error"] == "invalid_client"


# -- the client's address, behind trusted proxies -----------------------------------------------


def _login(client, username, password, remote, forwarded=None):
    extra = {"HTTP_X_FORWARDED_FOR": forwarded} if forwarded is not None else {}
    return client.post("/accounts/login/", {"username": username, "password": password}, REMOTE_ADDR=remote, **extra)


def test_an_untrusted_peers_x_forwarded_for_is_ignored(client, user, provider_settings):
    """Anyone can write X-Forwarded-For: from a peer that is not a trusted proxy, the peer's
    own address is the client's (axes, the audit log and the throttle alike)."""
    provider_settings(TRUSTED_PROXIES="10.9.0.1")
    _login(client, user.username, "wrong", remote="192.0.2.50", forwarded="198.51.100.1")
    assert AccessAttempt.objects.get(username=user.username).ip_address == "192.0.2.50"
    assert AuditEvent.objects.get(action="login.failed").ip_address == "192.0.2.50"


def test_without_trusted_proxies_x_forwarded_for_is_ignored(client, user):
    _login(client, user.username, "wrong", remote="192.0.2.51", forwarded="198.51.100.1")
    assert AccessAttempt.objects.get(username=user.username).ip_address == "192.0.2.51"


def test_a_trusted_proxys_x_forwarded_for_names_the_client(client, user, provider_settings):
    """The right-most address that is not a trusted proxy is the client: what the client
    itself wrote further left is not believed."""
    provider_settings(TRUSTED_PROXIES="10.9.0.0/24, 172.16.0.5")
    _login(client, user.username, "wrong", remote="10.9.0.1", forwarded="6.6.6.6, 198.51.100.7, 172.16.0.5")
    assert AccessAttempt.objects.get(username=user.username).ip_address == "198.51.100.7"
    assert AuditEvent.objects.get(action="login.failed").ip_address == "198.51.100.7"


def test_behind_a_trusted_proxy_one_attacker_does_not_throttle_everyone(client, db, provider_settings):
    """The login throttle counts each client behind the proxy by its own address."""
    provider_settings(TRUSTED_PROXIES="10.9.0.1")
    user = UserFactory()
    for n in range(101):
        _login(client, f"nobody{n}", "wrong", remote="10.9.0.1", forwarded="198.51.100.66")
    assert _login(client, user.username, PASSWORD, remote="10.9.0.1", forwarded="198.51.100.66").status_code == 429
    assert _login(client, user.username, PASSWORD, remote="10.9.0.1", forwarded="198.51.100.67").status_code == 302


def test_the_client_authentication_throttle_believes_only_trusted_proxies(client, service_app, provider_settings):
    provider_settings(TRUSTED_PROXIES="10.9.0.1", CLIENT_AUTH_FAILURES_PER_IP=1, CLIENT_AUTH_FAILURES_PER_CLIENT=0)
    # A spoofed header from an untrusted peer: counted against the peer.
    _cc(client, service_app.client_id, "wrong", ip="192.0.2.9", HTTP_X_FORWARDED_FOR="198.51.100.1")
    _cc(client, service_app.client_id, "wrong", ip="192.0.2.9", HTTP_X_FORWARDED_FOR="198.51.100.2")
    _assert_throttled(_cc(client, service_app.client_id, service_app.plaintext_secret, ip="192.0.2.9",
                          HTTP_X_FORWARDED_FOR="198.51.100.3"))
    # Through the trusted proxy: each client by its own address.
    _cc(client, service_app.client_id, "wrong", ip="10.9.0.1", HTTP_X_FORWARDED_FOR="198.51.100.4")
    _cc(client, service_app.client_id, "wrong", ip="10.9.0.1", HTTP_X_FORWARDED_FOR="198.51.100.4")
    _assert_throttled(_cc(client, service_app.client_id, service_app.plaintext_secret, ip="10.9.0.1",
                          HTTP_X_FORWARDED_FOR="198.51.100.4"))
    ok = _cc(client, service_app.client_id, service_app.plaintext_secret, ip="10.9.0.1", HTTP_X_FORWARDED_FOR="198.51.100.5")
    assert ok.status_code == 200


def test_a_malformed_trusted_proxies_setting_fails_the_system_check(provider_settings):
    provider_settings(TRUSTED_PROXIES="10.0.0.1, proxy.internal")
    with pytest.raises(SystemCheckError, match="proxy.internal"):
        call_command("check")


# -- the store must be shared by every worker ------------------------------------------------


def test_a_per_process_throttle_cache_is_warned_about_in_production(settings, provider_settings):
    settings.CACHES = {**settings.CACHES, "local": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    settings.DEBUG = False
    provider_settings(THROTTLE_CACHE="local")
    out = StringIO()
    call_command("check", stdout=out, stderr=out)
    assert "oidc_provider.W005" in out.getvalue()


def test_a_per_process_throttle_cache_is_accepted_while_debugging(settings, provider_settings):
    settings.CACHES = {**settings.CACHES, "local": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    settings.DEBUG = True
    provider_settings(THROTTLE_CACHE="local")
    out = StringIO()
    call_command("check", stdout=out, stderr=out)
    assert "W005" not in out.getvalue()


def test_the_default_store_the_database_raises_no_warning(settings):
    settings.DEBUG = False
    out = StringIO()
    call_command("check", stdout=out, stderr=out)
    assert "W005" not in out.getvalue()


def test_a_throttle_cache_missing_from_caches_fails_the_system_check(provider_settings):
    provider_settings(THROTTLE_CACHE="nowhere")
    with pytest.raises(SystemCheckError, match="nowhere"):
        call_command("check")


def test_a_shared_cache_counts_like_the_database(client, service_app, settings, provider_settings):
    """With THROTTLE_CACHE (Redis in production) the limits hold the same way."""
    settings.CACHES = {**settings.CACHES, "shared": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "t"}}
    provider_settings(THROTTLE_CACHE="shared", CLIENT_AUTH_FAILURES_PER_IP=2, CLIENT_AUTH_FAILURES_PER_CLIENT=0)
    try:
        for _ in range(2):
            assert _cc(client, service_app.client_id, "wrong", ip="10.10.0.1").status_code == 401
        _assert_throttled(_cc(client, service_app.client_id, "wrong", ip="10.10.0.1"))
        _assert_throttled(_cc(client, service_app.client_id, service_app.plaintext_secret, ip="10.10.0.1"))
        for n in range(101):
            _login(client, f"nobody{n}", "wrong", remote="10.10.0.2")
        assert _login(client, "nobody", "wrong", remote="10.10.0.2").status_code == 429
    finally:
        from django.core.cache import caches

        caches["shared"].clear()


@pytest.fixture(scope="module")
def two_workers():
    """gunicorn with 2 workers, one thread each, behind a "proxy" at 127.0.0.1 (so each test
    can be its own client address), on its own database."""
    server = LiveProvider(workers=2, threads=1)
    server.env["OIDC_TRUSTED_PROXIES"] = "127.0.0.1"
    try:
        server.start()
    except Exception:
        server.stop()
        raise
    yield server
    server.stop()


def _csrf(session, url):
    page = session.get(url, timeout=HTTP_TIMEOUT)
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)


def test_failed_logins_are_counted_once_per_deployment_not_per_worker(two_workers):
    """More than 100 failures in 15 minutes from one address -> 429, across workers: with a
    per-process store two workers let 202 through."""
    url = two_workers.url("/accounts/login/")
    headers = {"X-Forwarded-For": "203.0.113.7"}
    with requests.Session() as browser:
        token = _csrf(browser, url)
        statuses = [
            browser.post(url, data={"csrfmiddlewaretoken": token, "username": f"nobody{n}", "password": "wrong"},
                         headers=headers, timeout=HTTP_TIMEOUT).status_code
            for n in range(101)
        ]
        assert statuses == [200] * 101
        for n in range(4):  # whichever worker answers
            response = browser.post(url, data={"csrfmiddlewaretoken": token, "username": f"more{n}", "password": "wrong"},
                                    headers=headers, timeout=HTTP_TIMEOUT)
            assert response.status_code == 429
        # Another client behind the same proxy is not throttled.
        other = browser.post(url, data={"csrfmiddlewaretoken": token, "username": "someone", "password": "wrong"},
                             headers={"X-Forwarded-For": "203.0.113.8"}, timeout=HTTP_TIMEOUT)
        assert other.status_code == 200


def test_a_client_authentication_block_reaches_every_worker(two_workers):
    """Once an address is blocked, no worker accepts even the right secret from it."""
    app = two_workers.create_app("Throttled", "service", grants=["client_credentials"])
    token_url = two_workers.url("/oidc/token")
    data = {"grant_type": "client_credentials", "scope": "read"}

    def post(secret, address):
        return requests.post(token_url, data=data, auth=(app["client_id"], secret),
                             headers={"X-Forwarded-For": address}, timeout=HTTP_TIMEOUT)

    for _ in range(4):  # both workers know the application and its (empty) blocks
        assert post(app["client_secret"], "203.0.113.20").status_code == 200
    assert [post("wrong", "203.0.113.21").status_code for _ in range(100)] == [401] * 100
    assert post("wrong", "203.0.113.21").status_code == 429
    for _ in range(4):
        response = post(app["client_secret"], "203.0.113.21")
        assert response.status_code == 429 and int(response.headers["Retry-After"]) > 0
    assert post(app["client_secret"], "203.0.113.22").status_code == 200


def test_a_client_id_no_client_can_have_is_a_counted_failure_not_an_error(client, db, provider_settings):
    """Basic credentials may decode to anything (NUL bytes, control characters, 10,000
    characters): 401 and a readable audit entry, never a 500."""
    provider_settings(CLIENT_AUTH_FAILURES_PER_IP=1000)
    for client_id in ("\x00" * 40, "id\x01with\x1bcontrols", "x" * 10_000):
        header = "Basic " + base64.b64encode(f"{client_id}:secret".encode()).decode()
        response = client.post("/oidc/token", {"grant_type": "client_credentials"}, HTTP_AUTHORIZATION=header)
        assert response.status_code == 401 and response.json()["error"] == "invalid_client"
    labels = list(AuditEvent.objects.filter(action="client_auth.failed").values_list("actor_label", flat=True))
    assert len(labels) == 3 and all(label.isprintable() for label in labels)
