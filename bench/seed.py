"""Rows the benchmark needs, written straight into a site's database.

Run inside the site's Django (``manage.py shell -c``, see ``benchlib.manage_shell``), so the
same code seeds our provider and the plain django-oauth-toolkit baseline: both use DOT's Grant, AccessToken and RefreshToken models.

What it makes, all with known values so a load generator can walk through them:

* ``codes`` authorization codes ``<code_prefix><i:08d>`` (``0 <= i < codes``), each with the
  same PKCE S256 challenge (of ``VERIFIER``), valid for hours (the real TTL is 60 s; a
  benchmark cannot mint 20,000 codes a second through the front channel first);
* ``refresh`` refresh tokens ``<refresh_prefix><i:08d>``, each with its own access token and
  its own token family, as a login would have left them;
* a long-lived access token for userinfo and one for introspection;
* ``sessions`` logged-in sessions of the user (session keys), for the login round trip.
"""

import base64
import hashlib
import secrets
import uuid
from datetime import timedelta

VERIFIER = "bench-pkce-verifier-" + "0123456789abcdefghijklmnopqrstuvwxyz"  # 56 chars, RFC 7636 §4.1
CHALLENGE = base64.urlsafe_b64encode(hashlib.sha256(VERIFIER.encode()).digest()).rstrip(b"=").decode()
SCOPE = "openid profile email"
BATCH = 5000


def _checksum(token):
    return hashlib.sha256(token.encode()).hexdigest()


def tokens(application, user, *, codes=0, refresh=0, code_prefix, refresh_prefix, redirect_uri, sessions=0,
           stored_code=str):
    """Seed codes, refresh tokens, two bearer tokens and sessions for ``application``/``user``.

    ``stored_code(code)``: what the site's Grant row keeps of a code. Tokens are kept as the
    site's DOT settings say (``set_token_value``: the token, or only its checksum).
    """
    from django.db import transaction
    from django.utils import timezone
    from oauth2_provider.models import get_access_token_model, get_grant_model, get_refresh_token_model, set_token_value

    def token_row(model, value, **fields):
        row = model(token_checksum=_checksum(value), **fields)
        set_token_value(row, value)
        return row

    Grant, AccessToken, RefreshToken = get_grant_model(), get_access_token_model(), get_refresh_token_model()
    now = timezone.now()
    valid_until = now + timedelta(hours=12)
    result = {}

    with transaction.atomic():
        for start in range(0, codes, BATCH):
            Grant.objects.bulk_create(
                [
                    Grant(
                        user=user, application=application, code=stored_code(f"{code_prefix}{i:08d}"), expires=valid_until,
                        redirect_uri=redirect_uri, scope=SCOPE, code_challenge=CHALLENGE,
                        code_challenge_method="S256", nonce="", claims="",
                    )
                    for i in range(start, min(start + BATCH, codes))
                ],
                batch_size=BATCH,
            )
    access_prefix = "at-" + secrets.token_hex(6) + "-"
    with transaction.atomic():
        for start in range(0, refresh, BATCH):
            stop = min(start + BATCH, refresh)
            ats = AccessToken.objects.bulk_create(
                [
                    token_row(AccessToken, f"{access_prefix}{i:08d}", user=user, application=application,
                              expires=valid_until, scope=SCOPE)
                    for i in range(start, stop)
                ],
                batch_size=BATCH,
            )
            RefreshToken.objects.bulk_create(
                [
                    token_row(RefreshToken, f"{refresh_prefix}{i:08d}", user=user, application=application,
                              access_token=at, token_family=uuid.uuid4())
                    for i, at in zip(range(start, stop), ats)
                ],
                batch_size=BATCH,
            )
    for name in ("userinfo_token", "introspect_token"):
        value = secrets.token_urlsafe(30)
        token_row(AccessToken, value, user=user, application=application, expires=now + timedelta(days=1),
                  scope=SCOPE).save()
        result[name] = value
    result["sessions"] = [login_session(user) for _ in range(sessions)]
    result.update(verifier=VERIFIER, challenge=CHALLENGE, scope=SCOPE, redirect_uri=redirect_uri,
                  code_prefix=code_prefix, refresh_prefix=refresh_prefix, codes=codes, refresh=refresh)
    return result


def login_session(user):
    """The key of a new session in which ``user`` is logged in, as django.contrib.auth.login leaves it.

    Built by hand rather than through login(), whose signal receivers (django-axes) expect
    a real request.
    """
    import time

    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.utils.module_loading import import_string

    store = import_string(settings.SESSION_ENGINE + ".SessionStore")()
    store[SESSION_KEY] = user._meta.pk.value_to_string(user)
    store[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    store[HASH_SESSION_KEY] = user.get_session_auth_hash()
    store["oidc_auth_time"] = int(time.time())  # what our provider records at login; DOT ignores it
    store.save()
    return store.session_key


def ours(params):
    """Our provider: the applications, access key and user exist already (made by manage.py
    commands); add the rows to walk through."""
    from django.contrib.auth import get_user_model
    from oauth2_provider.settings import oauth2_settings
    from oidc_provider.models import Application

    user = get_user_model().objects.get(username=params["username"])
    web = Application.objects.get(client_id=params["web_client_id"])
    # The provider began keeping codes as their sha256 when it began keeping tokens so: a
    # revision (run as --against) keeps both as digests, or both as they are.
    stored_code = _checksum if oauth2_settings.COMPLIANT_BCP_RFC9700_TOKEN_STORAGE else str
    return tokens(web, user, codes=params["codes"], refresh=params["refresh"], code_prefix=params["code_prefix"],
                  refresh_prefix=params["refresh_prefix"], redirect_uri=params["redirect_uri"],
                  sessions=params["sessions"], stored_code=stored_code)


def dot(params):
    """The plain django-oauth-toolkit baseline: user, stock applications, and the rows to walk."""
    from django.contrib.auth import get_user_model
    from oauth2_provider.models import get_application_model

    Application = get_application_model()
    user = get_user_model().objects.create_user(params["username"], "bench@example.com", params["password"])
    apps = {}
    # (label, grant type, hashed secret?) -- hash_client_secret=True is DOT's default.
    for label, grant, hashed in (
        ("cc_hashed", Application.GRANT_CLIENT_CREDENTIALS, True),
        ("cc_plain", Application.GRANT_CLIENT_CREDENTIALS, False),
        ("code_plain", Application.GRANT_AUTHORIZATION_CODE, False),
    ):
        secret = secrets.token_urlsafe(32)
        app = Application(
            name=f"bench {label}", client_type=Application.CLIENT_CONFIDENTIAL, authorization_grant_type=grant,
            client_secret=secret, hash_client_secret=hashed, redirect_uris=params["redirect_uri"],
            algorithm=Application.RS256_ALGORITHM, skip_authorization=True,
        )
        app.save()
        apps[label] = {"client_id": app.client_id, "client_secret": secret}
    code_app = Application.objects.get(client_id=apps["code_plain"]["client_id"])
    result = tokens(code_app, user, codes=params["codes"], refresh=params["refresh"],
                    code_prefix=params["code_prefix"], refresh_prefix=params["refresh_prefix"],
                    redirect_uri=params["redirect_uri"], sessions=params["sessions"])
    result["apps"] = apps
    return result
