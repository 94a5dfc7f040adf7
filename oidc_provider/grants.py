"""The grant vocabulary: grants, application types, policy states, their defaults, and how a
list of grants is judged against a policy table ``{(type, grant): state}``.

Nothing here reads the database: the policy in force lives in policy.py.
"""

from django.utils.translation import gettext_lazy as _

AUTHORIZATION_CODE = "authorization_code"
IMPLICIT = "implicit"
HYBRID = "hybrid"
PASSWORD = "password"
CLIENT_CREDENTIALS = "client_credentials"
REFRESH_TOKEN = "refresh_token"
GRANTS = (AUTHORIZATION_CODE, HYBRID, IMPLICIT, PASSWORD, CLIENT_CREDENTIALS, REFRESH_TOKEN)
GRANT_CHOICES = [
    (AUTHORIZATION_CODE, _("Authorization code")),
    (HYBRID, _("Hybrid")),
    (IMPLICIT, _("Implicit")),
    (PASSWORD, _("Resource owner password")),
    (CLIENT_CREDENTIALS, _("Client credentials")),
    (REFRESH_TOKEN, _("Refresh token")),
]

WEB = "web"
SPA = "spa"
NATIVE = "native"
SERVICE = "service"
APPLICATION_TYPES = (WEB, SPA, NATIVE, SERVICE)
APPLICATION_TYPE_CHOICES = [
    (WEB, _("Web application (with a backend)")),
    (SPA, _("Single-page application")),
    (NATIVE, _("Native or mobile application")),
    (SERVICE, _("Service (machine to machine)")),
]
PUBLIC_TYPES = frozenset({SPA, NATIVE})
PKCE_REQUIRED_TYPES = frozenset({SPA, NATIVE})

RECOMMENDED = "recommended"
ALLOWED = "allowed"
FORBIDDEN = "forbidden"
STATES = (RECOMMENDED, ALLOWED, FORBIDDEN)
STATE_CHOICES = [(RECOMMENDED, _("Recommended")), (ALLOWED, _("Allowed")), (FORBIDDEN, _("Forbidden"))]

_R, _A, _F = RECOMMENDED, ALLOWED, FORBIDDEN
# The docs' recommendations (Okta, Authing "choose a flow"): rows are grants,
# columns web, spa, native, service.
DEFAULT_POLICY = {
    (t, g): state
    for g, row in {
        AUTHORIZATION_CODE: (_R, _R, _R, _F),
        HYBRID: (_A, _F, _F, _F),
        IMPLICIT: (_F, _A, _F, _F),
        PASSWORD: (_A, _F, _A, _F),
        CLIENT_CREDENTIALS: (_A, _F, _F, _R),
        REFRESH_TOKEN: (_R, _F, _R, _F),
    }.items()
    for t, state in zip(APPLICATION_TYPES, row)
}

# The docs' warning beside a grant that is allowed but not recommended.
WARNINGS = {
    HYBRID: _("Only when the backend needs the ID token at once, before the code is exchanged."),
    IMPLICIT: _("Only for old browsers without Web Crypto; prefer authorization code with PKCE."),
    PASSWORD: _("Only when you own both the application and the resources; users type their password into the app."),
    CLIENT_CREDENTIALS: _("Only for calls the application makes on its own behalf, with no end user."),
    REFRESH_TOKEN: _("Refresh tokens are long-lived; keep them on a backend or in secure storage."),
    AUTHORIZATION_CODE: _("Use it with PKCE."),
}

# response_type (as oauthlib normalises it: sorted words) -> the grant it needs.
RESPONSE_TYPE_GRANTS = {
    "code": AUTHORIZATION_CODE,
    "token": IMPLICIT,
    "id_token": IMPLICIT,
    "id_token token": IMPLICIT,
    "code id_token": HYBRID,
    "code token": HYBRID,
    "code id_token token": HYBRID,
}
RESPONSE_TYPES = tuple(RESPONSE_TYPE_GRANTS)

# grant_type at the token endpoint -> our grant name.
TOKEN_GRANT_TYPES = {
    "authorization_code": AUTHORIZATION_CODE,
    "password": PASSWORD,
    "client_credentials": CLIENT_CREDENTIALS,
    "refresh_token": REFRESH_TOKEN,
}

# Our grant names <-> django-oauth-toolkit's, for its allows_grant_type() callers.
DOT_GRANT_TYPES = {
    "authorization-code": AUTHORIZATION_CODE,
    "implicit": IMPLICIT,
    "openid-hybrid": HYBRID,
    "password": PASSWORD,
    "client-credentials": CLIENT_CREDENTIALS,
}


def normalise_response_type(response_type):
    """Space-separated words in canonical order; alphabetical order is the canonical one."""
    return " ".join(sorted((response_type or "").split()))


def types_allowing(grant, table):
    return [t for t in APPLICATION_TYPES if table[(t, grant)] != FORBIDDEN]


def forbidden_grant_message(application_type, grant, table):
    others = types_allowing(grant, table)
    where = (
        _("Application types that allow it: %(types)s.") % {"types": ", ".join(others)}
        if others
        else _("No application type allows it under the current policy.")
    )
    return _("The grant '%(grant)s' is forbidden for '%(type)s' applications by the grant policy. %(where)s") % {
        "grant": grant,
        "type": application_type,
        "where": where,
    }


def validate_grants(application_type, grants, table):
    """Error messages for grants this type may not hold under ``table`` (empty when all is well)."""
    errors = []
    for grant in grants:
        if grant not in GRANTS:
            errors.append(_("Unknown grant '%(grant)s'. Known grants: %(known)s.") % {"grant": grant, "known": ", ".join(GRANTS)})
        elif table[(application_type, grant)] == FORBIDDEN:
            errors.append(forbidden_grant_message(application_type, grant, table))
    return errors
