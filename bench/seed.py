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

``grow`` adds millions of live and expired tokens beside them (run.py --growth, cleanup.py).
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


# -- growth ------------------------------------------------------------------------------
#
# run.py --growth and bench/cleanup.py: the provider's tables as a deployment that has run
# for a while has them. Written with INSERT ... SELECT over generate_series (PostgreSQL only),
# a chunk of rows per transaction, so 10 million rows take minutes, not the hours the ORM
# would; the product's indexes and constraints stay as they are and are maintained row by row.

# Shares of n, per kind of row (they add up to 1). A "family" is what a login with a refresh
# token leaves after one rotation: the rotated (revoked) refresh token, the live one, and its
# access token, minted from the rotated one (source_refresh_token); every other family's
# access token also has an ID token.
GROWTH_SHARES = {"families": 0.2, "cc_access_tokens": 0.2, "grants": 0.05, "redeemed_codes": 0.05}
GROWTH_CHUNK = 250_000  # families (or rows) per transaction
USERS_PER_ROW = 1 / 50  # filler users: about 50 rows each, as many users with a few sessions


def _series_sql(connection, sql, total, params, chunk=GROWTH_CHUNK):
    """Run ``sql`` (with %(lo)s / %(hi)s bounds of generate_series) over [0, total) in chunks."""
    from django.db import transaction

    for lo in range(0, total, chunk):
        with transaction.atomic(), connection.cursor() as cur:
            cur.execute("SET LOCAL synchronous_commit = off")
            cur.execute(sql, {**params, "lo": lo, "hi": min(lo + chunk, total) - 1})


