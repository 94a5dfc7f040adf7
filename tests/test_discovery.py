"""Discovery 1.0 §3 and the JWKS document."""


def test_discovery_lists_endpoints_and_supported_values(client, db):
    response = client.get("/oidc/.well-known/openid-configuration")
    assert response.status_code == 200
    meta = response.json()
    issuer = "http://127.0.0.1:8000/oidc"
    assert meta["issuer"] == issuer
    assert meta["authorization_endpoint"] == f"{issuer}/auth"
    assert meta["token_endpoint"] == f"{issuer}/token"
    assert meta["userinfo_endpoint"] == f"{issuer}/me"
    assert meta["jwks_uri"] == f"{issuer}/.well-known/jwks.json"
    assert meta["end_session_endpoint"] == f"{issuer}/session/end"
    assert "openid" in meta["scopes_supported"]
    assert {"read", "write", "profile", "email", "phone", "address", "offline_access"} <= set(meta["scopes_supported"])
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert meta["id_token_signing_alg_values_supported"] == ["RS256"]
    assert {"client_secret_basic", "client_secret_post"} <= set(meta["token_endpoint_auth_methods_supported"])
    assert "code" in meta["response_types_supported"]
    assert meta["subject_types_supported"] == ["public"]
    assert {"sub", "email", "name"} <= set(meta["claims_supported"])
    assert "authorization_code" in meta["grant_types_supported"]


def test_discovery_follows_the_issuer_setting(client, db, settings):
    settings.OIDC_PROVIDER = {**settings.OIDC_PROVIDER, "ISSUER": "https://id.example.com/oidc"}
    meta = client.get("/oidc/.well-known/openid-configuration").json()
    assert meta["issuer"] == "https://id.example.com/oidc"
    assert meta["token_endpoint"] == "https://id.example.com/oidc/token"


def test_jwks_publishes_rsa_public_keys_only(client, db):
    keys = client.get("/oidc/.well-known/jwks.json").json()["keys"]
    assert keys
    for key in keys:
        assert key["kty"] == "RSA" and key["alg"] == "RS256" and key["use"] == "sig" and key["kid"]
        assert not {"d", "p", "q", "dp", "dq", "qi"} & set(key)


def test_discovery_refuses_post(client, db):
    assert client.post("/oidc/.well-known/openid-configuration").status_code == 405
