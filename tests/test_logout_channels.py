"""Login sessions and every logout channel: sid in ID tokens, back-channel logout tokens to a
receiving relying party that checks them with Authlib, front-channel frames, and every way a
session ends (RP-initiated logout, the provider's logout page, an admin, a password change).

Specs: OpenID Connect Back-Channel Logout 1.0, Front-Channel Logout 1.0, RP-Initiated Logout 1.0.
"""

import io
import json
import threading
import time
import warnings
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.test import Client
from django.utils import timezone
from oauth2_provider.models import get_grant_model, get_refresh_token_model

from console.models import AuditEvent
from oidc_provider import backchannel, keys, policy
from oidc_provider.models import LoginSession, LogoutNotice, SessionSignIn

from .factories import PASSWORD, ApplicationFactory, UserFactory
from .helpers import authorize, consent, exchange, fragment_of, get_code, set_policy, verify_id_token

with warnings.catch_warnings():  # authlib.jose announces its move to joserfc (Authlib 2)
    warnings.simplefilter("ignore", DeprecationWarning)
    from authlib.jose import JsonWebKey
    from authlib.jose import jwt as authlib_jwt

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

EVENT = "http://schemas.openid.net/event/backchannel-logout"


def _tokens(client, app, **params):
    code = get_code(client, app, **params)["code"]
    return exchange(client, app, code, secret=app.plaintext_secret).json()


def _userinfo_status(client, access_token):
    return client.get("/oidc/me", HTTP_AUTHORIZATION=f"Bearer {access_token}").status_code


class Receiver:
    """A relying party's back-channel logout endpoint on a loopback port. It checks each
    logout token as Back-Channel Logout 2.6 says, with Authlib (a library written by others):
    the signature by a key of the provider's JWKS, iss, aud, iat, the events member, sid, and
    no nonce. ``status`` is what it answers."""

    def __init__(self, jwks, issuer, audience, status=200):
        self.jwks, self.issuer, self.audience, self.status = jwks, issuer, audience, status
        self.received, self.headers, self.arrived = [], [], threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers["Content-Length"])
                form = parse_qs(self.rfile.read(length).decode())
                receiver.accept(form["logout_token"][0])
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.uri = f"http://127.0.0.1:{self.server.server_port}/backchannel-logout"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def accept(self, token):
        key_set = JsonWebKey.import_key_set(self.jwks)
        claims = authlib_jwt.decode(token, key_set, claims_options={
            "iss": {"essential": True, "value": self.issuer},
            "aud": {"essential": True, "value": self.audience},
            "iat": {"essential": True},
            "events": {"essential": True},
        })
        claims.validate(now=int(time.time()), leeway=5)
        self.headers.append(jwt.get_unverified_header(token))
        self.received.append(dict(claims))
        self.arrived.set()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver_for(transactional_db):
    receivers = []

    def make(app, status=200):
        client = Client()
        jwks = client.get("/oidc/.well-known/jwks.json").json()
        issuer = client.get("/oidc/.well-known/openid-configuration").json()["issuer"]
        receiver = Receiver(jwks, issuer, app.client_id, status)
        app.backchannel_logout_uri = receiver.uri
        app.save()
        receivers.append(receiver)
        return receiver

    yield make
    # Nothing left for this process's worker, which then stops before the tables are emptied.
    backchannel.wait_idle(30)
    LogoutNotice.objects.filter(delivered_at__isnull=True).update(given_up_at=timezone.now())
    backchannel.join(30)
    for receiver in receivers:
        receiver.close()


def _worker_done():
    """Wait until this process's delivery worker has sent everything and stopped."""
    backchannel.join(30)


def _member_of(role, username):
    """A staff user in one of the shipped roles (made again: a flushed database has none)."""
    call_command("console_roles", "sync", stdout=io.StringIO())
    user = get_user_model().objects.create(username=username, is_staff=True)
    user.groups.add(Group.objects.get(name=role))
    return user


