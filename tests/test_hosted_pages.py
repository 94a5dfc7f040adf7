"""The hosted pages: login, consent, errors, sign-out, lockout, in English and Chinese.

Every test goes through HTTP with Django's test client, as a browser would.
"""

from datetime import timedelta
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from django.test import Client

from tests.factories import PASSWORD
from tests.helpers import authorize, query_of

ZH = {"HTTP_ACCEPT_LANGUAGE": "zh-Hans"}


class _Forms(HTMLParser):
    """The forms of a page: [{"action", "method", "inputs": [(name, value)], "buttons": [(name, value, text)]}]."""

    def __init__(self):
        super().__init__()
        self.forms, self._button = [], None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.forms.append({"action": attrs.get("action"), "method": attrs.get("method"), "inputs": [], "buttons": []})
        elif tag == "input" and self.forms and attrs.get("name"):
            self.forms[-1]["inputs"].append((attrs["name"], attrs.get("value") or "", attrs.get("type", "text")))
        elif tag == "button" and self.forms:
            self._button = [attrs.get("name"), attrs.get("value"), ""]

    def handle_data(self, data):
        if self._button is not None:
            self._button[2] += data

    def handle_endtag(self, tag):
        if tag == "button" and self._button is not None:
            self.forms[-1]["buttons"].append((self._button[0], self._button[1], self._button[2].strip()))
            self._button = None


def forms_of(response):
    """The page's own forms; the language switcher every page carries is tested in test_ui_locales."""
    parser = _Forms()
    parser.feed(response.content.decode())
    return [form for form in parser.forms if form["action"] != "/i18n/setlang/"]


def submit(client, url, form, button_name=None, **fields):
    """POST a parsed form as a browser would, pressing the button named ``button_name``."""
    data = {name: value for name, value, _type in form["inputs"]}
    data.update(fields)
    for name, value, _text in form["buttons"]:
        if name and name == button_name:
            data[name] = value
    return client.post(url, data)


