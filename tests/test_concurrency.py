"""Races on one code, one refresh token, and a burst of client credentials, on a live server.

The live server (``tests.live``: gunicorn, 4 workers x 4 threads) gets its own fresh
database: SQLite, or on PostgreSQL when DATABASE_URL says so (``.ci/run`` runs the suite both
ways). Single use is decided by the store's write that saves the tokens (a code's DELETE, a
refresh token's revoking UPDATE, each counting the rows it changed), so it is raced on both.
Requests are released together by a barrier; every request has a timeout, so a deadlock
shows up as a failure, not a hang.
"""

import threading
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests

from .live import front_channel, live_provider, live_user  # noqa: F401


REDIRECT = "https://rp.example.com/race"
REQUEST_TIMEOUT = 60


def burst(n, request):
    """Run request(i) n times at once (released by a barrier); returns the responses in order."""
    barrier = threading.Barrier(n, timeout=30)

    def one(i):
        with requests.Session() as session:
            barrier.wait()
            return request(session, i)

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(one, range(n), timeout=REQUEST_TIMEOUT * 2))


def statuses(responses):
    return sorted(r.status_code for r in responses)


@pytest.fixture
def race_app(live_provider):
    return live_provider.create_app(
        "Race", "web", grants=["authorization_code", "client_credentials", "refresh_token"],
        redirect_uris=[REDIRECT], skip_consent=True,
    )


@pytest.fixture
def metadata(live_provider):
    return requests.get(live_provider.url("/oidc/.well-known/openid-configuration"), timeout=REQUEST_TIMEOUT).json()


def get_code(metadata, app, user):
    query = urlencode({"client_id": app["client_id"], "redirect_uri": REDIRECT, "response_type": "code",
                       "scope": "openid", "state": "race", "nonce": "n"})
    with requests.Session() as browser:
        final = front_channel(browser, f"{metadata['authorization_endpoint']}?{query}", user, REDIRECT)
    return parse_qs(urlsplit(final).query)["code"][0]


def test_twenty_parallel_exchanges_of_one_code(live_provider, live_user, race_app, metadata):
    code = get_code(metadata, race_app, live_user)
    auth = (race_app["client_id"], race_app["client_secret"])
    before = live_provider.token_counts(race_app["client_id"])

    responses = burst(20, lambda s, i: s.post(metadata["token_endpoint"], data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
    }, auth=auth, timeout=REQUEST_TIMEOUT))

    assert all(r.status_code < 500 for r in responses), statuses(responses)
    winners = [r for r in responses if r.status_code == 200]
    assert len(winners) == 1, statuses(responses)
    assert all(r.json()["error"] == "invalid_grant" for r in responses if r.status_code != 200)
    after = live_provider.token_counts(race_app["client_id"])
    # The losers left nothing: at most the winner's rows (a replay may have revoked them since).
    assert after["access"] - before["access"] <= 1, after
    assert after["refresh"] - before["refresh"] <= 1, after
    assert after["id"] - before["id"] <= 1, after
    assert after["grants"] == 0, "the code is spent"


def first_tokens(metadata, app, user):
    code = get_code(metadata, app, user)
    response = requests.post(metadata["token_endpoint"], data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
    }, auth=(app["client_id"], app["client_secret"]), timeout=REQUEST_TIMEOUT)
    assert response.status_code == 200, response.text
    return response.json()


def refresh_burst(metadata, app, refresh_token, n=20):
    auth = (app["client_id"], app["client_secret"])
    responses = burst(n, lambda s, i: s.post(metadata["token_endpoint"], data={
        "grant_type": "refresh_token", "refresh_token": refresh_token,
    }, auth=auth, timeout=REQUEST_TIMEOUT))
    assert all(r.status_code < 500 for r in responses), statuses(responses)
    assert all(r.json()["error"] == "invalid_grant" for r in responses if r.status_code != 200)
    return [r.json() for r in responses if r.status_code == 200]


def test_twenty_parallel_uses_of_one_refresh_token_give_one_new_token(live_provider, live_user, race_app, metadata):
    # Three rounds, so that a lucky schedule cannot hide the race.
    for _ in range(3):
        first = first_tokens(metadata, race_app, live_user)
        winners = refresh_burst(metadata, race_app, first["refresh_token"])
        assert len(winners) == 1, f"{len(winners)} of 20 got tokens, {len({w['access_token'] for w in winners})} distinct"


def test_parallel_refresh_replays_revoke_the_family(live_provider, live_user, race_app, metadata):
    first = first_tokens(metadata, race_app, live_user)
    winners = refresh_burst(metadata, race_app, first["refresh_token"])
    assert winners, "one of the requests rotates the token"
    auth = (race_app["client_id"], race_app["client_secret"])
    # The others were replays of a rotated-out token: the whole family is revoked, new tokens too.
    for refresh_token in {w["refresh_token"] for w in winners}:
        again = requests.post(metadata["token_endpoint"], data={"grant_type": "refresh_token", "refresh_token": refresh_token},
                              auth=auth, timeout=REQUEST_TIMEOUT)
        assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    for access_token in {w["access_token"] for w in winners}:
        me = requests.get(metadata["userinfo_endpoint"], headers={"Authorization": f"Bearer {access_token}"},
                          timeout=REQUEST_TIMEOUT)
        assert me.status_code == 401
    counts = live_provider.token_counts(race_app["client_id"])
    assert counts["refresh_active"] == 0 and counts["access"] == 0, counts


def test_fifty_parallel_client_credentials(live_provider, race_app, metadata):
    auth = (race_app["client_id"], race_app["client_secret"])
    before = live_provider.token_counts(race_app["client_id"])

    responses = burst(50, lambda s, i: s.post(metadata["token_endpoint"], data={
        "grant_type": "client_credentials", "scope": "profile",
    }, auth=auth, timeout=REQUEST_TIMEOUT))

    assert statuses(responses) == [200] * 50, [r.text[:200] for r in responses if r.status_code != 200]
    tokens = {r.json()["access_token"] for r in responses}
    assert len(tokens) == 50
    assert all("refresh_token" not in r.json() and "id_token" not in r.json() for r in responses)
    after = live_provider.token_counts(race_app["client_id"])
    assert after["access"] - before["access"] == 50


def test_fifty_parallel_access_key_requests(live_provider, metadata):
    key = live_provider.manage_json("accesskey", "create", "--account", "race-burst", "--scope", "read")

    responses = burst(50, lambda s, i: s.post(metadata["token_endpoint"], data={
        "grant_type": "client_credentials", "scope": "read",
    }, auth=(key["access_key"], key["secret_key"]), timeout=REQUEST_TIMEOUT))

    assert statuses(responses) == [200] * 50, [r.text[:200] for r in responses if r.status_code != 200]
    assert len({r.json()["access_token"] for r in responses}) == 50