@pytest.fixture
def signed_in(transactional_db):
    user = UserFactory()
    browser = Client()
    assert browser.post("/accounts/login/", {"username": user.username, "password": PASSWORD}).status_code == 302
    return user, browser


# -- sid -----------------------------------------------------------------------------------------


def test_every_id_token_of_a_login_carries_its_sid_and_a_new_login_gets_a_new_one(client, user, web_app):
    """Front-Channel Logout 3 / Back-Channel Logout 2.1: the sid claim names the login session;
    ID tokens from the code, from a refresh and from the implicit flow all carry it."""
    client.force_login(user)
    first = _tokens(client, web_app, scope="openid offline_access")
    sid = verify_id_token(client, first["id_token"], web_app.client_id)["sid"]
    assert sid == LoginSession.objects.get(user=user, ended_at__isnull=True).sid
    refreshed = client.post("/oidc/token", {
        "grant_type": "refresh_token", "refresh_token": first["refresh_token"],
        "client_id": web_app.client_id, "client_secret": web_app.plaintext_secret,
    }).json()
    assert verify_id_token(client, refreshed["id_token"], web_app.client_id)["sid"] == sid

    set_policy(policy.WEB, policy.IMPLICIT, policy.ALLOWED)
    implicit_app = ApplicationFactory(application_type=policy.WEB, grant_types=["implicit"])
    response = authorize(client, implicit_app, response_type="id_token token")
    if response.status_code == 200:
        response = consent(client, response)
    implicit = fragment_of(response)
    assert verify_id_token(client, implicit["id_token"], implicit_app.client_id)["sid"] == sid

    client.logout()
    client.force_login(user)
    again = _tokens(client, web_app)
    assert verify_id_token(client, again["id_token"], web_app.client_id)["sid"] != sid


def test_discovery_announces_both_logout_channels_with_sessions(client, db):
    """Back-Channel Logout 2.1 and Front-Channel Logout 3: the provider metadata says so."""
    meta = client.get("/oidc/.well-known/openid-configuration").json()
    for name in ("backchannel_logout_supported", "backchannel_logout_session_supported",
                 "frontchannel_logout_supported", "frontchannel_logout_session_supported"):
        assert meta[name] is True, name


# -- back-channel --------------------------------------------------------------------------------


def test_rp_initiated_logout_sends_each_signed_in_application_a_logout_token_and_revokes_its_tokens(
        signed_in, receiver_for):
    """Back-Channel Logout 2.4-2.7: a logout token (iss, aud, iat, exp, jti, sub, sid, the
    logout event, no nonce, typ logout+jwt) reaches every application the session signed
    into, from outside the request; their tokens from that session are revoked."""
    user, browser = signed_in
    app = ApplicationFactory(grant_types=["authorization_code", "refresh_token"])
    other = ApplicationFactory(grant_types=["authorization_code"])
    receiver, other_receiver = receiver_for(app), receiver_for(other)
    tokens = _tokens(browser, app)
    other_tokens = _tokens(browser, other)
    sid = verify_id_token(browser, tokens["id_token"], app.client_id)["sid"]

    response = browser.get("/oidc/session/end", {"id_token_hint": tokens["id_token"],
                                                 "post_logout_redirect_uri": "https://rp.example.com/logged-out"})
    assert response.status_code == 302

    _worker_done()
    assert receiver.arrived.is_set() and other_receiver.arrived.is_set()
    claims = receiver.received[0]
    assert claims["sid"] == sid and claims["sub"] == verify_id_token(browser, tokens["id_token"], app.client_id)["sub"]
    assert claims["events"] == {EVENT: {}} and "nonce" not in claims and claims["jti"]
    assert claims["exp"] > claims["iat"]
    assert receiver.headers[0]["typ"] == "logout+jwt"
    assert other_receiver.received[0]["aud"] == other.client_id
    assert _userinfo_status(browser, tokens["access_token"]) == 401
    assert _userinfo_status(browser, other_tokens["access_token"]) == 401
    assert not get_refresh_token_model().objects.filter(token_family__isnull=False, revoked__isnull=True).exists()
    assert AuditEvent.objects.filter(action="backchannel_logout.delivered").count() == 2
    ended = AuditEvent.objects.get(action="session.ended")
    assert ended.details["reason"] == "logout" and set(ended.details["applications"]) == {app.client_id, other.client_id}