def assert_hosted_headers(response):
    assert response["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in response["Content-Security-Policy"]
    assert "script-src 'self'" in response["Content-Security-Policy"]


# -- login -------------------------------------------------------------------------


def test_login_page_has_the_contract_fields_csrf_and_no_framing(client, db):
    response = client.get("/accounts/login/", {"next": "/oidc/auth?client_id=x"})
    assert response.status_code == 200
    html = response.content.decode()
    assert 'name="username"' in html
    assert 'name="password"' in html
    assert 'name="csrfmiddlewaretoken"' in html
    assert 'name="next" value="/oidc/auth?client_id=x"' in html
    assert 'lang="en"' in html
    assert "/static/oidc_provider/hosted.css" in html
    assert "<script" not in html
    assert_hosted_headers(response)
    (form,) = forms_of(response)
    assert form["method"] == "post"
    assert any(text == "Sign in" for _n, _v, text in form["buttons"])


def test_login_page_in_chinese(client, db):
    response = client.get("/accounts/login/", **ZH)
    html = response.content.decode()
    assert 'lang="zh-hans"' in html
    assert "密码" in html  # Password
    assert "登录" in html  # Sign in
    assert "Sign in" not in html


def test_login_page_shows_the_brand(client, db, settings):
    settings.OIDC_PROVIDER = {**settings.OIDC_PROVIDER, "SITE_NAME": "Acme ID", "PRIMARY_COLOR": "#aa3300"}
    html = client.get("/accounts/login/").content.decode()
    assert "Acme ID" in html
    assert "--brand: #aa3300" in html


def test_login_hint_prefills_the_username(client, db):
    html = client.get("/accounts/login/", {"login_hint": "ada"}).content.decode()
    assert 'name="username" id="id_username"' in html
    assert 'value="ada"' in html


def test_wrong_password_shows_the_error_and_right_password_goes_to_next(user, db):
    browser = Client(enforce_csrf_checks=True)
    next_url = "/oidc/auth?" + urlencode({"client_id": "abc", "scope": "openid"})
    page = browser.get("/accounts/login/", {"next": next_url})
    (form,) = forms_of(page)

    wrong = submit(browser, "/accounts/login/?" + urlencode({"next": next_url}), form, username=user.username, password="nope")
    assert wrong.status_code == 200
    html = wrong.content.decode()
    assert "Please enter a correct username and password" in html
    assert 'role="alert"' in html
    assert 'aria-describedby="form-errors"' in html
    assert f'value="{user.username}"' in html  # the username is kept, the password is not
    assert 'value="nope"' not in html

    (form,) = forms_of(wrong)
    right = submit(browser, "/accounts/login/", form, username=user.username, password=PASSWORD)
    assert right.status_code == 302
    assert right["Location"] == next_url


def test_wrong_password_in_chinese(client, user):
    response = client.post("/accounts/login/", {"username": user.username, "password": "nope"}, **ZH)
    assert response.status_code == 200
    assert "请输入一个正确的" in response.content.decode()  # Django's own translation of the message


def test_empty_fields_show_field_errors(client, db):
    response = client.post("/accounts/login/", {"username": "", "password": ""})
    html = response.content.decode()
    assert response.status_code == 200
    assert 'aria-invalid="true"' in html
    assert 'id="id_username_errors"' in html and 'id="id_password_errors"' in html
    assert "This field is required." in html


def test_lockout_page_after_too_many_failures(client, user, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post("/accounts/login/", {"username": user.username, "password": "nope"})
    response = client.post("/accounts/login/", {"username": user.username, "password": PASSWORD})
    assert response.status_code == 429
    html = response.content.decode()
    assert "Too many failed sign-in attempts" in html
    assert "locked for 15 minutes" in html
    assert response["X-Frame-Options"] == "DENY"

    zh = client.post("/accounts/login/", {"username": user.username, "password": PASSWORD}, **ZH)
    assert zh.status_code == 429
    assert "登录已锁定 15 分钟" in zh.content.decode()


def _locked_out(client, user, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post("/accounts/login/", {"username": user.username, "password": "nope"})
    return client.post("/accounts/login/", {"username": user.username, "password": PASSWORD})


def test_lockout_page_names_the_account(client, user, settings):
    """The lockout page says which account is locked."""
    html = _locked_out(client, user, settings).content.decode()
    assert f"<strong>{user.username}</strong>" in html


def test_lockout_page_reads_a_cool_off_given_in_hours(client, user, settings):
    """AXES_COOLOFF_TIME may be a number of hours, as django-axes reads it."""
    settings.AXES_COOLOFF_TIME = 0.5
    assert "locked for 30 minutes" in _locked_out(client, user, settings).content.decode()


def test_lockout_page_reads_a_cool_off_from_a_callable(client, user, settings):
    """AXES_COOLOFF_TIME may be a callable given the request, as django-axes calls it."""
    settings.AXES_COOLOFF_TIME = lambda request: timedelta(minutes=45)
    assert "locked for 45 minutes" in _locked_out(client, user, settings).content.decode()


def test_lockout_page_without_a_cool_off_says_an_administrator_unlocks_it(client, user, settings):
    """With no cool-off the lock lasts until an administrator resets it: the page says so and
    gives no duration."""
    settings.AXES_COOLOFF_TIME = None
    response = _locked_out(client, user, settings)
    assert response.status_code == 429
    html = response.content.decode()
    assert "locked until an administrator unlocks it" in html
    assert "minutes" not in html


# -- consent -----------------------------------------------------------------------


def test_consent_page_describes_the_app_and_scopes(logged_in, web_app, user):
    web_app.description = "Team wiki"
    web_app.save()
    response = authorize(logged_in, web_app, scope="openid profile email")
    assert response.status_code == 200
    html = response.content.decode()
    assert f"{web_app.name} wants to access your account" in html
    assert "Team wiki" in html
    assert "See your name and basic profile" in html
    assert "See your email address" in html
    assert web_app.client_id in html
    assert user.username in html
    assert 'name="consent_form" value="1"' in html
    assert_hosted_headers(response)

    consent_form = next(f for f in forms_of(response) if any(n == "consent_form" for n, _v, _t in f["inputs"]))
    assert consent_form["method"] == "post" and consent_form["action"] == ""
    buttons = {name: (value, text) for name, value, text in consent_form["buttons"]}
    assert buttons["allow"] == ("1", "Allow")
    assert buttons["deny"] == ("1", "Deny")
    hidden = {name for name, _v, kind in consent_form["inputs"] if kind == "hidden"}
    assert {"csrfmiddlewaretoken", "client_id", "redirect_uri", "scope", "response_type", "state", "nonce"} <= hidden


def test_consent_page_in_chinese(logged_in, web_app):
    logged_in.defaults.update(ZH)  # authorize() takes query parameters, not headers
    response = authorize(logged_in, web_app, scope="openid profile email")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'lang="zh-hans"' in html
    assert f"{web_app.name} 请求访问你的账号" in html
    assert "查看你的姓名和基本资料" in html
    assert "查看你的电子邮箱地址" in html
    assert 'name="allow"' in html
    assert "允许" in html and "拒绝" in html


def _consent_page(browser, app):
    response = authorize(browser, app, scope="openid profile email")
    assert response.status_code == 200
    form = next(f for f in forms_of(response) if any(n == "consent_form" for n, _v, _t in f["inputs"]))
    url = response.request["PATH_INFO"] + "?" + response.request["QUERY_STRING"]
    return url, form


@pytest.fixture
def browser(user):
    """A logged-in client that enforces CSRF, as a real browser session would."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    return client


def test_approving_the_rendered_consent_form_issues_a_code(browser, web_app):
    url, form = _consent_page(browser, web_app)
    response = submit(browser, url, form, button_name="allow")
    assert response.status_code == 302
    params = query_of(response)
    assert response["Location"].startswith(web_app.redirect_uris.split()[0])
    assert "code" in params and params["state"] == "xyz"


def test_declining_the_rendered_consent_form_sends_access_denied(browser, web_app):
    url, form = _consent_page(browser, web_app)
    response = submit(browser, url, form, button_name="deny")
    assert response.status_code == 302
    params = query_of(response)
    assert params["error"] == "access_denied"
    assert params["state"] == "xyz"


def test_switch_account_form_logs_out_and_returns_to_login(browser, web_app):
    response = authorize(browser, web_app, scope="openid profile email")
    switch = next(f for f in forms_of(response) if f["action"] == "/accounts/logout/")
    out = submit(browser, "/accounts/logout/", switch)
    assert out.status_code == 302
    login_url = urlsplit(out["Location"])
    assert login_url.path == "/accounts/login/"
    assert parse_qs(login_url.query)["next"][0] == response.request["PATH_INFO"] + "?" + response.request["QUERY_STRING"]
    back = authorize(browser, web_app, scope="openid profile email")
    assert back.status_code == 302 and back["Location"].startswith("/accounts/login/")


# -- errors ------------------------------------------------------------------------


def test_unknown_client_gets_the_error_page(client, db):
    response = client.get(
        "/oidc/auth",
        {"client_id": "nope", "redirect_uri": "https://evil.example/cb", "response_type": "code", "scope": "openid"},
    )
    assert response.status_code == 400
    assert "Location" not in response
    html = response.content.decode()
    assert "This sign-in request cannot be completed" in html
    assert "go back and try again, or contact the application" in html
    assert "<code>invalid_request</code>" in html or "<code>invalid_client</code>" in html
    assert [t.name for t in response.templates][0] == "oidc_provider/error.html"
    assert_hosted_headers(response)


def test_unknown_client_error_page_in_chinese(client, db):
    response = client.get("/oidc/auth", {"client_id": "nope", "response_type": "code", "scope": "openid"}, **ZH)
    assert response.status_code == 400
    html = response.content.decode()
    assert 'lang="zh-hans"' in html
    assert "无法完成此登录请求" in html


def test_unregistered_redirect_uri_gets_the_error_page(client, web_app):
    response = authorize(client, web_app, redirect_uri="https://evil.example.com/callback")
    assert response.status_code == 400
    assert "This sign-in request cannot be completed" in response.content.decode()


# -- sign-out ----------------------------------------------------------------------


def test_logged_out_page(browser):
    page = browser.get("/accounts/login/")
    token = page.cookies["csrftoken"].value
    response = browser.post("/accounts/logout/", {"csrfmiddlewaretoken": token})
    assert response.status_code == 200
    html = response.content.decode()
    assert "You are signed out" in html
    assert 'href="/accounts/login/"' in html


def test_logged_out_page_in_chinese(logged_in):
    response = logged_in.post("/accounts/logout/", **ZH)
    assert "你已退出登录" in response.content.decode()


def test_rp_initiated_logout_confirmation(browser, user):
    response = browser.get("/oidc/session/end")
    assert response.status_code == 200
    html = response.content.decode()
    assert "Sign out?" in html
    assert user.username in html
    assert_hosted_headers(response)
    (form,) = forms_of(response)
    buttons = {text: (name, value) for name, value, text in form["buttons"]}
    assert buttons["Sign out"] == ("allow", "true")
    assert buttons["Stay signed in"] == (None, None)

    stay = submit(browser, "/oidc/session/end", form)
    assert "You are still signed in" in stay.content.decode()
    assert "_auth_user_id" in browser.session

    out = submit(browser, "/oidc/session/end", form, button_name="allow")
    assert "_auth_user_id" not in browser.session
    assert out.status_code == 200  # no post_logout_redirect_uri: our own signed-out page
    assert "You are signed out" in out.content.decode()


def test_rp_initiated_logout_names_the_application(logged_in, web_app):
    response = logged_in.get("/oidc/session/end", {"client_id": web_app.client_id}, **ZH)
    assert f"{web_app.name} 请求你退出登录" in response.content.decode()


def test_rp_initiated_logout_with_an_unknown_client_is_an_error_page(logged_in, db):
    bad = logged_in.get("/oidc/session/end", {"client_id": "nope"})
    assert bad.status_code == 400
    html = bad.content.decode()
    assert "This sign-out request cannot be completed" in html
    assert "<code>invalid_request</code>" in html
    assert "_auth_user_id" in logged_in.session
