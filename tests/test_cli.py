"""The command line: oidc_app, oidc_policy, oidc_keys and oidc_quickstart, each with --json."""

import json
import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError

from oidc_provider import keys, policy, secrets
from oidc_provider.models import Application, GrantPolicy, SigningKey


pytestmark = pytest.mark.django_db

REPO_ROOT = Path(__file__).resolve().parents[1]

URIS = {
    policy.WEB: ["https://rp.example.com/callback"],
    policy.SPA: ["http://127.0.0.1:5173/callback"],
    policy.NATIVE: ["com.example.app:/callback"],
    policy.SERVICE: [],
}


def run(*args):
    """Call a command as the CLI would; returns (stdout, stderr)."""
    out, err = StringIO(), StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def run_json(*args):
    out, err = run(*args, "--json")
    return json.loads(out), err


def create_args(name, app_type, *extra):
    args = ["oidc_app", "create", "--name", name, "--type", app_type]
    for uri in URIS[app_type]:
        args += ["--redirect-uri", uri]
    return [*args, *extra]


# -- oidc_app -------------------------------------------------------------------------


@pytest.mark.parametrize("app_type", [policy.WEB, policy.SERVICE])
def test_create_confidential_prints_a_secret_that_authenticates(app_type):
    data, _ = run_json(*create_args("Backend", app_type))

    app = Application.objects.get(client_id=data["client_id"])
    assert data["application_type"] == app.application_type == app_type
    assert app.client_type == Application.CLIENT_CONFIDENTIAL
    assert data["client_secret"]
    assert app.client_secret != data["client_secret"]
    assert secrets.verify(data["client_secret"], app.client_secret) is True
    assert data["redirect_uris"] == URIS[app_type] == app.redirect_uris.split()


@pytest.mark.parametrize("app_type", [policy.SPA, policy.NATIVE])
def test_create_public_has_no_secret(app_type):
    data, _ = run_json(*create_args("Frontend", app_type))

    app = Application.objects.get(client_id=data["client_id"])
    assert data["client_secret"] is None
    assert app.client_secret == ""
    assert app.client_type == Application.CLIENT_PUBLIC


@pytest.mark.parametrize("app_type", policy.APPLICATION_TYPES)
def test_create_without_grant_gives_the_recommended_grants(app_type):
    data, _ = run_json(*create_args("Default grants", app_type))

    expected = [g for g in policy.GRANTS if policy.DEFAULT_POLICY[(app_type, g)] == policy.RECOMMENDED]
    assert data["grant_types"] == expected
    assert Application.objects.get(client_id=data["client_id"]).grant_types == expected


def test_create_with_an_allowed_grant_and_options():
    data, err = run_json(
        *create_args("First party", policy.WEB, "--grant", "authorization_code", "--grant", "password",
                     "--post-logout-redirect-uri", "https://rp.example.com/bye", "--skip-consent")
    )

    app = Application.objects.get(client_id=data["client_id"])
    assert app.grant_types == data["grant_types"] == ["authorization_code", "password"]
    assert app.post_logout_redirect_uris == "https://rp.example.com/bye"
    assert app.skip_authorization is True
    assert policy.may_use(app, policy.PASSWORD)
    # Allowed but not recommended: the docs' warning, on stderr.
    assert "password" in err and "not recommended" in err


def test_create_forbidden_grant_is_refused_and_names_who_allows_it():
    with pytest.raises(CommandError) as refused:
        run(*create_args("Bad SPA", policy.SPA, "--grant", "client_credentials", "--json"))

    message = str(refused.value)
    assert "client_credentials" in message
    assert "forbidden" in message
    assert "web" in message and "service" in message
    assert not Application.objects.filter(name="Bad SPA").exists()


def test_create_follows_the_current_policy():
    run("oidc_policy", "set", "--type", "web", "--grant", "password", "--state", "forbidden")

    with pytest.raises(CommandError, match="password"):
        run(*create_args("Now forbidden", policy.WEB, "--grant", "password"))
    assert not Application.objects.filter(name="Now forbidden").exists()