def test_logging_out_on_the_providers_own_page_tells_the_applications_too(signed_in, receiver_for):
    """Back-Channel Logout 2.7: whatever ends the session at the OP sends the logout tokens."""
    user, browser = signed_in
    app = ApplicationFactory()
    receiver = receiver_for(app)
    tokens = _tokens(browser, app)
    assert browser.post("/accounts/logout/").status_code == 200
    _worker_done()
    assert receiver.arrived.is_set()
    assert receiver.received[0]["sid"] == verify_id_token(browser, tokens["id_token"], app.client_id)["sid"]


def test_an_application_the_session_never_signed_into_hears_nothing(signed_in, receiver_for):
    """Back-Channel Logout 2.7: only the RPs of that session are notified."""
    user, browser = signed_in
    app, bystander = ApplicationFactory(), ApplicationFactory()
    receiver_for(app)
    quiet = receiver_for(bystander)
    _tokens(browser, app)
    browser.post("/accounts/logout/")
    _worker_done()
    assert LogoutNotice.objects.filter(delivered_at__isnull=False).count() == 1
    assert not quiet.received
    assert not LogoutNotice.objects.filter(application=bystander).exists()


def test_a_failed_delivery_is_retried_with_back_off_and_audited(signed_in, receiver_for):
    """Back-Channel Logout 2.8: an RP that does not answer 200 has not logged out; the OP
    retries later, and each outcome lands in the audit log."""
    user, browser = signed_in
    app = ApplicationFactory()
    receiver = receiver_for(app, status=503)
    _tokens(browser, app)
    browser.post("/accounts/logout/")
    # The worker made its attempt and waits for the retry.
    assert backchannel.wait_idle(30)
    notice = LogoutNotice.objects.get()
    assert notice.attempts == 1 and notice.last_error == "HTTP 503"
    assert notice.delivered_at is None and notice.next_attempt_at > timezone.now() + timedelta(seconds=5)
    assert AuditEvent.objects.get(action="backchannel_logout.failed").details["answer"] == "HTTP 503"

    # Later, with the relying party back, cron's command delivers what is due.
    receiver.status = 200
    LogoutNotice.objects.update(next_attempt_at=timezone.now())
    out = io.StringIO()
    call_command("oidc_backchannel", "deliver", "--json", stdout=out)
    assert json.loads(out.getvalue()) == {"delivered": 1, "pending": 0}
    assert len(receiver.received) == 2 and receiver.received[0]["jti"] != receiver.received[1]["jti"]
    assert AuditEvent.objects.filter(action="backchannel_logout.delivered").count() == 1


def test_an_unreachable_relying_party_is_given_up_after_the_last_retry(signed_in, receiver_for):
    """Back-Channel Logout 2.8: retries are bounded; the last failure is recorded as given up."""
    user, browser = signed_in
    app = ApplicationFactory()
    receiver = receiver_for(app)
    receiver.close()  # nobody listens on that port any more
    _tokens(browser, app)
    browser.post("/accounts/logout/")
    assert backchannel.wait_idle(30)
    assert LogoutNotice.objects.get().attempts == 1
    for _ in backchannel.RETRY_DELAYS:
        LogoutNotice.objects.update(next_attempt_at=timezone.now())
        call_command("oidc_backchannel", "deliver", stdout=io.StringIO())
    notice = LogoutNotice.objects.get()
    assert notice.given_up_at is not None and notice.attempts == len(backchannel.RETRY_DELAYS) + 1
    assert AuditEvent.objects.filter(action="backchannel_logout.failed", details__given_up=True).count() == 1


