"""prompt, max_age, id_token_hint, login_hint (OIDC Core 3.1.2.1, 3.1.2.6)."""

import time
from oidc_provider.claims import subject
from urllib.parse import parse_qs, urlsplit

from tests.factories import PASSWORD
from tests.helpers import authorize, exchange, get_code, query_of, verify_id_token


def _login_next(response):
    assert response.status_code == 302
    location = urlsplit(response["Location"])
    assert location.path == "/accounts/login/"
    return parse_qs(location.query)["next"][0]


def test_prompt_none_without_a_session_is_login_required(client, web_app):
    """oidcc-prompt-none-not-logged-in."""
    response = authorize(client, web_app, prompt="none", state="s" * 128)
    params = query_of(response)
    assert params["error"] == "login_required"
    assert params["state"] == "s" * 128


def test_prompt_none_without_consent_is_consent_required(logged_in, web_app):
    assert query_of(authorize(logged_in, web_app, prompt="none"))["error"] == "consent_required"


def test_prompt_none_with_session_and_consent_succeeds_silently(logged_in, web_app, user):
    """oidcc-prompt-none-logged-in: same sub, no UI."""
    first = exchange(logged_in, web_app, get_code(logged_in, web_app)["code"], secret=web_app.plaintext_secret).json()
    response = authorize(logged_in, web_app, prompt="none")
    assert response.status_code == 302
    second = exchange(logged_in, web_app, query_of(response)["code"], secret=web_app.plaintext_secret).json()
    a = verify_id_token(logged_in, first["id_token"], web_app.client_id)
    b = verify_id_token(logged_in, second["id_token"], web_app.client_id)
    assert a["sub"] == b["sub"] == subject(user)


def test_prompt_none_with_other_values_is_invalid_request(logged_in, web_app):
    assert query_of(authorize(logged_in, web_app, prompt="none login"))["error"] == "invalid_request"


def test_prompt_login_forces_a_new_login_then_continues(client, user, web_app):
    """oidcc-prompt-login: re-authenticate, then a later auth_time."""
    client.force_login(user)
    next_url = _login_next(authorize(client, web_app, prompt="login"))
    assert "prompt" not in parse_qs(urlsplit(next_url).query)
    time.sleep(1.1)
    login = client.post(f"/accounts/login/?next={next_url}", {"username": user.username, "password": PASSWORD, "next": next_url})
    assert login.status_code == 302
    back = client.get(login["Location"])
    if back.status_code == 200:  # consent page
        from tests.helpers import consent

        back = consent(client, back)
    code = query_of(back)["code"]
    token = exchange(client, web_app, code, secret=web_app.plaintext_secret).json()
    claims = verify_id_token(client, token["id_token"], web_app.client_id)
    assert claims["auth_time"] >= int(time.time()) - 2


def test_prompt_consent_shows_the_page_even_after_consent(logged_in, web_app):
    get_code(logged_in, web_app)
    assert authorize(logged_in, web_app).status_code == 302
    assert authorize(logged_in, web_app, prompt="consent").status_code == 200


def test_prompt_select_account_shows_the_signed_in_account_with_a_switch_even_after_consent(logged_in, web_app, user):
    """OIDC Core 3.1.2.1 prompt=select_account: the person is asked which account to use; the
    page names the signed-in one, continues with it, or switches to another."""
    get_code(logged_in, web_app)
    response = authorize(logged_in, web_app, prompt="select_account")
    assert response.status_code == 200
    page = response.content.decode()
    assert user.username in page and 'action="/accounts/logout/"' in page


def test_prompt_select_account_without_a_session_goes_to_the_login_page(client, web_app):
    """Signing in is choosing the account; afterwards the request continues without a loop."""
    next_url = _login_next(authorize(client, web_app, prompt="select_account"))
    assert "/oidc/auth?" in next_url


def test_max_age_exceeded_forces_login(client, user, web_app):
    """oidcc-max-age-1."""
    client.force_login(user)
    session = client.session
    session["oidc_auth_time"] = int(time.time()) - 10
    session.save()
    assert _login_next(authorize(client, web_app, max_age="1"))


def test_max_age_exceeded_with_prompt_none_is_login_required(client, user, web_app):
    client.force_login(user)
    session = client.session
    session["oidc_auth_time"] = int(time.time()) - 10
    session.save()
    assert query_of(authorize(client, web_app, max_age="1", prompt="none"))["error"] == "login_required"


def test_recent_login_satisfies_a_large_max_age(logged_in, web_app):
    """oidcc-max-age-10000: no login prompt, auth_time present."""
    params = get_code(logged_in, web_app, max_age="10000")
    token = exchange(logged_in, web_app, params["code"], secret=web_app.plaintext_secret).json()
    assert "auth_time" in verify_id_token(logged_in, token["id_token"], web_app.client_id)


def test_max_age_login_then_succeeds_without_a_loop(client, user, web_app):
    client.force_login(user)
    session = client.session
    session["oidc_auth_time"] = int(time.time()) - 100
    session.save()
    next_url = _login_next(authorize(client, web_app, max_age="0"))
    assert "max_age" not in parse_qs(urlsplit(next_url).query)
    client.post("/accounts/login/", {"username": user.username, "password": PASSWORD, "next": next_url})
    assert client.get(next_url).status_code == 200  # the consent page, not another login


def test_id_token_hint_of_the_logged_in_user_succeeds_with_prompt_none(logged_in, web_app):
    """oidcc-id-token-hint."""
    first = exchange(logged_in, web_app, get_code(logged_in, web_app)["code"], secret=web_app.plaintext_secret).json()
    response = authorize(logged_in, web_app, prompt="none", id_token_hint=first["id_token"])
    assert "code" in query_of(response)


def test_id_token_hint_of_another_user_is_login_required(client, web_app, db):
    from tests.factories import UserFactory

    alice, bob = UserFactory(), UserFactory()
    client.force_login(alice)
    hint = exchange(client, web_app, get_code(client, web_app)["code"], secret=web_app.plaintext_secret).json()["id_token"]
    client.force_login(bob)
    assert query_of(authorize(client, web_app, prompt="none", id_token_hint=hint))["error"] == "login_required"


def test_forged_id_token_hint_is_invalid_request(logged_in, web_app):
    import jwt
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode({"sub": "1"}, key, algorithm="RS256", headers={"kid": "forged"})
    assert query_of(authorize(logged_in, web_app, id_token_hint=forged))["error"] == "invalid_request"


def test_login_hint_prefills_the_login_form(client, web_app):
    response = authorize(client, web_app, login_hint="ada@example.com")
    page = client.get(response["Location"])
    assert page.status_code == 200
    assert b"ada@example.com" in page.content