def test_create_refuses_http_redirect_uri_on_a_public_host():
    with pytest.raises(CommandError) as refused:
        run("oidc_app", "create", "--name", "Plain http", "--type", "web", "--redirect-uri", "http://rp.example.com/cb")

    assert "http://rp.example.com/cb" in str(refused.value)
    assert "https" in str(refused.value)
    assert not Application.objects.filter(name="Plain http").exists()


def test_create_needs_a_redirect_uri_for_front_channel_grants():
    with pytest.raises(CommandError, match="redirect URI"):
        run("oidc_app", "create", "--name", "No URI", "--type", "web")
    assert not Application.objects.exists()


@pytest.mark.parametrize("bad", [["--type", "desktop"], ["--type", "web", "--grant", "device_code"]])
def test_create_refuses_unknown_type_or_grant(bad):
    with pytest.raises(CommandError, match="invalid choice"):
        run("oidc_app", "create", "--name", "Unknown", *bad, "--redirect-uri", "https://rp.example.com/cb")
    assert not Application.objects.exists()


def test_create_human_output_shows_the_secret_once_with_a_warning():
    out, _ = run(*create_args("Readable", policy.WEB))

    app = Application.objects.get(name="Readable")
    assert app.client_id in out
    assert "shown only this once" in out
    secret = next(line.split()[-1] for line in out.splitlines() if "client_secret:" in line)
    assert secrets.verify(secret, app.client_secret)


def test_list_shows_applications_without_secrets(web_app, spa_app):
    data, _ = run_json("oidc_app", "list")

    listed = {a["client_id"]: a for a in data["applications"]}
    assert set(listed) == {web_app.client_id, spa_app.client_id}
    assert listed[spa_app.client_id]["application_type"] == "spa"
    assert listed[web_app.client_id]["grant_types"] == ["authorization_code", "refresh_token"]
    assert all("client_secret" not in a for a in data["applications"])
    assert web_app.plaintext_secret not in json.dumps(data)

    out, _ = run("oidc_app", "list")
    assert web_app.client_id in out and spa_app.name in out


def test_delete_removes_the_application(web_app, spa_app):
    data, _ = run_json("oidc_app", "delete", web_app.client_id)

    assert data["client_id"] == web_app.client_id
    assert not Application.objects.filter(pk=web_app.pk).exists()
    assert Application.objects.filter(pk=spa_app.pk).exists()


def test_delete_unknown_client_id_is_refused(web_app):
    with pytest.raises(CommandError, match="no-such-client"):
        run("oidc_app", "delete", "no-such-client")
    assert Application.objects.count() == 1


# -- oidc_policy ----------------------------------------------------------------------


def test_policy_show_json_has_every_pair_with_the_contract_defaults():
    data, _ = run_json("oidc_policy", "show")

    shown = data["policy"]
    assert set(shown) == {"web", "spa", "native", "service"}
    for app_type in shown:
        assert set(shown[app_type]) == set(policy.GRANTS)
    assert {(t, g): s for t, row in shown.items() for g, s in row.items()} == policy.DEFAULT_POLICY
    # Spot checks against the documented default policy itself.
    assert shown["spa"]["implicit"] == "allowed"
    assert shown["service"]["client_credentials"] == "recommended"
    assert shown["service"]["authorization_code"] == "forbidden"
    assert shown["native"]["password"] == "allowed"


def test_policy_show_table():
    out, _ = run("oidc_policy", "show")

    header, *rows = [line.split() for line in out.splitlines() if line.strip() and not line.startswith("-")]
    assert header == ["grant", "web", "spa", "native", "service"]
    assert {r[0] for r in rows} == set(policy.GRANTS)
    assert ["client_credentials", "allowed", "forbidden", "forbidden", "recommended"] in rows


def test_policy_set_changes_the_stored_state():
    data, _ = run_json("oidc_policy", "set", "--type", "native", "--grant", "implicit", "--state", "allowed")

    assert data["state"] == "allowed" and data["previous_state"] == "forbidden"
    assert GrantPolicy.objects.get(application_type="native", grant="implicit").state == "allowed"
    assert policy.state_of("native", "implicit") == "allowed"
    shown, _ = run_json("oidc_policy", "show")
    assert shown["policy"]["native"]["implicit"] == "allowed"