def test_a_logout_token_is_not_an_id_token(signed_in, receiver_for):
    """Back-Channel Logout 2.4: a logout token has no nonce and is typed, so an RP's ID token
    check refuses it (it has no exp-bound nonce and a different typ)."""
    user, browser = signed_in
    app = ApplicationFactory()
    receiver = receiver_for(app)
    _tokens(browser, app)
    browser.post("/accounts/logout/")
    _worker_done()
    assert receiver.arrived.is_set()
    assert receiver.headers[0]["typ"] == "logout+jwt" and "nonce" not in receiver.received[0]


def test_a_session_ends_once_however_many_times_it_is_logged_out(signed_in, receiver_for):
    """Back-Channel Logout 2.7: one session, one logout token per application."""
    user, browser = signed_in
    app = ApplicationFactory()
    receiver_for(app)
    _tokens(browser, app)
    session = LoginSession.objects.get(user=user)
    browser.post("/accounts/logout/")
    _worker_done()
    from oidc_provider import sessions

    assert sessions.end(session, reason="logout") is None
    assert LogoutNotice.objects.count() == 1


# -- what a session's end revokes ------------------------------------------------------------------


def test_refresh_tokens_granted_for_offline_access_outlive_the_session(client, user, web_app):
    """OIDC Core 11: offline_access asks for access when the user is not logged in; logging
    out revokes the session's other tokens but not those."""
    client.force_login(user)
    offline = _tokens(client, web_app, scope="openid offline_access")
    online = _tokens(client, web_app, scope="openid")
    client.get("/oidc/session/end", {"client_id": web_app.client_id})  # asks to confirm: no hint
    client.post("/oidc/session/end", {"allow": "true", "client_id": web_app.client_id})
    refreshed = Client().post("/oidc/token", {
        "grant_type": "refresh_token", "refresh_token": offline["refresh_token"],
        "client_id": web_app.client_id, "client_secret": web_app.plaintext_secret,
    })
    assert refreshed.status_code == 200, refreshed.content
    gone = Client().post("/oidc/token", {
        "grant_type": "refresh_token", "refresh_token": online["refresh_token"],
        "client_id": web_app.client_id, "client_secret": web_app.plaintext_secret,
    })
    assert gone.status_code == 400 and gone.json()["error"] == "invalid_grant"


def test_a_code_not_yet_exchanged_dies_with_its_session(client, user, web_app):
    """RFC 6749 10.5 / Back-Channel Logout 2.7: nothing issued in an ended session stays usable."""
    client.force_login(user)
    code = get_code(client, web_app)["code"]
    client.post("/oidc/session/end", {"allow": "true"})
    assert not get_grant_model().objects.exists()
    response = exchange(Client(), web_app, code, secret=web_app.plaintext_secret)
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"


# -- front-channel ---------------------------------------------------------------------------------


def test_the_signed_out_page_frames_each_applications_front_channel_uri_with_iss_and_sid(client, user, db):
    """Front-Channel Logout 2 and 3: the OP renders an iframe per RP of the session, with iss
    and sid as query parameters (added to a registered query)."""
    app = ApplicationFactory(frontchannel_logout_uri="https://rp.example.com/fc?from=op")
    bystander = ApplicationFactory(frontchannel_logout_uri="https://other.example.com/fc")
    client.force_login(user)
    tokens = _tokens(client, app)
    sid = verify_id_token(client, tokens["id_token"], app.client_id)["sid"]
    page = client.post("/accounts/logout/").content.decode()
    issuer = client.get("/oidc/.well-known/openid-configuration").json()["issuer"]
    frames = [parse_qs(urlsplit(src).query) for src in _iframes(page)]
    assert frames == [{"from": ["op"], "iss": [issuer], "sid": [sid]}]
    assert bystander.frontchannel_logout_uri not in page


def test_rp_initiated_logout_with_front_channel_frames_moves_on_without_script(client, user, db):
    """Front-Channel Logout 3 with RP-Initiated Logout 3: the frames load on a page that then
    goes to the post-logout redirect URI with state, by a meta refresh and a link."""
    app = ApplicationFactory(frontchannel_logout_uri="https://rp.example.com/fc")
    client.force_login(user)
    tokens = _tokens(client, app)
    response = client.get("/oidc/session/end", {
        "id_token_hint": tokens["id_token"], "post_logout_redirect_uri": "https://rp.example.com/logged-out",
        "state": "bye",
    })
    assert response.status_code == 200
    page = response.content.decode()
    assert len(_iframes(page)) == 1
    assert 'http-equiv="refresh"' in page and "https://rp.example.com/logged-out?state=bye" in page
    assert "_auth_user_id" not in client.session


