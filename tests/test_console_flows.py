"""The flow chooser's decision tree, the snippets and the SVG builders, as pure functions."""

from datetime import date

import pytest

from console import charts, flows
from oidc_provider import policy

Y, N = flows.YES, flows.NO


@pytest.mark.parametrize(
    "answers, expected_type, expected_grants",
    [
        # Machine to machine: a backend, private code, no end users.
        ({"backend": Y, "public_code": N, "end_users": N}, policy.SERVICE, (policy.CLIENT_CREDENTIALS,)),
        # A server-side web application.
        ({"backend": Y, "public_code": N, "end_users": Y, "own_both": N}, policy.WEB, (policy.AUTHORIZATION_CODE, policy.REFRESH_TOKEN)),
        # A single-page application in a current browser.
        ({"backend": N, "client_kind": policy.SPA, "web_crypto": Y}, policy.SPA, (policy.AUTHORIZATION_CODE,)),
        # An SPA with a backend that does not do the sign-in: its code is public.
        ({"backend": Y, "public_code": Y, "client_kind": policy.SPA, "web_crypto": Y}, policy.SPA, (policy.AUTHORIZATION_CODE,)),
        # An SPA for browsers without Web Crypto: implicit.
        ({"backend": N, "client_kind": policy.SPA, "web_crypto": N}, policy.SPA, (policy.IMPLICIT,)),
        # A native application.
        ({"backend": N, "client_kind": policy.NATIVE, "own_both": N}, policy.NATIVE, (policy.AUTHORIZATION_CODE, policy.REFRESH_TOKEN)),
    ],
)
def test_answers_lead_to_the_docs_type_and_grants(answers, expected_type, expected_grants):
    assert flows.next_question(answers) is None
    result = flows.recommend(answers)
    assert result.application_type == expected_type
    assert result.grants == expected_grants
    assert result.reasons
    # The docs' recommendation is never something the default policy forbids.
    for grant in result.grants:
        assert policy.DEFAULT_POLICY[(expected_type, grant)] != policy.FORBIDDEN


def test_pkce_is_part_of_every_code_recommendation():
    for answers in (
        {"backend": N, "client_kind": policy.SPA, "web_crypto": Y},
        {"backend": N, "client_kind": policy.NATIVE, "own_both": N},
        {"backend": Y, "public_code": N, "end_users": Y, "own_both": N},
    ):
        assert flows.recommend(answers).pkce


@pytest.mark.parametrize(
    "answers, expected_type",
    [
        ({"backend": Y, "public_code": N, "end_users": Y, "own_both": Y}, policy.WEB),
        ({"backend": N, "client_kind": policy.NATIVE, "own_both": Y}, policy.NATIVE),
    ],
)
def test_owning_both_offers_the_password_grant_unticked(answers, expected_type):
    result = flows.recommend(answers)
    assert result.application_type == expected_type
    assert policy.PASSWORD not in result.grants
    assert result.optional_grants == (policy.PASSWORD,)
    assert "own both" in str(result.optional_reasons[policy.PASSWORD])
    assert policy.DEFAULT_POLICY[(expected_type, policy.PASSWORD)] == policy.ALLOWED


def test_questions_come_in_the_docs_order_and_only_when_they_apply():
    assert flows.next_question({}).key == flows.BACKEND
    assert flows.next_question({"backend": Y}).key == flows.PUBLIC_CODE
    # Without a backend the code is public: the next question is SPA or native.
    assert flows.next_question({"backend": N}).key == flows.CLIENT_KIND
    assert flows.next_question({"backend": N, "client_kind": policy.SPA}).key == flows.WEB_CRYPTO
    assert flows.next_question({"backend": Y, "public_code": N}).key == flows.END_USERS
    assert flows.next_question({"backend": Y, "public_code": N, "end_users": Y}).key == flows.OWN_BOTH
    # No end users: nothing more to ask.
    assert flows.next_question({"backend": Y, "public_code": N, "end_users": N}) is None
    order = [q.key for q in flows.QUESTIONS]
    assert order == ["backend", "public_code", "client_kind", "web_crypto", "end_users", "own_both"]


def test_incomplete_or_bad_answers_give_no_recommendation():
    assert flows.recommend({}) is None
    assert flows.recommend({"backend": Y}) is None
    assert flows.recommend({"backend": "maybe"}) is None
    assert flows.clean_answers({"backend": "maybe", "end_users": Y}) == {}


def test_answers_to_questions_that_no_longer_apply_are_dropped():
    # Answered as an SPA, then the first answer changed to "has a backend, private code".
    raw = {"backend": Y, "public_code": N, "client_kind": policy.SPA, "web_crypto": N, "end_users": N}
    assert flows.clean_answers(raw) == {"backend": Y, "public_code": N, "end_users": N}
    assert flows.recommend(raw).application_type == policy.SERVICE


def test_asked_questions_shows_answered_then_next():
    shown = [q.key for q in flows.asked_questions({"backend": N})]
    assert shown == ["backend", "client_kind"]


