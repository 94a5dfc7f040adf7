"""The grant policy in force: may this application use this grant, now? And changing it.

Every endpoint asks ``may_use``; the console and the CLI change a pair with ``set_state``.
The vocabulary (grants, application types, states, defaults) is grants.py's, named here too
so that one import serves a caller.
"""

from django.db import transaction

from . import config_cache, signals
from .grants import (  # noqa: F401  the vocabulary, re-exported for policy.* callers
    ALLOWED,
    APPLICATION_TYPE_CHOICES,
    APPLICATION_TYPES,
    AUTHORIZATION_CODE,
    CLIENT_CREDENTIALS,
    DEFAULT_POLICY,
    DOT_GRANT_TYPES,
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


def set_state(application_type, grant, state, actor=None):
    """Put (type, grant) in ``state`` from the next request on; returns the state it had.

    Applications of the type that list a grant made forbidden keep it listed, and are
    refused it at request time. Sends ``grant_policy_changed`` when the state changed;
    ``actor`` is the user who asked, or None for the CLI. ValueError for an unknown name.
    """
    for value, known, what in (
        (application_type, APPLICATION_TYPES, "application type"),
        (grant, GRANTS, "grant"),
        (state, STATES, "state"),
    ):
        if value not in known:
            raise ValueError(f"Unknown {what} '{value}'. Choose one of: {', '.join(known)}.")
    with transaction.atomic():
        row, created = GrantPolicy.objects.select_for_update().get_or_create(
            application_type=application_type, grant=grant, defaults={"state": state}
        )
        # A missing row meant the default was in force.
        previous = DEFAULT_POLICY[(application_type, grant)] if created else row.state
        if row.state != state:
            row.state = state
            row.save(update_fields=["state", "updated_at"])
        if previous != state:
            # Inside the transaction: an audit record of it commits with the change or not at all.
            signals.grant_policy_changed.send(
                sender=GrantPolicy, application_type=application_type, grant=grant,
                previous=previous, state=state, actor=actor,
            )
    return previous