def test_the_page_that_moves_on_speaks_chinese(client, user, db):
    """The signed-out page with its frames, in the language the user reads."""
    app = ApplicationFactory(frontchannel_logout_uri="https://rp.example.com/fc")
    client.force_login(user)
    tokens = _tokens(client, app)
    page = client.get("/oidc/session/end", {
        "id_token_hint": tokens["id_token"], "post_logout_redirect_uri": "https://rp.example.com/logged-out",
    }, HTTP_ACCEPT_LANGUAGE="zh-Hans").content.decode()
    assert "继续前往应用" in page and 'title="正在退出应用"' in page


def test_a_logout_without_front_channel_applications_redirects_at_once(client, user, web_app):
    """RP-Initiated Logout 3: with nothing to frame, straight back to the relying party."""
    client.force_login(user)
    tokens = _tokens(client, web_app)
    response = client.get("/oidc/session/end", {
        "id_token_hint": tokens["id_token"], "post_logout_redirect_uri": "https://rp.example.com/logged-out"})
    assert response.status_code == 302


def _iframes(page):
    import re

    return [src.replace("&amp;", "&") for src in re.findall(r'<iframe[^>]* src="([^"]+)"', page)]


# -- other ways a session ends -----------------------------------------------------------------------


def test_logout_with_an_expired_id_token_hint_still_works(client, user, web_app, settings):
    """RP-Initiated Logout 2: the OP accepts an id_token_hint whose exp has passed, as a hint
    of who is logging out."""
    client.force_login(user)
    settings.OIDC_PROVIDER = {**getattr(settings, "OIDC_PROVIDER", {}), "ID_TOKEN_TTL": -60}
    tokens = _tokens(client, web_app)
    with pytest.raises(jwt.ExpiredSignatureError):
        verify_id_token(client, tokens["id_token"], web_app.client_id)
    response = client.get("/oidc/session/end", {
        "id_token_hint": tokens["id_token"], "post_logout_redirect_uri": "https://rp.example.com/logged-out"})
    assert response.status_code == 302
    assert response["Location"].startswith("https://rp.example.com/logged-out")
    assert "_auth_user_id" not in client.session


def test_an_admin_ends_a_users_sessions_from_the_console(signed_in, receiver_for):
    """An admin who may revoke tokens ends a user's session: the browser is signed out, the
    applications are told, the tokens revoked, and the audit log names the admin."""
    user, browser = signed_in
    app = ApplicationFactory()
    receiver = receiver_for(app)
    tokens = _tokens(browser, app)
    admin = _member_of("Application manager", "ops")
    console = Client()
    console.force_login(admin)
    session = LoginSession.objects.get(user=user)
    listed = console.get("/admin/oidc_provider/loginsession/", {"q": user.username})
    assert listed.status_code == 200 and app.name in listed.content.decode()
    response = console.post("/admin/oidc_provider/loginsession/", {
        "action": "end_sessions", "_selected_action": [session.pk], "index": "0"})
    assert response.status_code == 302
    _worker_done()
    assert receiver.arrived.is_set()
    assert _userinfo_status(browser, tokens["access_token"]) == 401
    assert "_auth_user_id" not in browser.session
    assert browser.get("/oidc/auth", {"client_id": app.client_id}).status_code in (302, 400)
    event = AuditEvent.objects.get(action="session.ended")
    assert event.actor == admin and event.details["reason"] == "ended_by_admin"


