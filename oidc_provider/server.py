"""oauthlib's OpenID Connect server, trimmed to what this provider offers."""

from oauthlib.oauth2.rfc6749.grant_types.authorization_code import code_challenge_method_s256
from oauthlib.openid import Server as OpenIDServer

from .policy import normalise_response_type


class _ResponseTypes(dict):
    """Accept the words of a response_type in any order (OAuth 2.0 Multiple Response Types §5)."""

    def get(self, key, default=None):
        return super().get(normalise_response_type(key), default)


class Server(OpenIDServer):
    def __init__(self, request_validator, *args, **kwargs):
        super().__init__(request_validator, *args, **kwargs)
        # Only the response types and grants of CONTRACT §4; the device grant and
        # response_type=none are not offered.
        self._response_types = _ResponseTypes(
            {k: v for k, v in self._response_types.items() if k != "none"}
        )
        self._grant_types = {k: v for k, v in self._grant_types.items() if not k.startswith("urn:")}
        for grant in (self.auth_grant, self.openid_connect_auth, self.openid_connect_hybrid):
            _refuse_plain_pkce(grant)


def _refuse_plain_pkce(grant):
    # RFC 9700 §2.1.1: only S256. A missing method means "plain" (RFC 7636 §4.3), so it is refused too.
    target = getattr(grant, "proxy_target", grant)
    target._code_challenge_methods = {"S256": code_challenge_method_s256}
