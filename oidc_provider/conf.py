"""The provider's one settings object.

A site configures the provider with one dict, ``OIDC_PROVIDER``; everything else reads
``oidc_settings.NAME``. django-oauth-toolkit's own dict is derived from ours by
:func:`dot_settings`, so the two can never disagree.
"""

from django.conf import settings
from django.core.signals import setting_changed
from django.utils.translation import gettext_lazy as _

DEFAULTS = {
    # The issuer exactly as it appears in `iss` (no trailing slash).
    "ISSUER": None,
    # Lifetimes, in seconds.
    "AUTHORIZATION_CODE_TTL": 60,
    "ACCESS_TOKEN_TTL": 3600,
    "ID_TOKEN_TTL": 3600,
    # A refresh token dies after this long unused (sliding, renewed by each rotation)...
    "REFRESH_TOKEN_IDLE_TTL": 30 * 24 * 3600,
    # ...and its whole family this long after the login that started it, used or not.
    "REFRESH_TOKEN_MAX_TTL": 90 * 24 * 3600,
    # Key for the digests of client secrets (and AK/SK secrets). Defaults to one derived
    # from SECRET_KEY; set it explicitly to rotate SECRET_KEY without re-issuing secrets.
    "SECRET_DIGEST_KEY": None,
    # Keys that encrypt the signing keys' private PEMs at rest (Fernet keys, as made by
    # cryptography's Fernet.generate_key()): a list, or one comma-separated string. The first
    # encrypts, every one decrypts, so a rotation is: put the new key first, run
    # `manage.py oidc_keys reencrypt`, then drop the old one. None: a key derived from
    # SECRET_KEY (changing SECRET_KEY would then lock the signing keys away; set this instead).
    "KEY_ENCRYPTION_KEYS": None,
    # Resource scopes offered beside the OIDC ones: name -> description shown on consent.
    "RESOURCE_SCOPES": {"read": _("Read your data"), "write": _("Change your data")},
    # "opaque": a random `sub` per user, kept in the Subject table; "pk": the user's database id.
    "SUBJECT_TYPE": "opaque",
    # Dotted path of a callable(user) -> dict of OIDC standard claims.
    "USER_CLAIMS": "oidc_provider.claims.default_user_claims",
    # How long a process may serve its copy of the JWKS without asking the database whether
    # the keys changed, while the copy announces the next key (keys.jwks_json). 0: every request asks.
    "JWKS_CACHE_SECONDS": 2,
    # Where codes and tokens are read and written (oidc_provider.store): "orm" on any
    # database, "fast" (prepared statements) on PostgreSQL and SQLite. None: fast where it can run.
    "STORE": None,
    # On PostgreSQL, an access token issued with no other write (client credentials, AK/SK,
    # a password or implicit token without a refresh token) is answered before its commit
    # reaches the disk (synchronous_commit off for that one statement). A crash of the
    # database can then lose the last ~0.6 s of such tokens: they stop working and their
    # clients ask again, which is safe. Redeemed codes, rotations and revocations always
    # wait for the disk. False: every token waits too.
    "ASYNC_COMMIT_LONE_ACCESS_TOKENS": True,
    # On PostgreSQL, an authorization code's row is likewise answered before its commit
    # reaches the disk. A crash of the database can lose the last ~0.6 s of codes: their
    # exchange fails (invalid_grant) and the user signs in again. Single use does not rest on
    # it: the exchange's DELETE always waits for the disk. False: codes wait too.
    "ASYNC_COMMIT_AUTHORIZATION_CODES": True,
    # Reverse proxies (addresses or networks, a list or a comma-separated string) whose
    # X-Forwarded-For is believed for the client's address; anyone else's is ignored. Empty:
    # the client is REMOTE_ADDR. Without it behind a proxy, every user has the proxy's
    # address, and one attacker's failures throttle everyone.
    "TRUSTED_PROXIES": (),
    # Where failures are counted: None, the database (shared by every worker and server); or
    # the alias of a cache in CACHES that every worker shares (Redis), never a per-process one.
    "THROTTLE_CACHE": None,
    # Failed client authentications (wrong client_secret or SK, unknown client) at the token,
    # introspection and revocation endpoints: more than this many in CLIENT_AUTH_WINDOW
    # seconds from one address, or for one client_id from anywhere, and that address or
    # client is answered 429 (with Retry-After) for CLIENT_AUTH_WINDOW seconds, right secrets
    # included. The per-client limit is higher because anyone who knows a client_id can spend
    # it; 0 turns a limit off.
    "CLIENT_AUTH_FAILURES_PER_IP": 100,
    "CLIENT_AUTH_FAILURES_PER_CLIENT": 1000,
    "CLIENT_AUTH_WINDOW": 15 * 60,
    # Dynamic client registration (RFC 7591, 7592) at /oidc/register, for holders of an
    # initial access token an admin issued; off: the endpoint answers 404 and discovery omits it.
    "DYNAMIC_REGISTRATION": False,
    # How long an initial access token lasts unless its issuer says otherwise (seconds).
    "REGISTRATION_TOKEN_TTL": 24 * 3600,
    # Who may read /metrics (Prometheus): addresses or networks (a list or a comma-separated
    # string), and/or a token sent as "Authorization: Bearer <token>". Neither: nobody (404).
    "METRICS_ALLOWED_NETWORKS": (),
    "METRICS_TOKEN": None,
    # Where no cron runs ``manage.py cleartokens``: delete expired tokens and codes every this
    # many seconds in the server's own processes (one process of all the nodes runs each
    # clean-up). None: only the command does.
    "CLEAR_EXPIRED_EVERY": None,
    # Hosted pages' branding.
    "SITE_NAME": "Identity",
    "LOGO_URL": "",
    "PRIMARY_COLOR": "#2554c7",
}


