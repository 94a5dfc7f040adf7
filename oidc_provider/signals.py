"""What the provider announces; the console's audit log (or a team's code) listens."""

from django.dispatch import Signal

# kwargs: application, grant, user (may be None), request
token_issued = Signal()
# kwargs: application, grant, reason, request
grant_refused = Signal()
# kwargs: application, request
code_replayed = Signal()
# kwargs: application, token_family, request
refresh_token_replayed = Signal()
# kwargs: key, previous, actor (the user who asked, or None for the CLI or the system)
signing_key_rotated = Signal()
# kwargs: key, actor
signing_key_retired = Signal()
# kwargs: key, actor
signing_key_imported = Signal()
# kwargs: key, actor (a private key left the provider in clear)
signing_key_exported = Signal()
# kwargs: count, actor (every private key now encrypted under the first key-encryption key)
signing_keys_reencrypted = Signal()
# A failed client authentication at the token, introspection or revocation endpoint (wrong
# secret or SK, unknown client, a public client at introspection), or one refused because
# of too many such failures (throttled=True).
# kwargs: client_id (as presented, may be unknown or ""), ip_address, throttled, request
client_authentication_failed = Signal()
# A relying party's authorization or token request refused, once per request, with the check
# that refused it (oidc_provider.refusals names them). Never a secret, code or token: only facts.
# kwargs: application (or None), client_id (as sent, printable, bounded), endpoint ("authorize" or
# "token"), error (the OAuth error code; "" when the browser was refused the answer: CORS),
# description (the error_description sent, or ""), rule, sent (what the request carried),
# registered (what is configured beside it), request (Django's at the authorization endpoint,
# oauthlib's at the token endpoint)
request_refused = Signal()

# Configuration changes, sent by the provider's own operations whoever calls them (console,
# API or CLI), so that each is audited once. actor: the user who asked, or None for the CLI.
# kwargs: application_type, grant, previous (state or None), state, actor
grant_policy_changed = Signal()
# kwargs: application, actor
client_secret_regenerated = Signal()
# kwargs: key (an AccessKey), actor
access_key_issued = Signal()
access_key_revoked = Signal()
# kwargs: application, actor
application_created = Signal()
application_deleted = Signal()
# kwargs: key (the new AccessKey), previous (the one it replaced, now revoked), actor
access_key_rotated = Signal()

# Sessions and logout channels.
# kwargs: session (a LoginSession), applications (those it signed into), reason
# ("logout", "ended_by_admin", "password_changed"), actor (the admin, or None)
session_ended = Signal()
# kwargs: notice (a LogoutNotice), delivered (bool), given_up (bool), detail (what the relying party answered)
backchannel_logout_attempted = Signal()

# Dynamic client registration (RFC 7591, 7592).
# kwargs: application, action ("registered", "updated", "deleted"), initial_access_token (on registration)
client_registration_changed = Signal()
# kwargs: token (an InitialAccessToken row, never the token), actor
registration_token_issued = Signal()
registration_token_revoked = Signal()
