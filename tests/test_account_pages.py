"""The account pages a new user meets outside any application: the account page, signing out
by hand, an expired form, a lockout, a missing page and a server error; in English and Chinese.

Every page test goes through HTTP with Django's test client, as a browser would. The module is
also a URLconf (the site's, plus one view that fails) for the server-error test.
"""

from datetime import timedelta

import pytest
from django.test import Client, RequestFactory
from django.urls import include, path
from django.utils import timezone, translation

from oidc_provider import throttle
from oidc_provider.models import Consent
from oidc_provider.views import pages
from tests.factories import PASSWORD, ApplicationFactory, UserFactory
from tests.test_hosted_pages import ZH, assert_hosted_headers, forms_of, submit


def _fail(request):
    raise RuntimeError("boom")


urlpatterns = [path("fail/", _fail), path("", include("project.urls"))]
handler404 = "oidc_provider.views.pages.page_not_found"
handler500 = "oidc_provider.views.pages.server_error"


@pytest.fixture
def browser(user):
    """A signed-in client that enforces CSRF, as a real browser session would."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    return client


def signed_in(client):
    return "_auth_user_id" in client.session


def assert_page_basics(response):
    """What every hosted page keeps: the stylesheet, no script, no framing."""
    html = response.content.decode()
    assert "/static/oidc_provider/hosted.css" in html
    assert 'name="viewport"' in html
    assert "<script" not in html
    assert_hosted_headers(response)


def csrf_token_of(form):
    return next(value for name, value, _type in form["inputs"] if name == "csrfmiddlewaretoken")


# -- sign-out by GET ---------------------------------------------------------------------


def test_opening_the_sign_out_address_asks_first_and_does_not_sign_out(browser, user):
    """A GET of /accounts/logout/ (a link, a prefetch) only asks; it never ends the session."""
    response = browser.get("/accounts/logout/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "Sign out?" in html
    assert f"<strong>{user.username}</strong>" in html
    assert_page_basics(response)
    (form,) = forms_of(response)
    assert form["method"] == "post" and form["action"] == ""
    assert csrf_token_of(form)
    assert [text for _n, _v, text in form["buttons"]] == ["Sign out"]
    assert 'href="/accounts/"' in html  # staying signed in is a plain link
    assert signed_in(browser)


def test_the_sign_out_question_in_chinese(browser):
    """The sign-out question speaks Chinese when the browser asks for it."""
    html = browser.get("/accounts/logout/", **ZH).content.decode()
    assert 'lang="zh-hans"' in html
    assert "退出登录？" in html and "保持登录" in html
    assert "Sign out" not in html


def test_submitting_the_sign_out_question_signs_out(browser):
    """The page's own form (with its CSRF token) signs out and shows the signed-out page."""
    page = browser.get("/accounts/logout/")
    (form,) = forms_of(page)
    response = submit(browser, "/accounts/logout/", form)
    assert response.status_code == 200
    assert "You are signed out" in response.content.decode()
    assert not signed_in(browser)


def test_signing_out_without_the_csrf_token_is_refused_and_keeps_the_session(browser):
    """Another site cannot sign the user out: a POST without the token is a 403 and changes nothing."""
    response = browser.post("/accounts/logout/")
    assert response.status_code == 403
    assert signed_in(browser)


