"""The admin console (/admin/): applications, the grant policy, programmatic access accounts,
signing keys, tokens and consents, the audit log and console API tokens, one module each.

django-oauth-toolkit registers admins for its models on import; ours replace those for the
Application (types, the grant policy, hashed secrets) and for tokens, codes and ID tokens
(read-only; revocation per user and application, audited), and the refused requests (read-only). knox's token admin is replaced by
one for superusers that shows no token. Who may use each page and action is decided by
``console.permissions``, as for the REST API. Every change made here goes through
``console.services``, which leaves its audit event.
"""

from . import site  # noqa: F401  first: it unregisters the admins replaced below
from . import (  # noqa: F401
    access_accounts, api_tokens, applications, audit, policy, refusals, registration_tokens, sessions, signing_keys, tokens,
)
