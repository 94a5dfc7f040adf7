"""oauthlib's OpenID Connect server, trimmed and completed to what this provider offers."""

import json

from oauthlib.oauth2.rfc6749 import errors
from oauthlib.oauth2.rfc6749.grant_types import ResourceOwnerPasswordCredentialsGrant
from oauthlib.oauth2.rfc6749.grant_types.authorization_code import (
    code_challenge_method_s256,
)
from oauthlib.openid import Server as OpenIDServer
from oauthlib.openid.connect.core.grant_types.base import (
    GrantTypeBase as OpenIDGrantTypeBase,
)

from . import refusals
from .policy import normalise_response_type


class _ResponseTypes(dict):
    """Accept the words of a response_type in any order (OAuth 2.0 Multiple Response Types §5)."""

    def get(self, key, default=None):
        return super().get(normalise_response_type(key), default)


class PasswordGrant(ResourceOwnerPasswordCredentialsGrant):
    """The resource owner password grant, with an ID token when scope has openid, as for
    every other grant that issues tokens to a user.

    oauthlib calls this grant's token modifiers with the token alone, so the ID token is
    added here, by the same code that adds it to the other grants.
    """

    def __init__(self, request_validator=None, id_token_grant=None, **kwargs):
        super().__init__(request_validator, **kwargs)
        self.id_token_grant = id_token_grant

    def create_token_response(self, request, token_handler):
        headers = self._get_default_headers()
        try:
            self.validate_token_request(request)
        except errors.OAuth2Error as e:
            headers.update(e.headers)
            return headers, e.json, e.status_code
        token = token_handler.create_token(request, self.refresh_token)
        token = OpenIDGrantTypeBase.add_id_token(self.id_token_grant, token, token_handler, request)
        self.request_validator.save_token(token, request)
        return headers, json.dumps(token), 200


class AnnouncesRefusals:
    """A token grant whose refusals are announced with the rule that refused them
    (``refusals.token_refused``): where its error response is made, with oauthlib's request
    in hand. A success costs this one call and nothing else."""

    def __init__(self, grant):
        self.grant = grant

    def __getattr__(self, name):
        return getattr(self.grant, name)

    def create_token_response(self, request, token_handler):
        try:
            headers, body, status = self.grant.create_token_response(request, token_handler)
        except errors.OAuth2Error as e:  # raised while the tokens are saved (a code spent meanwhile)
            refusals.token_refused(request, e.error, e.description, self.grant.request_validator)
            raise
        if status != 200:
            refusals.token_response_refused(request, body, self.grant.request_validator)
        return headers, body, status


def _refuse_plain_pkce(grant):
    # RFC 9700 §2.1.1: only S256. A missing method means "plain" (RFC 7636 §4.3), so it is refused too.
    target = getattr(grant, "proxy_target", grant)
    target._code_challenge_methods = {"S256": code_challenge_method_s256}


class Server(OpenIDServer):
    def __init__(self, request_validator, *args, **kwargs):
        super().__init__(request_validator, *args, **kwargs)
        # Only the response types and grants the provider offers: not the device grant,
        # not response_type=none.
        self._response_types = _ResponseTypes({k: v for k, v in self._response_types.items() if k != "none"})
        self.password_grant = PasswordGrant(request_validator, id_token_grant=self.openid_connect_auth)
        self._grant_types = {k: v for k, v in self._grant_types.items() if not k.startswith("urn:")}
        self._grant_types["password"] = self.password_grant
        self._grant_types = {name: AnnouncesRefusals(grant) for name, grant in self._grant_types.items()}
        for grant in (self.auth_grant, self.openid_connect_auth, self.openid_connect_hybrid):
            _refuse_plain_pkce(grant)