def test_policy_set_recommended_changes_new_applications_defaults():
    run("oidc_policy", "set", "--type", "web", "--grant", "password", "--state", "recommended")

    data, _ = run_json(*create_args("Gets password", policy.WEB))
    assert "password" in data["grant_types"]


def test_policy_set_forbidden_warns_about_applications_holding_the_grant(web_app):
    data, err = run_json("oidc_policy", "set", "--type", "web", "--grant", "refresh_token", "--state", "forbidden")

    assert GrantPolicy.objects.get(application_type="web", grant="refresh_token").state == "forbidden"
    assert data["applications_holding_grant"] == [{"client_id": web_app.client_id, "name": web_app.name}]
    assert web_app.client_id in err and "refresh_token" in err
    web_app.refresh_from_db()
    assert "refresh_token" in web_app.grant_types  # kept; refused at request time
    assert not policy.may_use(web_app, policy.REFRESH_TOKEN)


@pytest.mark.parametrize(
    "args",
    [
        ["--type", "web", "--grant", "password", "--state", "sometimes"],
        ["--type", "desktop", "--grant", "password", "--state", "allowed"],
        ["--type", "web", "--grant", "magic", "--state", "allowed"],
    ],
)
def test_policy_set_refuses_bad_names(args):
    with pytest.raises(CommandError, match="invalid choice"):
        run("oidc_policy", "set", *args)
    assert {(p.application_type, p.grant): p.state for p in GrantPolicy.objects.all()} == policy.DEFAULT_POLICY


# -- oidc_keys ------------------------------------------------------------------------


def test_keys_list():
    active = keys.ensure_active_key()

    data, _ = run_json("oidc_keys", "list")

    listed = {k["kid"]: k for k in data["keys"]}
    assert listed[active.kid]["status"] == "active"
    assert listed[active.kid]["algorithm"] == "RS256"
    assert set(listed[active.kid]) == {"kid", "status", "algorithm", "created_at", "activated_at", "retired_at"}
    out, _ = run("oidc_keys", "list")
    assert active.kid in out


def test_keys_rotate_publishes_both_keys(client):
    old = keys.ensure_active_key()

    data, _ = run_json("oidc_keys", "rotate")

    new = SigningKey.objects.get(kid=data["kid"])
    old.refresh_from_db()
    assert new.kid != old.kid
    assert new.status == SigningKey.ACTIVE
    assert old.status == SigningKey.INACTIVE
    assert data["previous_kids"] == [old.kid]
    upcoming = SigningKey.objects.get(status=SigningKey.NEXT)
    assert data["next_kids"] == [upcoming.kid] and upcoming.kid not in (old.kid, new.kid)
    assert set(data["published_kids"]) == {old.kid, new.kid, upcoming.kid}
    jwks = client.get("/oidc/.well-known/jwks.json").json()
    assert {k["kid"] for k in jwks["keys"]} == {old.kid, new.kid, upcoming.kid}
    assert keys.active_key().kid == new.kid


def test_keys_retire_refuses_the_active_key():
    active = keys.ensure_active_key()

    with pytest.raises(CommandError, match="active key"):
        run("oidc_keys", "retire", "--", active.kid)
    active.refresh_from_db()
    assert active.status == SigningKey.ACTIVE


def test_keys_retire_unpublishes_an_inactive_key(client):
    old = keys.ensure_active_key()
    run("oidc_keys", "rotate")

    out, _ = run("oidc_keys", "retire", "--json", "--", old.kid)  # a kid may start with "-"
    data = json.loads(out)

    old.refresh_from_db()
    assert data["status"] == old.status == SigningKey.RETIRED
    assert old.kid not in {k["kid"] for k in client.get("/oidc/.well-known/jwks.json").json()["keys"]}
    with pytest.raises(CommandError, match="unknown-kid"):
        run("oidc_keys", "retire", "unknown-kid")


# -- oidc_quickstart ------------------------------------------------------------------