def test_a_signed_out_visitor_is_told_they_are_not_signed_in(client, db):
    """Nothing to sign out of: the page says so and links to the sign-in page, with no form."""
    response = client.get("/accounts/logout/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "You are not signed in" in html
    assert 'href="/accounts/login/"' in html
    assert forms_of(response) == []
    assert_page_basics(response)

    zh = client.get("/accounts/logout/", **ZH).content.decode()
    assert "你尚未登录" in zh and 'href="/accounts/login/"' in zh


@pytest.mark.parametrize("next_url", ["https://evil.example.com/", "//evil.example.com/", "javascript:alert(1)"])
def test_the_sign_out_question_keeps_only_a_next_on_this_site(browser, next_url):
    """A `next` to elsewhere is dropped from the form; one on this site is carried to the POST."""
    (form,) = forms_of(browser.get("/accounts/logout/", {"next": next_url}))
    assert "next" not in {name for name, _v, _t in form["inputs"]}

    (form,) = forms_of(browser.get("/accounts/logout/", {"next": "/accounts/login/"}))
    assert ("next", "/accounts/login/", "hidden") in form["inputs"]
    response = submit(browser, "/accounts/logout/", form)
    assert response.status_code == 302 and response["Location"] == "/accounts/login/"


def test_signing_out_by_post_still_works_without_asking(logged_in):
    """The POST that existed before the question (links from the consent page) signs out at once."""
    response = logged_in.post("/accounts/logout/")
    assert response.status_code == 200
    assert "You are signed out" in response.content.decode()
    assert not signed_in(logged_in)


# -- the account page -------------------------------------------------------------------


def test_signing_in_without_next_lands_on_the_account_page(client, user):
    """With no `next`, a successful sign-in goes to /accounts/, not to discovery JSON."""
    response = client.post("/accounts/login/", {"username": user.username, "password": PASSWORD})
    assert response.status_code == 302
    assert response["Location"] == "/accounts/"
    page = client.get(response["Location"])
    assert page.status_code == 200 and page["Content-Type"].startswith("text/html")


def test_signing_in_with_next_on_this_site_goes_there_exactly(client, user):
    """A `next` on this site is followed exactly, query and all."""
    next_url = "/oidc/auth?client_id=abc&scope=openid+profile&state=x%2Fy"
    response = client.post("/accounts/login/", {"username": user.username, "password": PASSWORD, "next": next_url})
    assert response.status_code == 302
    assert response["Location"] == next_url


@pytest.mark.parametrize("next_url", [
    "https://evil.example.com/",
    "//evil.example.com/",
    "/\\evil.example.com",
    "\\\\evil.example.com",
    "https:evil.example.com",
    "http:///evil.example.com",
    "javascript:alert(1)",
    " https://evil.example.com",
    "https://testserver.evil.example.com/",
])
def test_signing_in_with_next_to_another_site_lands_on_the_account_page(client, user, next_url):
    """No open redirect: a `next` off this site is ignored, in the query and in the form."""
    response = client.post("/accounts/login/?" + f"next={next_url}",
                           {"username": user.username, "password": PASSWORD, "next": next_url})
    assert response.status_code == 302
    assert response["Location"] == "/accounts/"


def test_the_account_page_shows_who_is_signed_in_and_the_applications_they_allowed(logged_in, user):
    """Who is signed in, each application the user allowed (name and when), never another
    user's consents or an application's secret, and a sign-out form with CSRF."""
    wiki = ApplicationFactory(name="Team wiki")
    crm = ApplicationFactory(name="Sales CRM")
    ApplicationFactory(name="Not yours")
    Consent.objects.create(user=user, application=wiki, scope="openid profile")
    Consent.objects.create(user=user, application=crm, scope="openid")
    Consent.objects.create(user=UserFactory(), application=ApplicationFactory(name="Someone else's app"), scope="openid")

    response = logged_in.get("/accounts/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "Your account" in html
    assert f"<strong>{user.username}</strong>" in html
    assert "Team wiki" in html and "Sales CRM" in html
    assert "Not yours" not in html and "Someone else" not in html
    assert html.count("Allowed ") == 2
    assert str(timezone.now().year) in html
    assert wiki.plaintext_secret not in html and wiki.client_secret not in html
    assert "no-cache" in response["Cache-Control"] or "private" in response["Cache-Control"]
    assert_page_basics(response)
    (form,) = forms_of(response)
    assert form["action"] == "/accounts/logout/" and form["method"] == "post"
    assert csrf_token_of(form)
    assert [text for _n, _v, text in form["buttons"]] == ["Sign out"]


def test_the_account_page_in_chinese(logged_in, user):
    """The account page speaks Chinese when the browser asks for it."""
    Consent.objects.create(user=user, application=ApplicationFactory(name="Team wiki"), scope="openid")
    html = logged_in.get("/accounts/", **ZH).content.decode()
    assert 'lang="zh-hans"' in html
    assert "你的账号" in html and "你已授权的应用" in html and "授权于" in html and "退出登录" in html
    assert "Your account" not in html


def test_the_account_page_says_when_no_application_was_allowed(logged_in):
    """A new user sees that no application has access yet, rather than an empty list."""
    html = logged_in.get("/accounts/").content.decode()
    assert "You have not allowed any application" in html
    zh = logged_in.get("/accounts/", **ZH).content.decode()
    assert "你尚未授权任何应用" in zh


def test_the_account_pages_sign_out_button_signs_out(browser):
    """The account page's own form signs out (its CSRF token is accepted)."""
    (form,) = forms_of(browser.get("/accounts/"))
    response = submit(browser, form["action"], form)
    assert response.status_code == 200
    assert not signed_in(browser)
    assert browser.get("/accounts/").status_code == 302


def test_anonymous_visitors_of_the_account_page_go_to_the_login_page(client, db):
    """The account page is for the signed-in user only; others sign in first and come back."""
    response = client.get("/accounts/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/accounts/"


def test_djangos_default_profile_address_leads_to_the_account_page(logged_in):
    """/accounts/profile/ (Django's default LOGIN_REDIRECT_URL) goes to the account page."""
    response = logged_in.get("/accounts/profile/")
    assert response.status_code == 302 and response["Location"] == "/accounts/"


def test_the_account_page_changes_nothing_by_post(logged_in):
    """The page only shows; a POST to it is refused."""
    assert logged_in.post("/accounts/").status_code == 405


# -- an expired form (CSRF failure) -------------------------------------------------------


def test_an_expired_form_gets_its_own_page_that_says_how_to_fix_it(user):
    """A CSRF failure says the form expired or cookies are blocked and what to do: 403, not the
    authorization error's advice."""
    client = Client(enforce_csrf_checks=True)
    response = client.post("/accounts/login/", {"username": user.username, "password": PASSWORD})
    assert response.status_code == 403
    html = response.content.decode()
    assert "This form has expired" in html
    assert "cookies" in html
    for step in ("Go back", "Reload", "cookies are allowed for this site", "Try again"):
        assert step in html
    assert "If you followed a link from an application" not in html
    assert "CSRF" not in html  # Django's reason names the check, not the fix
    assert_page_basics(response)
    assert not signed_in(client)


def test_an_expired_form_page_in_chinese(user):
    """The expired-form page speaks Chinese when the browser asks for it."""
    client = Client(enforce_csrf_checks=True)
    client.get("/accounts/login/")  # a CSRF cookie, but a form from elsewhere
    response = client.post("/accounts/login/", {"csrfmiddlewaretoken": "x" * 64}, **ZH)
    assert response.status_code == 403
    html = response.content.decode()
    assert "此表单已过期" in html and "Cookie" in html and "刷新" in html
    assert "This form has expired" not in html


# -- lockout ------------------------------------------------------------------------------


def _lock_out(client, user, settings, **extra):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post("/accounts/login/", {"username": user.username, "password": "nope"})
    return client.post("/accounts/login/", {"username": user.username, "password": PASSWORD}, **extra)


def test_the_lockout_page_says_what_is_locked_and_that_waiting_is_all_it_takes(client, user, settings):
    """The lock is per username and address and ends by itself after the cool-off; the page
    says so and sends no one to a password reset that unlocks nothing."""
    response = _lock_out(client, user, settings)
    assert response.status_code == 429
    html = response.content.decode()
    assert "for this username from this address is locked for 15 minutes" in html
    assert "the lock ends by itself" in html
    assert "this username from other addresses, are not affected" in html
    assert "password" not in html.lower().replace('type="password"', "")
    assert_page_basics(response)


def test_the_lockout_page_in_chinese(client, user, settings):
    """The lockout page speaks Chinese when the browser asks for it."""
    html = _lock_out(client, user, settings, **ZH).content.decode()
    assert "此用户名从此地址的登录已锁定 15 分钟" in html
    assert "锁定会自动解除" in html
    assert "重置" not in html


def test_the_address_throttle_page_says_the_address_is_paused(client, user, db):
    """The per-address throttle (every username) is a pause of up to its window, said as such."""
    for _ in range(throttle.LOGIN_LIMIT + 1):
        throttle.record_failure("127.0.0.1")
    response = client.post("/accounts/login/", {"username": user.username, "password": PASSWORD})
    assert response.status_code == 429
    html = response.content.decode()
    assert "Sign-in from this address is paused for up to 15 minutes" in html
    assert "the pause ends by itself" in html
    zh = client.post("/accounts/login/", {"username": user.username, "password": PASSWORD}, **ZH).content.decode()
    assert "此地址的登录已暂停，最长 15 分钟" in zh


# -- a missing page -----------------------------------------------------------------------


def test_a_missing_page_gets_the_hosted_404_page(client, db, settings):
    """With DEBUG off, an unknown address gets a hosted page (404) linking to the account page."""
    settings.DEBUG = False
    response = client.get("/no/such/page")
    assert response.status_code == 404
    html = response.content.decode()
    assert "Page not found" in html
    assert 'href="/accounts/"' in html
    assert 'lang="en"' in html
    assert_page_basics(response)


def test_the_404_page_in_chinese(client, db, settings):
    """The 404 page speaks Chinese when the browser asks for it."""
    settings.DEBUG = False
    response = client.get("/no/such/page", **ZH)
    assert response.status_code == 404
    html = response.content.decode()
    assert "找不到页面" in html and "前往你的账号" in html
    assert "Page not found" not in html


@pytest.mark.parametrize("address", [
    "/%ff%fe/",
    "/accounts/%3Cscript%3Ealert(1)%3C/script%3E",
    "/" + "a" * 5000,
    "/oidc/nothing-here?next=https://evil.example.com/",
])
def test_any_missing_address_is_a_404_never_a_500(client, db, settings, address):
    """Odd addresses are 404 pages too, and nothing of them becomes markup."""
    settings.DEBUG = False
    response = client.get(address)
    assert response.status_code == 404
    assert "<script" not in response.content.decode()


# -- a server error -----------------------------------------------------------------------


def test_the_500_page_needs_no_request_context_or_database():
    """handler500 renders its page with no database (this test may not touch one), in the
    language in force."""
    request = RequestFactory().get("/anything")
    response = pages.server_error(request)
    assert response.status_code == 500
    html = response.content.decode()
    assert "Something went wrong" in html
    assert 'href="/accounts/"' in html
    assert 'name="viewport"' in html and "<script" not in html
    assert response["X-Frame-Options"] == "DENY"

    with translation.override("zh-hans"):
        zh = pages.server_error(request).content.decode()
    assert "出错了" in zh and 'lang="zh-hans"' in zh


@pytest.mark.urls(__name__)
def test_a_failing_view_gets_the_hosted_500_page_in_the_users_language(db, settings):
    """With DEBUG off, an unexpected error is the hosted 500 page, in the browser's language."""
    settings.DEBUG = False
    client = Client(raise_request_exception=False)
    response = client.get("/fail/")
    assert response.status_code == 500
    assert "Something went wrong" in response.content.decode()
    assert "boom" not in response.content.decode()

    zh = client.get("/fail/", **ZH)
    assert zh.status_code == 500 and "出错了" in zh.content.decode()


# -- the cool-off, as a day-to-day number ------------------------------------------------


def test_the_lockout_page_reads_the_cool_off_of_the_settings(client, user, settings):
    """The duration on the page is AXES_COOLOFF_TIME's, not a fixed 15."""
    settings.AXES_COOLOFF_TIME = timedelta(minutes=20)
    assert "is locked for 20 minutes" in _lock_out(client, user, settings).content.decode()
