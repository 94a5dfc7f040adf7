"""Steps a relying party takes, as plain functions over Django's test client."""

import base64
import hashlib
import secrets
from urllib.parse import parse_qs, urlsplit

import jwt

REDIRECT_URI = "https://rp.example.com/callback"


def pkce_pair():
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def query_of(response):
    """Parameters of a redirect's query (or fragment), one value each."""
    parts = urlsplit(response["Location"])
    return {k: v[0] for k, v in parse_qs(parts.query or parts.fragment).items()}


def fragment_of(response):
    return {k: v[0] for k, v in parse_qs(urlsplit(response["Location"]).fragment).items()}


def basic_auth(client_id, secret):
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def verify_id_token(client, token, audience):
    """Verify an ID token the way a relying party does: keys from the JWKS document, by kid."""
    jwks = client.get("/oidc/.well-known/jwks.json").json()
    kid = jwt.get_unverified_header(token)["kid"]
    key = next(k for k in jwks["keys"] if k["kid"] == kid)
    issuer = client.get("/oidc/.well-known/openid-configuration").json()["issuer"]
    return jwt.decode(token, jwt.PyJWK(key).key, algorithms=["RS256"], audience=audience, issuer=issuer)


def authorize(client, app, **params):
    """GET /oidc/auth with sensible defaults; returns the response."""
    query = {
        "client_id": app.client_id,
        "redirect_uri": app.redirect_uris.split()[0],
        "response_type": "code",
        "scope": "openid",
        "state": "xyz",
        "nonce": "n-0S6_WzA2Mj",
        **params,
    }
    return client.get("/oidc/auth", {k: v for k, v in query.items() if v is not None})


def consent(client, response):
    """Approve the consent page shown in ``response``; returns the redirect."""
    form = response.context["form"]
    data = {name: field.value() or "" for name, field in ((f.name, f) for f in form)}
    data.update({"consent_form": "1", "allow": "1"})
    return client.post("/oidc/auth", data)


def get_code(client, app, **params):
    response = authorize(client, app, **params)
    if response.status_code == 200:
        response = consent(client, response)
    assert response.status_code == 302, response.content[:500]
    return query_of(response)


def exchange(client, app, code, secret=None, **extra):
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": app.redirect_uris.split()[0], **extra}
    headers = {}
    if secret:
        headers["HTTP_AUTHORIZATION"] = basic_auth(app.client_id, secret)
    else:
        data["client_id"] = app.client_id
    return client.post("/oidc/token", data, **headers)



def left_half_hash(value):
    """at_hash / c_hash for RS256 (OIDC Core 3.1.3.6): base64url of the left half of SHA-256."""
    digest = hashlib.sha256(value.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode()


def set_policy(application_type, grant, state):
    """Change the grant policy the way an admin does, through `manage.py oidc_policy set`."""
    import io

    from django.core.management import call_command

    call_command("oidc_policy", "set", "--type", application_type, "--grant", grant, "--state", state, stdout=io.StringIO())