def test_quickstart_creates_once_and_never_shows_secrets_again():
    first, _ = run("oidc_quickstart", "--no-serve")

    User = get_user_model()
    admin = User.objects.get(username="admin")
    assert admin.is_superuser and admin.is_staff
    demo = {a.application_type: a for a in Application.objects.all()}
    assert set(demo) == set(policy.APPLICATION_TYPES) and Application.objects.count() == 4
    assert demo["web"].redirect_uris == "http://127.0.0.1:8080/callback"
    assert demo["service"].redirect_uris == "" and demo["service"].grant_types == ["client_credentials"]
    password = next(line.split()[-1] for line in first.splitlines() if "password:" in line)
    assert admin.check_password(password)
    shown_secrets = [line.split()[-1] for line in first.splitlines() if "client_secret:" in line]
    assert len(shown_secrets) == 2  # web and service; public types have none
    assert secrets.verify(shown_secrets[0], demo["web"].client_secret)
    assert "http://127.0.0.1:8000/oidc/.well-known/openid-configuration" in first
    assert SigningKey.objects.filter(status=SigningKey.ACTIVE).exists()

    second, _ = run("oidc_quickstart", "--no-serve")

    assert "reusing existing admin account and demo applications" in second
    assert password not in second
    assert not any(s in second for s in shown_secrets)
    assert "client_secret:" not in second and "password:" not in second
    assert User.objects.filter(username="admin").count() == 1
    assert Application.objects.count() == 4
    admin.refresh_from_db()
    assert admin.check_password(password)


def test_quickstart_json():
    data, _ = run_json("oidc_quickstart", "--no-serve")

    assert data["admin"]["created"] is True
    assert get_user_model().objects.get(username="admin").check_password(data["admin"]["password"])
    by_type = {a["application_type"]: a for a in data["applications"]}
    assert set(by_type) == set(policy.APPLICATION_TYPES)
    assert by_type["spa"]["client_secret"] is None
    web = Application.objects.get(client_id=by_type["web"]["client_id"])
    assert secrets.verify(by_type["web"]["client_secret"], web.client_secret)
    assert data["discovery_url"].endswith("/.well-known/openid-configuration")

    again, _ = run_json("oidc_quickstart", "--no-serve")
    assert again["created"] is False
    assert again["admin"]["password"] is None
    assert all(a["client_secret"] is None for a in again["applications"])


def test_quickstart_keeps_an_existing_admin():
    get_user_model().objects.create_user(username="admin", password="kept-password-123")

    out, _ = run("oidc_quickstart", "--no-serve")

    assert "password:" not in out
    assert get_user_model().objects.get(username="admin").check_password("kept-password-123")
    assert Application.objects.count() == 4


def _issuer(settings, issuer):
    settings.OIDC_PROVIDER = {**settings.OIDC_PROVIDER, "ISSUER": issuer}


def test_quickstart_prints_the_run_command_of_the_issuers_host_and_port(settings):
    """The printed start command and console URL follow OIDC_ISSUER's host and port."""
    _issuer(settings, "http://127.0.0.1:9000/oidc")
    out, _ = run("oidc_quickstart", "--no-serve")
    assert "python manage.py runserver 127.0.0.1:9000" in out
    assert "http://127.0.0.1:9000/admin/" in out
    assert "8000" not in out

    data, _ = run_json("oidc_quickstart", "--no-serve")
    assert data["address"] == "127.0.0.1:9000"
    assert data["run_command"] == "python manage.py runserver 127.0.0.1:9000"


def test_quickstart_by_default_runs_on_127_0_0_1_port_8000():
    """With the default issuer the command and the README agree: http://127.0.0.1:8000."""
    out, _ = run("oidc_quickstart", "--no-serve")
    assert "python manage.py runserver 127.0.0.1:8000" in out
    assert "Console:   http://127.0.0.1:8000/admin/" in out


@pytest.mark.parametrize("issuer, address", [
    ("http://localhost/oidc", "localhost:80"),
    ("http://[::1]:9000/oidc", "[::1]:9000"),
])
def test_quickstart_reads_the_issuers_default_port_and_ipv6_hosts(settings, issuer, address):
    """An issuer without a port means its scheme's; an IPv6 host keeps its brackets."""
    _issuer(settings, issuer)
    assert f"python manage.py runserver {address}" in run("oidc_quickstart", "--no-serve")[0]