def test_every_grant_has_a_diagram_for_every_type_that_may_hold_it():
    for (application_type, grant), state in policy.DEFAULT_POLICY.items():
        if state == policy.FORBIDDEN:
            continue
        key = flows.diagram_key(grant, application_type)
        diagram = flows.DIAGRAMS[key]
        lanes = {k for k, _label in diagram.lanes}
        for step in diagram.steps:
            assert step.source in lanes and step.target in lanes
    assert flows.diagram_key(policy.AUTHORIZATION_CODE, policy.SPA) == "code_pkce_spa"
    assert flows.diagram_key(policy.AUTHORIZATION_CODE, policy.WEB) == "code_web"


def test_sequence_diagram_is_an_svg_with_numbered_steps_and_escaped_text():
    diagram = flows.DIAGRAMS["code_pkce_spa"]
    svg = str(charts.sequence_diagram(diagram))
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert "<script" not in svg
    for number in range(1, len(diagram.steps) + 1):
        assert f">{number}</text>" in svg
    # "Bearer <access token>" is text, escaped.
    assert "&lt;access token&gt;" in svg
    assert "Identity provider" in svg


def test_stacked_bar_chart_with_and_without_data():
    days = charts.last_days(date(2024, 5, 14), 14)
    assert days[0] == date(2024, 5, 1) and days[-1] == date(2024, 5, 14)
    empty = str(charts.stacked_bar_chart(days, [("authorization_code", "Code", [0] * 14)], title="T", empty_text="Nothing yet"))
    assert empty.startswith("<svg") and "Nothing yet" in empty and "<rect class=\"bar\"" not in empty
    values = [0] * 13 + [5]
    full = str(
        charts.stacked_bar_chart(
            days,
            [("authorization_code", "Code", values), ("client_credentials", "<CC>", [1] * 14)],
            title="Tokens & more",
            empty_text="Nothing yet",
        )
    )
    assert "Nothing yet" not in full
    assert full.count('<rect class="bar"') == 15
    assert "&lt;CC&gt; (14)" in full and "Tokens &amp; more" in full


@pytest.mark.parametrize("value, top", [(0, 4), (3, 4), (7, 8), (9, 20), (100, 100), (101, 200)])
def test_nice_ceiling(value, top):
    got, step = charts.nice_ceiling(value)
    assert got == top and got >= value and got % step == 0


def test_snippets_for_a_confidential_web_app():
    snippets = {
        s.key: s.text
        for s in flows.snippets(
            issuer="https://id.example.com/oidc",
            client_id="abc",
            application_type=policy.WEB,
            grants=[policy.AUTHORIZATION_CODE, policy.REFRESH_TOKEN],
            redirect_uris=["https://app.example.com/cb"],
            secret="s3cret",
        )
    }
    assert "code_challenge_method=S256" in snippets["authorize_url"]
    assert "redirect_uri=https://app.example.com/cb" in snippets["authorize_url"]
    assert "-u abc:s3cret" in snippets["token_curl"] and "code_verifier=$CODE_VERIFIER" in snippets["token_curl"]
    assert 'server_metadata_url="https://id.example.com/oidc/.well-known/openid-configuration"' in snippets["authlib"]
    moz = snippets["mozilla_django_oidc"]
    for name in (
        "OIDC_RP_CLIENT_ID",
        "OIDC_RP_CLIENT_SECRET",
        'OIDC_OP_AUTHORIZATION_ENDPOINT = "https://id.example.com/oidc/auth"',
        'OIDC_OP_TOKEN_ENDPOINT = "https://id.example.com/oidc/token"',
        'OIDC_OP_USER_ENDPOINT = "https://id.example.com/oidc/me"',
        'OIDC_OP_JWKS_ENDPOINT = "https://id.example.com/oidc/.well-known/jwks.json"',
        'OIDC_RP_SIGN_ALGO = "RS256"',
    ):
        assert name in moz
    # Settings read the secret from the environment; they are meant to be committed.
    assert "s3cret" not in moz and "s3cret" not in snippets["authlib"]


def test_snippets_without_the_secret_use_a_placeholder_and_public_clients_send_client_id():
    service = flows.snippets(
        issuer="https://id.example.com/oidc", client_id="svc", application_type=policy.SERVICE, grants=[policy.CLIENT_CREDENTIALS]
    )
    assert service[0].text == (
        "curl -u 'svc:<CLIENT_SECRET>' -d grant_type=client_credentials -d scope=read https://id.example.com/oidc/token"
    )
    spa = {s.key: s.text for s in flows.snippets(
        issuer="https://id.example.com/oidc", client_id="spa1", application_type=policy.SPA, grants=[policy.AUTHORIZATION_CODE]
    )}
    assert "-d client_id=spa1" in spa["token_curl"] and "  -u " not in spa["token_curl"]
    assert "authlib" not in spa