def grow(params):
    """Add about ``n`` token rows beside the normal seed, ``expired`` of them (a fraction)
    past what ``cleartokens`` keeps, the rest live; then VACUUM ANALYZE.

    Rows belong to the site's own applications (``web`` for user tokens, codes and refresh
    tokens; ``service`` for client-credentials tokens) and to filler users made here (a
    few dozen rows each), so the joins the provider runs meet real rows. Token values are
    sha256 digests of ``<tag>-<kind>-<i>`` in ``token_checksum`` (the site keeps only
    digests), unlike any the scenarios walk. Expired rows are interleaved with live ones
    (by ``i``), as time leaves them, so a batch of a clean-up meets both.
    """
    import time

    from django.contrib.auth import get_user_model
    from django.db import connection, transaction
    from oauth2_provider.models import get_access_token_model, get_grant_model, get_id_token_model, get_refresh_token_model
    from oidc_provider.models import Application, RedeemedCode

    if connection.vendor != "postgresql":
        raise RuntimeError("growth seeding needs PostgreSQL (generate_series)")
    n, tag = int(params["n"]), params["tag"]
    expired_pct = round(100 * float(params.get("expired", 0.5)))
    families = int(n * GROWTH_SHARES["families"])
    cc = int(n * GROWTH_SHARES["cc_access_tokens"])
    grants = int(n * GROWTH_SHARES["grants"])
    redeemed = int(n * GROWTH_SHARES["redeemed_codes"])
    User = get_user_model()
    AT, RT, IDT, Grant = get_access_token_model(), get_refresh_token_model(), get_id_token_model(), get_grant_model()
    web = Application.objects.get(client_id=params["web_client_id"])
    service = Application.objects.get(client_id=params["service_client_id"])
    started = time.monotonic()
    timings = {}

    def step(name, sql, total, **extra):
        t0 = time.monotonic()
        _series_sql(connection, sql, total, {"tag": tag, "pct": expired_pct, **extra})
        timings[name] = round(time.monotonic() - t0, 1)

    def next_id(model):
        with connection.cursor() as cur:
            cur.execute(f"SELECT COALESCE(MAX(id), 0) + 1 FROM {model._meta.db_table}")
            return cur.fetchone()[0]

    # Filler users, ids contiguous from u0 (one statement, one session).
    users = max(1, int(n * USERS_PER_ROW))
    u0 = next_id(User)
    step("users", f"""
        INSERT INTO {User._meta.db_table} (id, password, is_superuser, username, first_name, last_name, email,
                                           is_staff, is_active, date_joined)
        SELECT %(u0)s + i, '!', false, %(tag)s || '-user-' || i, '', '', '', false, true, now() - interval '400 days'
        FROM generate_series(%(lo)s::bigint, %(hi)s::bigint) AS i""", users, u0=u0)
    # An expired row: i %% 100 < pct. Its timestamps are older than every lifetime cleartokens
    # keeps (refresh idle 30 days), so one pass of cleartokens removes it and what hangs off it.
    expired = "(i %% 100 < %(pct)s::int)"
    user_of = "%(u0)s::int + (i %% %(users)s::int)"
    rt0, at0, id0, grant0, redeemed0 = next_id(RT), next_id(AT), next_id(IDT), next_id(Grant), next_id(RedeemedCode)
    ids = {"u0": u0, "users": users, "rt0": rt0, "at0": at0, "id0": id0, "web": web.pk, "service": service.pk,
           "families": families, "scope": SCOPE}
    # ID tokens: every other family's (i even).
    step("id_tokens", f"""
        INSERT INTO {IDT._meta.db_table} (id, jti, expires, scope, created, updated, application_id, user_id)
        SELECT %(id0)s + i, md5(%(tag)s || '-jti-' || i)::uuid,
               CASE WHEN {expired} THEN now() - interval '40 days' ELSE now() + interval '1 hour' END,
               %(scope)s, now() - interval '1 day', now() - interval '1 day', %(web)s, {user_of}
        FROM generate_series(%(lo)s::bigint, %(hi)s::bigint) AS i WHERE i %% 2 = 0""", families, **ids)
    # Refresh tokens first: family i's rotated one (id rt0 + 2i, access token gone) ...
    step("refresh_tokens_rotated", f"""
        INSERT INTO {RT._meta.db_table} (id, token, token_checksum, access_token_id, application_id, user_id, created,
                                         updated, revoked, token_family, resource)
        SELECT %(rt0)s + 2 * i, '', encode(sha256(convert_to(%(tag)s || '-rt0-' || i, 'UTF8')), 'hex'), NULL, %(web)s,
               {user_of}, now() - interval '2 days', now() - interval '1 day',
               CASE WHEN {expired} THEN now() - interval '40 days' ELSE now() - interval '1 day' END,
               md5(%(tag)s || '-family-' || i)::uuid, '[]'::jsonb
        FROM generate_series(%(lo)s::bigint, %(hi)s::bigint) AS i""", families, **ids)
    # ... then its access token (id at0 + i), minted from the rotated one ...
    step("access_tokens_user", f"""
        INSERT INTO {AT._meta.db_table} (id, token, token_checksum, expires, scope, application_id, user_id, created,
                                         updated, source_refresh_token_id, id_token_id, resource)
        SELECT %(at0)s + i, '', encode(sha256(convert_to(%(tag)s || '-at-' || i, 'UTF8')), 'hex'),
               CASE WHEN {expired} THEN now() - interval '40 days' ELSE now() + interval '1 hour' END,
               %(scope)s, %(web)s, {user_of}, now() - interval '1 day', now() - interval '1 day',
               %(rt0)s + 2 * i, CASE WHEN i %% 2 = 0 THEN %(id0)s + i END, '[]'::jsonb
        FROM generate_series(%(lo)s::bigint, %(hi)s::bigint) AS i""", families, **ids)
    # ... and the family's live refresh token (id rt0 + 2i + 1) on it.
    step("refresh_tokens_live", f"""
        INSERT INTO {RT._meta.db_table} (id, token, token_checksum, access_token_id, application_id, user_id, created,
                                         updated, revoked, token_family, resource)
        SELECT %(rt0)s + 2 * i + 1, '', encode(sha256(convert_to(%(tag)s || '-rt1-' || i, 'UTF8')), 'hex'),
               %(at0)s + i, %(web)s, {user_of}, now() - interval '1 day', now() - interval '1 day', NULL,
               md5(%(tag)s || '-family-' || i)::uuid, '[]'::jsonb
        FROM generate_series(%(lo)s::bigint, %(hi)s::bigint) AS i""", families, **ids)
    # Client-credentials access tokens: the service application, no user, no refresh token.
    step("access_tokens_cc", f"""
        INSERT INTO {AT._meta.db_table} (id, token, token_checksum, expires, scope, application_id, user_id, created,
                                         updated, resource)
        SELECT %(at0)s + %(families)s + i, '', encode(sha256(convert_to(%(tag)s || '-cc-' || i, 'UTF8')), 'hex'),
               CASE WHEN {expired} THEN now() - interval '40 days' ELSE now() + interval '1 hour' END,
               'read', %(service)s, NULL, now() - interval '1 hour', now() - interval '1 hour', '[]'::jsonb
        FROM generate_series(%(lo)s::bigint, %(hi)s::bigint) AS i""", cc, **ids)
    step("grants", f"""
        INSERT INTO {Grant._meta.db_table} (code, expires, redirect_uri, scope, application_id, user_id, created, updated,
                                            code_challenge, code_challenge_method, nonce, claims, resource)
        SELECT encode(sha256(convert_to(%(tag)s || '-code-' || i, 'UTF8')), 'hex'),
               CASE WHEN {expired} THEN now() - interval '1 day' ELSE now() + interval '10 minutes' END,
               %(redirect_uri)s, %(scope)s, %(web)s, {user_of}, now(), now(), %(challenge)s, 'S256', '', '', '[]'::jsonb
        FROM generate_series(%(lo)s::bigint, %(hi)s::bigint) AS i""", grants, redirect_uri=params["redirect_uri"], challenge=CHALLENGE, **ids)
    # A live record is one redeemed less than a code's lifetime (60 s) ago: dated ahead, so
    # that it is still live when a clean-up starts minutes after the seeding.
    step("redeemed_codes", f"""
        INSERT INTO {RedeemedCode._meta.db_table} (code_digest, access_token_id, token_family, redeemed_at, application_id)
        SELECT encode(sha256(convert_to(%(tag)s || '-redeemed-' || i, 'UTF8')), 'hex'), %(at0)s + i, NULL,
               CASE WHEN {expired} THEN now() - interval '1 day' ELSE now() + interval '1 day' END, %(web)s
        FROM generate_series(%(lo)s::bigint, %(hi)s::bigint) AS i""", redeemed, **ids)
    tables = [User, IDT, RT, AT, Grant, RedeemedCode]
    t0 = time.monotonic()
    with connection.cursor() as cur:
        for model in tables:  # the explicit ids above bypassed the identity sequences
            table = model._meta.db_table
            cur.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT MAX(id) FROM {table}))")
        cur.execute("SET maintenance_work_mem = '512MB'")
        for model in tables:
            cur.execute(f"VACUUM ANALYZE {model._meta.db_table}")
        # Write the load's dirty pages out now, not during the first measurements (needs
        # superuser or pg_checkpoint; without, the first round pays for them).
        try:
            with transaction.atomic():
                cur.execute("CHECKPOINT")
        except Exception:
            pass
    timings["vacuum_analyze_checkpoint"] = round(time.monotonic() - t0, 1)
    rows = 2 * families + families // 2 + (families % 2) + families + cc + grants + redeemed
    # The ids of the rows made here, per table: what a clean-up removed of them is counted
    # there (bench/cleanup.py), apart from the rows the load adds and rotates meanwhile.
    ranges = {model._meta.db_table: [first, next_id(model) - 1]
              for model, first in ((IDT, id0), (RT, rt0), (AT, at0), (Grant, grant0), (RedeemedCode, redeemed0))}
    return {"rows": rows, "users": users, "ranges": ranges, "expired_pct": expired_pct,
            "seconds": round(time.monotonic() - started, 1), "timings": timings}
