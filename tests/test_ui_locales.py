"""The hosted pages' language: ui_locales (OIDC Core 3.1.2.1) and the language switcher."""

from django.test import Client

from tests.helpers import authorize

LOGIN_TITLE_ZH = "登录"


def test_ui_locales_carries_to_the_login_page_in_the_first_language_it_speaks(web_app):
    """OIDC Core 3.1.2.1: ui_locales lists the End-User's preferred languages, in order; the
    pages take the first one they speak (fr is not spoken, zh-CN falls back to zh-Hans)."""
    client = Client()
    response = authorize(client, web_app, ui_locales="fr zh-CN en", login_hint="ada@example.com")
    assert response.status_code == 302 and "ui_locales=fr+zh-CN+en" in response["Location"]
    page = client.get(response["Location"])
    html = page.content.decode()
    assert page["Content-Language"] == "zh-hans"
    assert '<html lang="zh-hans"' in html and LOGIN_TITLE_ZH in html
    assert 'value="ada@example.com"' in html


def test_without_ui_locales_the_browsers_language_holds(web_app):
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    page = client.get(authorize(client, web_app)["Location"])
    assert page["Content-Language"] == "en"


def test_a_language_no_page_speaks_leaves_the_browsers(web_app):
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    page = client.get(authorize(client, web_app, ui_locales="fr de")["Location"])
    assert page["Content-Language"] == "en"


def test_the_consent_page_speaks_the_ui_locales_language(logged_in, web_app):
    response = authorize(logged_in, web_app, ui_locales="zh-Hans")
    assert response.status_code == 200
    assert response["Content-Language"] == "zh-hans"


def test_the_language_switcher_changes_the_pages_language_and_wins_over_ui_locales(web_app):
    """A person's own choice wins over the relying party's hint; the switcher is a plain form
    (no JavaScript) with CSRF, and brings the person back to the page they were on."""
    client = Client(HTTP_ACCEPT_LANGUAGE="en", enforce_csrf_checks=True)
    login_url = authorize(client, web_app, ui_locales="zh-Hans")["Location"]
    page = client.get(login_url)
    html = page.content.decode()
    assert 'action="/i18n/setlang/"' in html and 'name="language"' in html
    token = page.cookies["csrftoken"].value
    response = client.post("/i18n/setlang/", {"language": "en", "next": login_url, "csrfmiddlewaretoken": token})
    assert response.status_code == 302 and response["Location"] == login_url
    assert client.get(login_url)["Content-Language"] == "en"


def test_the_language_switcher_refuses_a_post_without_csrf(web_app):
    client = Client(enforce_csrf_checks=True)
    response = client.post("/i18n/setlang/", {"language": "zh-hans", "next": "/accounts/login/"})
    assert response.status_code == 403