class OIDCSettings:
    def __init__(self):
        self._cache = {}

    @property
    def user_settings(self):
        return getattr(settings, "OIDC_PROVIDER", {})

    def __getattr__(self, name):
        if name.startswith("_") or name not in DEFAULTS:
            raise AttributeError(f"Unknown OIDC_PROVIDER setting: {name}")
        if name not in self._cache:
            self._cache[name] = self.user_settings.get(name, DEFAULTS[name])
        return self._cache[name]

    def reload(self):
        self._cache.clear()

    @property
    def issuer(self):
        return (self.ISSUER or "").rstrip("/")


oidc_settings = OIDCSettings()


def _reload(*, setting, **kwargs):
    if setting == "OIDC_PROVIDER":
        oidc_settings.reload()


setting_changed.connect(_reload)


def dot_settings(**overrides):
    """The ``OAUTH2_PROVIDER`` dict that makes django-oauth-toolkit behave as this provider.

    Called from the site's settings module; ``overrides`` win over our choices.
    """
    user = {}
    try:
        user = dict(getattr(settings, "OIDC_PROVIDER", {}))
    except Exception:  # settings not configured yet: called while they are being built
        pass
    ttl = {k: user.get(k, DEFAULTS[k]) for k in DEFAULTS if k.endswith("_TTL")}
    values = {
        "OIDC_ENABLED": True,
        "OAUTH2_VALIDATOR_CLASS": "oidc_provider.validators.OIDCValidator",
        "OAUTH2_SERVER_CLASS": "oidc_provider.server.Server",
        "OAUTH2_BACKEND_CLASS": "oidc_provider.oauth2_backend.OAuthLibCore",
        "SCOPES_BACKEND_CLASS": "oidc_provider.scopes.ProviderScopes",
        # Scopes are answered by our backend; DOT only needs the names to exist.
        "SCOPES": {"openid": "OpenID Connect"},
        "DEFAULT_SCOPES": ["openid"],
        "AUTHORIZATION_CODE_EXPIRE_SECONDS": ttl["AUTHORIZATION_CODE_TTL"],
        "ACCESS_TOKEN_EXPIRE_SECONDS": ttl["ACCESS_TOKEN_TTL"],
        "ID_TOKEN_EXPIRE_SECONDS": ttl["ID_TOKEN_TTL"],
        "REFRESH_TOKEN_EXPIRE_SECONDS": ttl["REFRESH_TOKEN_IDLE_TTL"],
        # Also the refresh tokens' generator (oauthlib falls back to it).
        "ACCESS_TOKEN_GENERATOR": "oidc_provider.secrets.generate_token",
        "ROTATE_REFRESH_TOKEN": True,
        "REFRESH_TOKEN_REUSE_PROTECTION": True,
        # cleartokens' window of keys (oidc_provider.cleanup): small enough that each commit's
        # burst of WAL and CPU does not hold up the token requests served meanwhile.
        "CLEAR_EXPIRED_TOKENS_BATCH_SIZE": 2000,
        # Access and refresh tokens are kept only as their sha256 (``token_checksum``), the
        # ``token`` column left blank: a copy of the database holds no usable bearer token.
        "COMPLIANT_BCP_RFC9700_TOKEN_STORAGE": True,
        # PKCE: required per application type (validators.is_pkce_required); never plain.
        "PKCE_REQUIRED": False,
        "COMPLIANT_BCP_RFC9700_PKCE_METHOD": True,
        # RFC 9700 4.3.2: an access token in a URL ends up in logs and Referer headers.
        "COMPLIANT_BCP_RFC9700_ACCESS_TOKEN_TRANSPORT": True,
        # RFC 9207: `iss` in every authorization response, against mix-up attacks; it must be
        # the issuer discovery publishes, not one guessed from the request's host.
        "COMPLIANT_BCP_RFC9700_AUTHZ_RESPONSE_ISS": True,
        "OIDC_ISS_ENDPOINT": (user.get("ISSUER") or "").rstrip("/") or None,
        "OIDC_RP_INITIATED_LOGOUT_ENABLED": True,
        # Ask only when the spec says to (no valid id_token_hint for the logged-in user).
        "OIDC_RP_INITIATED_LOGOUT_ALWAYS_PROMPT": False,
        # Logout revokes the logging-out application's tokens only (views/logout.py).
        "OIDC_RP_INITIATED_LOGOUT_DELETE_TOKENS": False,
        "ALLOWED_REDIRECT_URI_SCHEMES": ["http", "https"],
        "REQUEST_APPROVAL_PROMPT": "auto",
        "ERROR_RESPONSE_WITH_SCOPES": False,
    }
    values.update(overrides)
    return values