def test_an_auditor_sees_sessions_but_cannot_end_them(signed_in):
    """Least privilege: ending a session revokes tokens, which an auditor may not do."""
    user, browser = signed_in
    auditor = _member_of("Auditor", "watcher")
    console = Client()
    console.force_login(auditor)
    session = LoginSession.objects.get(user=user)
    assert console.get("/admin/oidc_provider/loginsession/").status_code == 200
    console.post("/admin/oidc_provider/loginsession/", {
        "action": "end_sessions", "_selected_action": [session.pk], "index": "0"})
    session.refresh_from_db()
    assert session.ended_at is None and "_auth_user_id" in browser.session


def test_a_password_change_ends_the_users_sessions_with_the_applications(signed_in, receiver_for):
    """A new password ends what was signed in with the old one: the applications are told and
    their tokens revoked; the next sign-in gets a new sid."""
    user, browser = signed_in
    app = ApplicationFactory()
    receiver = receiver_for(app)
    tokens = _tokens(browser, app)
    old_sid = verify_id_token(browser, tokens["id_token"], app.client_id)["sid"]
    user.set_password("a brand new passphrase")
    user.save()
    _worker_done()
    assert receiver.arrived.is_set()
    assert _userinfo_status(browser, tokens["access_token"]) == 401
    assert AuditEvent.objects.get(action="session.ended").details["reason"] == "password_changed"
    browser.post("/accounts/login/", {"username": user.username, "password": "a brand new passphrase"})
    again = _tokens(browser, app)
    assert verify_id_token(browser, again["id_token"], app.client_id)["sid"] != old_sid


def test_a_password_hash_upgrade_is_not_a_password_change(db, user):
    """Django re-hashes a password on login when the hasher changes: the sessions stay."""
    session = LoginSession.objects.create(user=user)
    user.check_password("wrong")  # no upgrade, no save
    user.set_password(PASSWORD)
    user._password = None  # what Django's upgrade path does before saving
    user.save(update_fields=["password"])
    session.refresh_from_db()
    assert session.ended_at is None


# -- registering the logout URIs -----------------------------------------------------------------------


@pytest.mark.parametrize("uri, message", [
    ("http://rp.example.com/bc", "http on a non-loopback host"),
    ("https://rp.example.com/bc#frag", "fragment"),
    ("ftp://rp.example.com/bc", "absolute https URL"),
    ("not a url", "absolute https URL"),
])
def test_a_logout_uri_must_be_https_without_a_fragment(db, uri, message):
    """Back-Channel Logout 2.2 and Front-Channel Logout 2: an absolute URL, no fragment; https
    (http only on loopback). The CLI refuses it and creates nothing."""
    from django.core.management.base import CommandError

    from oidc_provider.models import Application

    for option in ("--backchannel-logout-uri", "--frontchannel-logout-uri"):
        with pytest.raises(CommandError, match=message):
            call_command("oidc_app", "create", "--name", "RP", "--type", "web", "--redirect-uri",
                         "https://rp.example.com/cb", option, uri, stdout=io.StringIO())
    assert not Application.objects.exists()


def test_oidc_app_create_takes_both_logout_uris(db):
    """The CLI registers the logout URIs and prints them in its JSON."""
    out = io.StringIO()
    call_command("oidc_app", "create", "--name", "RP", "--type", "web", "--redirect-uri", "https://rp.example.com/cb",
                 "--backchannel-logout-uri", "https://rp.example.com/bc",
                 "--frontchannel-logout-uri", "https://rp.example.com/fc", "--json", stdout=out)
    data = json.loads(out.getvalue())
    assert data["backchannel_logout_uri"] == "https://rp.example.com/bc"
    assert data["frontchannel_logout_uri"] == "https://rp.example.com/fc"


def test_the_console_api_sets_and_checks_the_logout_uris(db):
    """The console API edits the logout URIs with the same rules as the CLI."""
    from rest_framework.test import APIClient

    admin = get_user_model().objects.create(username="root", is_staff=True, is_superuser=True)
    api = APIClient()
    api.force_authenticate(admin)
    body = {"name": "RP", "application_type": "web", "redirect_uris": ["https://rp.example.com/cb"],
            "backchannel_logout_uri": "https://rp.example.com/bc"}
    created = api.post("/console/api/applications/", body, format="json")
    assert created.status_code == 201, created.content
    assert created.json()["backchannel_logout_uri"] == "https://rp.example.com/bc"
    refused = api.post("/console/api/applications/", {**body, "frontchannel_logout_uri": "http://rp.example.com/fc"},
                       format="json")
    assert refused.status_code == 400 and "frontchannel_logout_uri" in refused.json()


