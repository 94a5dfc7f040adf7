"""The grant policy in force: may this application use this grant, now?

Every endpoint asks ``may_use``.
The vocabulary (grants, application types, states, defaults) is grants.py's, named here too
so that one import serves a caller.
"""

from . import config_cache
from .grants import (  # noqa: F401  the vocabulary, re-exported for policy.* callers
    ALLOWED,
    APPLICATION_TYPE_CHOICES,
    APPLICATION_TYPES,
    AUTHORIZATION_CODE,
    CLIENT_CREDENTIALS,
    DEFAULT_POLICY,
    DOT_GRANT_TYPES,
    END_USER_TYPES,
    FORBIDDEN,
    GRANT_CHOICES,
    GRANTS,
    HYBRID,
    IMPLICIT,
    NATIVE,
    PASSWORD,
    PKCE_REQUIRED_TYPES,
    PUBLIC_TYPES,
    RECOMMENDED,
    REFRESH_TOKEN,
    RESPONSE_TYPE_GRANTS,
    RESPONSE_TYPES,
    SERVICE,
    SPA,
    STATE_CHOICES,
    STATES,
    TOKEN_GRANT_TYPES,
    WARNINGS,
    WEB,
    normalise_response_type,
)
from .models import Application, GrantPolicy


def state_of(application_type, grant):
    """The current policy state of (type, grant).

    Read through config_cache: a change from the CLI, the console or another worker holds
    from the next request on.
    """
    return config_cache.get("policy", current_policy).get((application_type, grant), FORBIDDEN)


def current_policy():
    """{(type, grant): state} for every pair, stored states over defaults."""
    return GrantPolicy.objects.table()


def recommended_grants(application_type, policy=None):
    policy = policy or current_policy()
    return [g for g in GRANTS if policy[(application_type, g)] == RECOMMENDED]


def applications_holding(application_type, grant):
    """Applications of this type that list the grant (filtered in Python: JSON lookups differ per backend)."""
    apps = Application.objects.filter(application_type=application_type).order_by("name", "id")
    return [a for a in apps if grant in (a.grant_types or [])]


def may_use(application, grant):
    """True when the application holds the grant and its type's policy allows it now."""
    return grant in (application.grant_types or []) and state_of(application.application_type, grant) != FORBIDDEN

