"""The whole test run's logs, and every secret the run handed out, for test_logs to compare.

Installed when pytest starts (conftest's ``pytest_configure``): a handler on the root logger
writes every record the run's log configuration lets through, in the provider's JSON format
with request ids, to one file; the provider's and console's own loggers are opened down to
DEBUG (the per-request lines included), so a secret in a debug line would show too. The
functions that make secrets are wrapped so that each value they return is also noted: they
still make real random values.
"""

import logging
import re
import secrets
import tempfile
from pathlib import Path

MIN_LENGTH = 20  # shorter random strings could turn up inside request ids by chance
PREFIX = 20

handed_out = set()
log_path = None
_handler = None


def _noting(make):
    def wrapper(*args, **kwargs):
        value = make(*args, **kwargs)
        if isinstance(value, str) and len(value) >= MIN_LENGTH:
            handed_out.add(value)
        return value

    wrapper.__wrapped__ = make
    return wrapper


def _public(make):
    def wrapper(*args, **kwargs):
        value = make(*args, **kwargs)
        handed_out.discard(value)
        return value

    wrapper.__wrapped__ = make
    return wrapper


def install():
    global log_path, _handler
    import jwt
    import knox.crypto
    import oauthlib.common
    from django.contrib.sessions.backends.base import SessionBase
    from oauth2_provider.generators import ClientIdGenerator

    from oidc_provider.logs import JsonFormatter, RequestIdFilter

    # Client secrets, SKs, access and refresh tokens, registration tokens (oidc_provider.secrets).
    secrets.token_urlsafe = _noting(secrets.token_urlsafe)
    # Authorization codes (oauthlib's grant types call common.generate_token()).
    oauthlib.common.generate_token = _noting(oauthlib.common.generate_token)
    # ...which also makes client ids, which are public: they are in URLs and logs by design.
    ClientIdGenerator.hash = _public(ClientIdGenerator.hash)
    # ID tokens and logout tokens.
    jwt.encode = _noting(jwt.encode)
    # Console API tokens.
    knox.crypto.create_token_string = _noting(knox.crypto.create_token_string)
    # Session keys: a session cookie is a credential too.
    SessionBase._get_new_session_key = _noting(SessionBase._get_new_session_key)

    log_path = Path(tempfile.mkdtemp(prefix="oidc-test-run-")) / "run.log"
    _handler = logging.FileHandler(log_path, encoding="utf-8")
    _handler.setFormatter(JsonFormatter())
    _handler.addFilter(RequestIdFilter())
    logging.getLogger().addHandler(_handler)
    for name in ("oidc_provider", "console", "oidc_provider.request"):
        logging.getLogger(name).setLevel(logging.DEBUG)


def logged_text():
    _handler.flush()
    return log_path.read_text(encoding="utf-8")


_RUN = re.compile(r"[A-Za-z0-9_\-.~+/=]{%d,}" % MIN_LENGTH)


def secrets_in(text):
    """The handed-out secrets that occur in ``text``, also inside a longer run of token
    characters (a query string, a header, a JWT)."""
    by_prefix = {}
    for value in handed_out:
        by_prefix.setdefault(value[:PREFIX], []).append(value)
    found = set()
    for run in _RUN.finditer(text):
        chunk = run.group()
        for start in range(len(chunk) - PREFIX + 1):
            for value in by_prefix.get(chunk[start : start + PREFIX], ()):
                if chunk.startswith(value, start):
                    found.add(value)
    return found