def test_a_sign_in_is_recorded_per_application_of_the_session(client, user, web_app):
    """The session remembers which applications it signed into (and nothing for a refused one)."""
    client.force_login(user)
    _tokens(client, web_app)
    assert list(SessionSignIn.objects.values_list("application_id", flat=True)) == [web_app.pk]
    response = authorize(client, web_app, redirect_uri="https://evil.example/cb")
    assert response.status_code == 400
    assert SessionSignIn.objects.count() == 1


def test_the_browser_that_changed_the_password_signs_in_anew_with_a_new_sid(client, user, web_app):
    """A password change ends the login session also for the browser that made it, which
    Django keeps signed in (update_session_auth_hash): its next ID token names a new session,
    under which its new sign-ins are kept."""
    from django.contrib.auth import HASH_SESSION_KEY

    client.force_login(user)
    old_sid = verify_id_token(client, _tokens(client, web_app)["id_token"], web_app.client_id)["sid"]
    user.set_password("a brand new passphrase")
    user.save()
    session = client.session
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()  # what Django's password change view does
    session.save()
    new_sid = verify_id_token(client, _tokens(client, web_app)["id_token"], web_app.client_id)["sid"]
    assert new_sid != old_sid
    live = LoginSession.objects.get(user=user, ended_at__isnull=True)
    assert live.sid == new_sid and live.sign_ins.count() == 1


def test_a_password_grant_sign_in_is_a_login_session_with_a_sid_that_an_admin_can_end(client, user, db):
    """Every ID token carries sid, also the password grant's (no browser behind it); the
    session is ended like any other, and its refresh tokens with it."""
    from oidc_provider import sessions

    from .helpers import basic_auth

    app = ApplicationFactory(application_type=policy.WEB, grant_types=["password", "refresh_token"])
    auth = {"HTTP_AUTHORIZATION": basic_auth(app.client_id, app.plaintext_secret)}
    body = client.post("/oidc/token", {"grant_type": "password", "username": user.username, "password": PASSWORD,
                                       "scope": "openid"}, **auth).json()
    sid = verify_id_token(client, body["id_token"], app.client_id)["sid"]
    refreshed = client.post("/oidc/token", {"grant_type": "refresh_token", "refresh_token": body["refresh_token"]},
                            **auth).json()
    assert verify_id_token(client, refreshed["id_token"], app.client_id)["sid"] == sid
    session = LoginSession.objects.get(sid=sid)
    assert session.session_key == "" and sessions.sign_out(session, reason="ended_by_admin")
    again = client.post("/oidc/token", {"grant_type": "refresh_token", "refresh_token": refreshed["refresh_token"]},
                        **auth)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"


# -- found in review: each a way the above could be got around ----------------------------------------


def test_the_signed_out_page_lets_the_browser_load_exactly_the_front_channel_frames(client, user, db):
    """Front-Channel Logout 3: the page's Content-Security-Policy must allow the frames it
    shows (frame-src), and no other origin."""
    app = ApplicationFactory(frontchannel_logout_uri="https://rp.example.com/fc")
    client.force_login(user)
    _tokens(client, app)
    response = client.post("/accounts/logout/")
    policy_header = response["Content-Security-Policy"]
    assert "frame-src https://rp.example.com" in policy_header and "frame-ancestors 'none'" in policy_header
    client.force_login(user)
    tokens = _tokens(client, app)
    rp_initiated = client.get("/oidc/session/end", {
        "id_token_hint": tokens["id_token"], "post_logout_redirect_uri": "https://rp.example.com/logged-out"})
    assert "frame-src https://rp.example.com" in rp_initiated["Content-Security-Policy"]
    assert "frame-src" not in client.get("/accounts/login/")["Content-Security-Policy"]


