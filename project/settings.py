"""Settings for our own deployment of oidc_provider + console, driven by the environment.

Every variable is listed under "Configuration" in README.md; defaults make a fresh clone run
as is.
"""

import base64
import os
import secrets
from datetime import timedelta
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("DJANGO_DATA_DIR", BASE_DIR / "var")).resolve()
DATA_DIR.mkdir(parents=True, exist_ok=True)


def _env_bool(name, default=False):
    return os.environ.get(name, "1" if default else "0").strip().lower() in {"1", "true", "yes", "on"}


def _persistent_secret(name, make):
    """A secret a deployment sets in the environment; a fresh clone gets one generated once
    into the data folder, readable by its owner only (mode 0600)."""
    path = DATA_DIR / name
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    # Written whole under a private name, then linked into place: a second process starting
    # at the same moment reads either nothing or the complete secret, never half of one.
    value = make()
    partial = DATA_DIR / f".{name}.{os.getpid()}.{secrets.token_hex(4)}"
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(value)
        os.link(partial, path)
    except FileExistsError:
        return path.read_text().strip()
    finally:
        partial.unlink(missing_ok=True)
    return value


# Where the two generated secrets live; project.checks warns (check --deploy) while they do.
GENERATED_SECRET_KEY_FILE = DATA_DIR / "secret_key"
GENERATED_KEY_ENCRYPTION_KEY_FILE = DATA_DIR / "key_encryption_key"

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY") or _persistent_secret(GENERATED_SECRET_KEY_FILE.name, lambda: secrets.token_urlsafe(50))
# Fernet keys (32 random bytes, url-safe base64): the first encrypts the signing keys, all decrypt.
OIDC_KEY_ENCRYPTION_KEYS = [
    k.strip() for k in (
        os.environ.get("OIDC_KEY_ENCRYPTION_KEY")
        or _persistent_secret(GENERATED_KEY_ENCRYPTION_KEY_FILE.name, lambda: base64.urlsafe_b64encode(os.urandom(32)).decode())
    ).split(",") if k.strip()
]
DEBUG = _env_bool("DJANGO_DEBUG")
ALLOWED_HOSTS = [h.strip() for h in os.environ.get("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost").split(",") if h.strip()]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    # Before oauth2_provider: its cleartokens extends django-oauth-toolkit's.
    "oidc_provider",
    "oauth2_provider",
    "rest_framework",
    # Console API tokens, stored as digests and expiring (before console, whose admin replaces knox's).
    "knox",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "axes",
    "console",
    # The deployment's own system checks (project.checks).
    "project.apps.ProjectConfig",
]

MIDDLEWARE = [
    # First: the request's id, in every log record and audit event made while serving it.
    "oidc_provider.logs.RequestLogMiddleware",
    # It times every request, the protocol endpoints' short way included.
    "oidc_provider.metrics.MetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Token, userinfo, introspection, revocation, discovery, JWKS: straight to the view.
    "oidc_provider.middleware.ProtocolEndpointMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes requires, so it sees the outcome of every login.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "project.urls"
WSGI_APPLICATION = "project.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "oidc_provider.context_processors.branding",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{DATA_DIR / 'db.sqlite3'}",
        # Persistent connections: a new PostgreSQL connection per request costs more than
        # the request itself on the token endpoint. The health check replaces a connection
        # the server ended (restart, idle timeout) before a request uses it.
        conn_max_age=600,
        conn_health_checks=True,
    )
}
_DATABASE = DATABASES["default"]
_DATABASE.setdefault("OPTIONS", {})


def _private_sqlite_file(path):
    """Create the SQLite database empty and readable by its owner only (it holds every
    secret's digest, the encrypted signing keys and the sessions), before SQLite would
    create it with the umask's mode; take group and other access away from an existing one.
    SQLite gives the -wal and -shm files it makes beside it the database file's mode."""
    path = os.fspath(path)
    if path.startswith("file:") or path in ("", ":memory:"):  # a URI or no file: SQLite decides
        return
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600))
        return
    except FileExistsError:
        pass
    except OSError:
        return  # e.g. a missing folder: SQLite reports it in its own words
    for name in (path, f"{path}-wal", f"{path}-shm"):
        try:
            mode = os.stat(name).st_mode
            if mode & 0o077:
                os.chmod(name, mode & 0o700)
        except OSError:  # absent, or not ours to change
            pass


