"""Login sessions as relying parties see them (OIDC Front-Channel and Back-Channel Logout 1.0).

A user's login at the provider is a LoginSession: its ``sid`` goes into every ID token issued
in it, and each application it signs into is a SessionSignIn. When the session ends (logout
here or at a relying party, an admin ending it, a password change), every application it
signed into is told (a logout token by back-channel, an iframe on the signed-out page by
front-channel) and what was issued to it in that session is revoked, except refresh tokens
granted for offline_access, which exist to outlive it (OIDC Core 11).
"""

from importlib import import_module
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth import HASH_SESSION_KEY
from django.db import transaction
from django.utils import timezone
from oauth2_provider.models import get_access_token_model, get_grant_model

from . import backchannel, signals
from .conf import oidc_settings
from .models import LoginSession, SessionSignIn
from .store import store

# In the Django session: [the LoginSession's pk, its sid, the session's auth hash when it began].
SESSION_KEY = "oidc_login_session"
# Set on the request whose logout ended a session: the applications to show front-channel frames for.
ENDED = "oidc_ended_session"


def start(sender, request, user, **kwargs):
    """user_logged_in receiver. Signing in again as the same user (prompt=login, max_age)
    goes on with the same login session, under the Django session's new key; a different
    user signing in on the browser ends the session that was there (Django has already
    flushed its data without a logout, so it is found by the key the browser came with)."""
    if request is None or not hasattr(request, "session"):
        return
    previous = _previous(request)
    if previous is not None and previous.user_id == user.pk:
        if request.session.session_key is None:
            request.session.save()
        LoginSession.objects.filter(pk=previous.pk).update(session_key=request.session.session_key)
        request.session[SESSION_KEY] = [previous.pk, previous.sid, request.session.get(HASH_SESSION_KEY, "")]
        return
    if previous is not None:
        end(previous, reason="logout")
    _begin(request, user)


def _previous(request):
    """The live login session this browser was in before this login, or None."""
    kept = request.session.get(SESSION_KEY)
    if isinstance(kept, list) and kept:
        found = LoginSession.objects.filter(pk=kept[0], ended_at__isnull=True).first()
        if found is not None:
            return found
    key = request.COOKIES.get(settings.SESSION_COOKIE_NAME)
    if not key or key == request.session.session_key:
        return None
    return LoginSession.objects.filter(session_key=key, ended_at__isnull=True).first()


def _begin(request, user):
    if request.session.session_key is None:
        request.session.save()
    session = LoginSession.objects.create(user=user, session_key=request.session.session_key)
    request.session[SESSION_KEY] = [session.pk, session.sid, request.session.get(HASH_SESSION_KEY, "")]
    return session


def current(request):
    """The live login session of this request's signed-in user, named by its Django session
    (no query). A login session ends only with its Django session (a logout flushes it, an
    admin deletes it) or with a password change, which gives the Django session a new auth
    hash: a login session begun under another hash has ended, and a new one begins."""
    kept = request.session.get(SESSION_KEY)
    if isinstance(kept, list) and len(kept) == 3 and kept[2] == request.session.get(HASH_SESSION_KEY, ""):
        return LoginSession(pk=kept[0], sid=kept[1], user=request.user)
    return _begin(request, request.user)


def begin_without_browser(user):
    """A login session for a sign-in with no browser behind it (the password grant): its ID
    tokens carry a sid too, and an admin or a password change ends it like any other."""
    return LoginSession.objects.create(user=user)


def is_current(request, sid):
    """Is ``sid`` the login session this request's browser is signed in with?"""
    kept = request.session.get(SESSION_KEY)
    return bool(sid) and isinstance(kept, list) and len(kept) == 3 and kept[1] == sid


def record_sign_in(session, application, *, code_digest="", token_family=None, access_token_id=None, offline=False):
    SessionSignIn.objects.create(
        session=session, application=application, code_digest=code_digest, token_family=token_family,
        access_token_id=access_token_id, offline=offline,
    )


def end(session, *, reason, actor=None):
    """End a login session: revoke what was issued in it and tell the applications it signed
    into. Returns those applications, or None when it had already ended."""
    with transaction.atomic():
        if not LoginSession.objects.filter(pk=session.pk, ended_at__isnull=True).update(ended_at=timezone.now()):
            return None
        sign_ins = list(SessionSignIn.objects.filter(session=session).select_related("application"))
        for sign_in in sign_ins:
            _revoke(sign_in)
        applications = list({s.application_id: s.application for s in sign_ins}.values())
        for application in applications:
            if application.backchannel_logout_uri:
                backchannel.queue(application, session)
    signals.session_ended.send(sender=LoginSession, session=session, applications=applications, reason=reason, actor=actor)
    return applications


def _revoke(sign_in):
    if sign_in.code_digest:
        # A code not yet exchanged dies with the session; one exchanged takes its tokens along.
        get_grant_model().objects.filter(code=sign_in.code_digest).delete()
        if not sign_in.offline:
            store.revoke_redeemed_code(sign_in.code_digest, sign_in.token_family, sign_in.application)
    elif sign_in.token_family is not None and not sign_in.offline:
        store.revoke_family(sign_in.token_family)  # a password grant's refresh tokens
    if sign_in.access_token_id is not None:
        get_access_token_model().objects.filter(pk=sign_in.access_token_id).delete()


def on_logout(sender, request, user, **kwargs):
    """user_logged_out receiver: logging out anywhere here ends the session it was."""
    kept = request.session.get(SESSION_KEY) if request is not None and hasattr(request, "session") else None
    session = LoginSession.objects.filter(pk=kept[0]).first() if isinstance(kept, list) and kept else None
    if session is not None:
        setattr(request, ENDED, (session, end(session, reason="logout") or []))


def sign_out(session, *, reason, actor=None):
    """End a login session from outside it (an admin): its browser is signed out too.
    Returns whether it was live."""
    if session.session_key:
        import_module(settings.SESSION_ENGINE).SessionStore(session_key=session.session_key).delete()
    return end(session, reason=reason, actor=actor) is not None


def end_all(user, *, reason, actor=None):
    """End every live login session of a user, leaving the browsers signed in to the
    provider (Django's own checks sign out the others after a password change)."""
    for session in LoginSession.objects.filter(user=user, ended_at__isnull=True):
        end(session, reason=reason, actor=actor)


def on_user_saved(sender, instance, created, **kwargs):
    """post_save receiver of the user model: a new password ends the user's sessions with
    the relying parties (Django itself signs out the other browsers lazily, and keeps the
    one that changed it)."""
    if not created and getattr(instance, "_password", None) is not None:
        end_all(instance, reason="password_changed")


def frontchannel_frames(request):
    """The front-channel logout URLs (with iss and sid) of the session this request's logout
    ended, for the signed-out page to load in hidden frames (Front-Channel Logout 3)."""
    session, applications = getattr(request, ENDED, (None, []))
    query = urlencode({"iss": oidc_settings.issuer, "sid": session.sid}) if session else ""
    return [
        a.frontchannel_logout_uri + ("&" if "?" in a.frontchannel_logout_uri else "?") + query
        for a in applications if a.frontchannel_logout_uri
    ]