def test_signing_in_again_as_the_same_user_keeps_the_session_and_logout_ends_all_of_it(client, user, web_app):
    """prompt=login or max_age sign the user in again: the same login session goes on (its
    sid unchanged), so one logout revokes what was issued before and after."""
    client.force_login(user)
    first = _tokens(client, web_app)
    client.force_login(user)  # signs in again in the same browser
    second = _tokens(client, web_app)
    sid = verify_id_token(client, first["id_token"], web_app.client_id)["sid"]
    assert verify_id_token(client, second["id_token"], web_app.client_id)["sid"] == sid
    client.post("/oidc/session/end", {"allow": "true"})
    assert _userinfo_status(client, first["access_token"]) == 401
    assert _userinfo_status(client, second["access_token"]) == 401


def test_another_user_signing_in_on_the_browser_ends_the_session_that_was_there(client, user, web_app):
    """Django signs the first user out without a logout signal; their session still ends,
    with what it issued."""
    client.force_login(user)
    tokens = _tokens(client, web_app)
    other = UserFactory()
    assert client.post("/accounts/login/", {"username": other.username, "password": PASSWORD}).status_code == 302
    assert LoginSession.objects.get(user=user).ended_at is not None
    assert _userinfo_status(client, tokens["access_token"]) == 401


def test_an_id_token_of_another_session_does_not_log_out_unasked(client, user, web_app):
    """RP-Initiated Logout 2: the OP MUST ask when the ID token is not of the current session,
    so an old ID token sent from any site cannot sign the user out and revoke their tokens."""
    client.force_login(user)
    old = _tokens(client, web_app)
    client.post("/oidc/session/end", {"allow": "true"})
    client.force_login(user)
    current = _tokens(client, web_app)
    response = client.get("/oidc/session/end", {
        "id_token_hint": old["id_token"], "post_logout_redirect_uri": "https://rp.example.com/logged-out"})
    assert response.status_code == 200 and b'name="allow"' in response.content
    assert "_auth_user_id" in client.session
    assert _userinfo_status(client, current["access_token"]) == 200


def test_a_relying_party_answering_garbage_is_a_failed_attempt_not_a_stuck_notice(signed_in):
    """Back-Channel Logout 2.8: whatever the RP answers, the attempt is recorded and retries
    stay bounded; an application whose URI was removed is given up at once."""
    import socket as sockets

    user, browser = signed_in
    listener = sockets.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(5)

    def answer_garbage():
        for _ in range(len(backchannel.RETRY_DELAYS) + 1):
            try:
                conn, _addr = listener.accept()
            except OSError:
                return
            conn.recv(65536)
            conn.sendall(b"HELLO\r\n\r\n")
            conn.close()

    threading.Thread(target=answer_garbage, daemon=True).start()
    app = ApplicationFactory(backchannel_logout_uri=f"http://127.0.0.1:{listener.getsockname()[1]}/bc")
    _tokens(browser, app)
    browser.post("/accounts/logout/")
    assert backchannel.wait_idle(30)
    # A notice left for an application whose URI an admin has since removed.
    gone = ApplicationFactory()
    LogoutNotice.objects.create(application=gone, sid="s", subject="u", next_attempt_at=timezone.now())
    for _ in backchannel.RETRY_DELAYS:
        LogoutNotice.objects.filter(given_up_at__isnull=True).update(next_attempt_at=timezone.now())
        call_command("oidc_backchannel", "deliver", stdout=io.StringIO())
    listener.close()
    garbage = LogoutNotice.objects.get(application=app)
    assert garbage.given_up_at is not None and garbage.attempts == len(backchannel.RETRY_DELAYS) + 1
    assert "BadStatusLine" in garbage.last_error or "HTTP" in garbage.last_error
    removed = LogoutNotice.objects.get(application=gone)
    assert removed.given_up_at is not None and removed.attempts == 1
    backchannel.join(30)