if _DATABASE["ENGINE"] == "django.db.backends.sqlite3":
    _private_sqlite_file(_DATABASE["NAME"])
    _DATABASE["OPTIONS"].update(
        {
            # Several workers share the file: a write transaction takes the write lock when
            # it begins, so it never fails midway on a lock another worker holds, and waits
            # for it up to 20 s.
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            # Readers never block the writer; NORMAL is durable in WAL mode but for the
            # last transactions before a power loss.
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
elif _DATABASE["ENGINE"] == "django.db.backends.postgresql":
    # Django's, with a health check that looks at the socket instead of a SELECT 1 round
    # trip, and timestamps loaded in C (project/postgresql).
    _DATABASE["ENGINE"] = "project.postgresql"
    if _env_bool("DJANGO_DB_PREPARED_STATEMENTS", True):
        # The hot statements are the same text every time: bound and prepared on the server
        # (psycopg prepares a statement after its 5th use on a connection), PostgreSQL skips
        # parsing and planning them. Set DJANGO_DB_PREPARED_STATEMENTS=0 behind PgBouncer in
        # transaction pooling mode, which cannot keep a prepared statement across transactions.
        _DATABASE["OPTIONS"].update({"server_side_binding": True, "prepare_threshold": 5})
elif _DATABASE["ENGINE"] == "django.db.backends.mysql":
    # Client ids, redirect URIs and digests must compare byte for byte: MariaDB's and
    # MySQL's default collations ignore case, accents and trailing spaces, under which
    # "ABC" would find the client "abc". Tables take the database's collation when they
    # are created: the production database is created with it too, and project.E001
    # (manage.py migrate, check --database default) refuses one without it.
    _DATABASE["OPTIONS"].setdefault("charset", "utf8mb4")
    _DATABASE["TEST"] = {"CHARSET": "utf8mb4", "COLLATION": "utf8mb4_nopad_bin", **_DATABASE.get("TEST", {})}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Brute-force counts (oidc_provider/throttle.py) must be shared by every worker: in Redis
# when REDIS_URL is set, else in the database (OIDC_PROVIDER["THROTTLE_CACHE"] below).
if os.environ.get("REDIS_URL"):
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": os.environ["REDIS_URL"]}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

AUTHENTICATION_BACKENDS = [
    # First, so locked-out credentials never reach the model backend.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "/accounts/login/"
# Signing in without a `next` lands on the account page.
LOGIN_REDIRECT_URL = "/accounts/"

LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("zh-hans", "简体中文")]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = DATA_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)
# Serve straight from the apps' static folders, so `gunicorn project.wsgi` needs no
# collectstatic step.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

# Hosted pages cannot be framed (clickjacking on login and consent).
X_FRAME_OPTIONS = "DENY"
CSRF_FAILURE_VIEW = "oidc_provider.views.pages.csrf_failure"
# The console shows a new client secret once, in a message: keep messages server-side,
# never in a (signed but readable) cookie.
MESSAGE_STORAGE = "django.contrib.messages.storage.session.SessionStorage"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = True
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if _env_bool("DJANGO_BEHIND_TLS_PROXY") else None

# Served over TLS (an https issuer): cookies never travel in clear and browsers are told to
# come back over https only. A local http run keeps all of them off, or it could not log in.
_ISSUER = os.environ.get("OIDC_ISSUER", "http://127.0.0.1:8000/oidc")
_HTTPS = _ISSUER.lower().startswith("https://")
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = _env_bool("DJANGO_SECURE_COOKIES", _HTTPS)
SECURE_HSTS_SECONDS = int(os.environ.get("DJANGO_SECURE_HSTS_SECONDS") or (365 * 24 * 3600 if _HTTPS else 0))
# Both reach beyond this host (every subdomain; browsers' built-in lists): the deployment opts in.
SECURE_HSTS_INCLUDE_SUBDOMAINS = _env_bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS")
SECURE_HSTS_PRELOAD = _env_bool("DJANGO_SECURE_HSTS_PRELOAD")
# Off by default: behind a TLS proxy it needs DJANGO_BEHIND_TLS_PROXY=1, or every request
# would look like http and be redirected forever. Probes may stay on http.
SECURE_SSL_REDIRECT = _env_bool("DJANGO_SECURE_SSL_REDIRECT")
SECURE_REDIRECT_EXEMPT = [r"^health/", r"^metrics$"]
# Re-issued by project.checks with the environment variable that fixes each one.
SILENCED_SYSTEM_CHECKS = [
    "security.W004", "security.W005", "security.W008", "security.W009", "security.W012",
    "security.W016", "security.W018", "security.W020", "security.W021",
    # django-oauth-toolkit's RFC 9700 gates that the provider replaces with its own rules:
    # the implicit and password grants only where the grant policy allows them for the
    # application's type; http redirect URIs only on loopback hosts (RFC 8252); PKCE
    # required for every public client (per application type).
    "oauth2_provider.W001", "oauth2_provider.W002", "oauth2_provider.W008", "oauth2_provider.W010",
]

OIDC_PROVIDER = {
    "ISSUER": _ISSUER,
    "SITE_NAME": os.environ.get("OIDC_SITE_NAME", "Identity"),
    "KEY_ENCRYPTION_KEYS": OIDC_KEY_ENCRYPTION_KEYS,
    # Reverse proxies whose X-Forwarded-For names the client (login throttle, axes,
    # client-authentication throttle, audit log); none: REMOTE_ADDR is the client.
    "TRUSTED_PROXIES": os.environ.get("OIDC_TRUSTED_PROXIES", ""),
    "THROTTLE_CACHE": "default" if os.environ.get("REDIS_URL") else None,
    "DYNAMIC_REGISTRATION": _env_bool("OIDC_DYNAMIC_REGISTRATION"),
    "METRICS_ALLOWED_NETWORKS": os.environ.get("OIDC_METRICS_ALLOWED", ""),
    "METRICS_TOKEN": os.environ.get("OIDC_METRICS_TOKEN") or None,
    "CLEAR_EXPIRED_EVERY": float(os.environ.get("OIDC_CLEAR_EXPIRED_EVERY") or 0) or None,
}

# The provider configures django-oauth-toolkit itself (oidc_provider.apps); a site only
# names the swapped model, which DOT reads before any app is ready.
OAUTH2_PROVIDER_APPLICATION_MODEL = "oidc_provider.Application"

# Brute force on the login page: 5 failures per username+IP in 15 minutes lock that pair.
AXES_FAILURE_LIMIT = 5
AXES_COOLOFF_TIME = timedelta(minutes=15)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "oidc_provider.views.pages.locked_out"
AXES_VERBOSE = False
# The same client address as the provider's own throttle (OIDC_TRUSTED_PROXIES).
AXES_CLIENT_IP_CALLABLE = "oidc_provider.throttle.client_address"

# One JSON object per line on stderr (DJANGO_LOG_FORMAT=text for a line a person reads), every
# record with the id of the request it belongs to; with DJANGO_ACCESS_LOG=1, one line per
# request too (off by default: a proxy in front usually keeps that log already).
_LOG_FORMAT = os.environ.get("DJANGO_LOG_FORMAT", "json").strip().lower()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "oidc_provider.logs.RequestIdFilter"}},
    "formatters": {
        "json": {"()": "oidc_provider.logs.JsonFormatter"},
        "text": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "text" if _LOG_FORMAT == "text" else "json",
            "filters": ["request_id"],
        },
    },
    "root": {"handlers": ["console"], "level": os.environ.get("DJANGO_LOG_LEVEL", "WARNING").strip().upper()},
    "loggers": {
        "oidc_provider.request": {"level": "INFO" if _env_bool("DJANGO_ACCESS_LOG") else "WARNING"},
        # DOT logs a warning per implicit request and mismatch details we report ourselves;
        # oauthlib's debug lines carry request bodies: neither goes lower, whatever the level.
        "oauth2_provider": {"level": "ERROR"},
        "oauthlib": {"level": "WARNING"},
        "axes": {"level": "WARNING"},
    },
}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "console.api.permissions.ConsoleTokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAdminUser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
# Console API tokens: 'Authorization: Token <key>', a SHA-512 digest stored, valid 30 days
# unless their owner picks another lifetime when creating one.
REST_KNOX = {
    "AUTH_HEADER_PREFIX": "Token",
    "TOKEN_TTL": timedelta(days=30),
    "AUTO_REFRESH": False,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Identity console API",
    "DESCRIPTION": "Manage applications, the grant policy, access accounts and keys, signing keys, and read the audit log.",
    "VERSION": "1",
    # Swagger UI and ReDoc from the sidecar package: the docs page works without internet.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SERVE_INCLUDE_SCHEMA": False,
    "PREPROCESSING_HOOKS": ["console.api.docs.only_console_api"],
    "ENUM_NAME_OVERRIDES": {"PolicyStateEnum": "oidc_provider.policy.STATE_CHOICES"},
}