def test_quickstart_serves_at_the_address_given_and_says_where_the_issuer_points(monkeypatch):
    """--address is where it serves and what it prints; an issuer elsewhere is warned about,
    since relying parties follow the issuer's URLs."""
    from oidc_provider.management.commands import oidc_quickstart

    served = []

    def call(name, *args, **kwargs):
        if name == "runserver":
            served.append(args)
            return None
        return call_command(name, *args, **kwargs)

    monkeypatch.setattr(oidc_quickstart, "call_command", call)
    out, _ = run("oidc_quickstart", "--address", "127.0.0.1:9100")
    assert served == [("127.0.0.1:9100",)]
    assert "python manage.py runserver 127.0.0.1:9100" in out
    assert "http://127.0.0.1:9100/admin/" in out
    assert "OIDC_ISSUER=http://127.0.0.1:9100/oidc" in out

    data, err = run_json("oidc_quickstart", "--no-serve", "--address", "[::1]:9100")
    assert data["address"] == "[::1]:9100" and data["run_command"].endswith("runserver [::1]:9100")
    assert "OIDC_ISSUER" in err


@pytest.mark.parametrize("address", [
    "9000", "127.0.0.1", "127.0.0.1:", ":9000", "127.0.0.1:0", "127.0.0.1:65536", "127.0.0.1:http",
    "::1:9000", "[nope]:9000", "999.1.1.1:9000", "exa mple.com:9000", "-bad.example.com:9000", "",
])
def test_quickstart_refuses_a_bad_address_and_changes_nothing(address):
    """A bad --address is refused with a message naming the option, before anything is made."""
    keys_before = list(SigningKey.objects.values_list("kid", flat=True))
    with pytest.raises(CommandError, match="--address"):
        run("oidc_quickstart", "--no-serve", "--address", address)
    assert not get_user_model().objects.exists()
    assert not Application.objects.exists()
    assert list(SigningKey.objects.values_list("kid", flat=True)) == keys_before


# -- a real process ---------------------------------------------------------------------


def manage(tmp_path, *args):
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}", "DJANGO_DATA_DIR": str(tmp_path)}
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300
    )


def test_cli_process_prints_one_json_object_and_refuses_on_stderr(tmp_path):
    migrated = manage(tmp_path, "migrate", "--no-input")
    assert migrated.returncode == 0, migrated.stderr

    created = manage(tmp_path, "oidc_app", "create", "--name", "Real", "--type", "web",
                     "--redirect-uri", "https://rp.example.com/callback", "--json")
    assert created.returncode == 0, created.stderr
    data = json.loads(created.stdout)  # the whole of stdout is one JSON document
    assert isinstance(data, dict)
    assert data["application_type"] == "web" and data["client_secret"]
    assert data["grant_types"] == ["authorization_code", "refresh_token"]

    refused = manage(tmp_path, "oidc_app", "create", "--name", "Bad", "--type", "spa",
                     "--redirect-uri", "https://spa.example.com/cb", "--grant", "client_credentials", "--json")
    assert refused.returncode != 0
    assert refused.stdout == ""
    assert "client_credentials" in refused.stderr

    bad_address = manage(tmp_path, "oidc_quickstart", "--no-serve", "--address", "localhost:99999")
    assert bad_address.returncode != 0
    assert bad_address.stdout == ""
    assert "--address" in bad_address.stderr and "65535" in bad_address.stderr

    listed = manage(tmp_path, "oidc_app", "list", "--json")
    assert [a["client_id"] for a in json.loads(listed.stdout)["applications"]] == [data["client_id"]]


def test_quickstart_never_serves_on_a_public_issuers_address_unless_asked(tmp_path, settings):
    """A development server with a fresh admin password listens on loopback unless --address
    names another interface: an https issuer on a public host does not move it there."""
    from oidc_provider.management.commands.oidc_quickstart import issuer_address

    assert issuer_address("https://id.example.com/oidc") == "127.0.0.1:8000"
    assert issuer_address("http://10.0.0.5:9000/oidc") == "127.0.0.1:8000"
    assert issuer_address("http://127.0.0.1:9000/oidc") == "127.0.0.1:9000"
    assert issuer_address("http://localhost:9001/oidc") == "localhost:9001"
    assert issuer_address("http://[::1]:9002/oidc") == "[::1]:9002"
