"""A live provider for tests that talk to it from outside: relying parties, a browser, load.

``live_provider`` (session scope) migrates a fresh database, starts ``gunicorn project.wsgi``
on a free loopback port with the issuer set to that port, and stops it by PID at the end.
The database is a temporary SQLite file, or, when ``DATABASE_URL`` is PostgreSQL, a fresh
database on that server (created here, dropped in teardown) so the live server never shares
rows with pytest-django's test database.

Users, applications and access keys are created in the live server's database through the
project's own commands (``oidc_app create --json``, ``createsuperuser``, ``accesskey``) or a
``manage.py shell -c`` script: never through the test process's database.

Test modules import the fixtures (``from .live import live_provider, live_user``); the server
is started once however many modules ask for it.

Also here: :func:`front_channel`, which plays the user's browser over plain HTTP (login form,
consent form, redirects followed by hand) and stops at the relying party's redirect URI.
"""

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlsplit, urlunsplit

import pytest
import requests

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
GUNICORN = str(Path(sys.executable).with_name("gunicorn"))
HTTP_TIMEOUT = 15
COMMAND_TIMEOUT = 120
PASSWORD = "Live-test passw0rd, not common"


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def is_postgres(url=None):
    url = os.environ.get("DATABASE_URL", "") if url is None else url
    return url.startswith(("postgres://", "postgresql://", "pgsql://"))



def stop_process(process):
    """Stop a server we started, by its PID: SIGTERM, then SIGKILL if it lingers."""
    if process is not None and process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)

class _PostgresDatabase:
    """A throwaway database on the server DATABASE_URL points at."""

    def __init__(self, url):
        import psycopg

        self._psycopg = psycopg
        parts = urlsplit(url)
        base = parts.path.lstrip("/") or "postgres"
        self.name = f"{base}_live_{secrets.token_hex(4)}"
        self.admin_conninfo = urlunsplit(("postgresql", parts.netloc, "/" + base, parts.query, ""))
        self.url = urlunsplit((parts.scheme, parts.netloc, "/" + self.name, parts.query, ""))

    def create(self):
        with self._psycopg.connect(self.admin_conninfo, autocommit=True, connect_timeout=10) as conn:
            conn.execute(f'CREATE DATABASE "{self.name}"')

    def drop(self):
        with self._psycopg.connect(self.admin_conninfo, autocommit=True, connect_timeout=10) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


class LiveProvider:
    def __init__(self, workers=4, threads=4):
        self.workers, self.threads = workers, threads
        self.tmp = Path(tempfile.mkdtemp(prefix="oidc-live-"))
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.issuer = f"{self.base_url}/oidc"
        self.process = None
        self.postgres = _PostgresDatabase(os.environ["DATABASE_URL"]) if is_postgres() else None
        database_url = self.postgres.url if self.postgres else f"sqlite:///{self.tmp / 'db.sqlite3'}"
        self.env = {
            **os.environ,
            # LIVE_DJANGO_SETTINGS_MODULE runs the live server on other settings (e.g. to try a fix).
            "DJANGO_SETTINGS_MODULE": os.environ.get("LIVE_DJANGO_SETTINGS_MODULE", "project.settings"),
            "DJANGO_DATA_DIR": str(self.tmp),
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
            "DJANGO_DEBUG": "0",
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DATABASE_URL": database_url,
            "OIDC_ISSUER": self.issuer,
            "PYTHONUNBUFFERED": "1",
        }
        self.env.pop("REDIS_URL", None)
        self.log_path = self.tmp / "server.log"

    # -- life ---------------------------------------------------------------------

    def start(self):
        if self.postgres:
            self.postgres.create()
        self.manage("migrate", "--noinput")
        self._log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [
                GUNICORN, "project.wsgi",
                "--bind", f"127.0.0.1:{self.port}",
                "--workers", str(self.workers), "--threads", str(self.threads),
                "--timeout", "60", "--graceful-timeout", "5",
                "--error-logfile", "-", "--log-level", "warning",
            ],
            cwd=ROOT, env=self.env, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.process.returncode}:\n{self.log()}")
            try:
                if requests.get(self.url("/oidc/.well-known/openid-configuration"), timeout=2).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the live server did not answer within 60 s:\n{self.log()}")
            time.sleep(0.2)

    def stop(self):
        stop_process(self.process)
        if getattr(self, "_log", None):
            self._log.close()
        if self.postgres:
            try:
                self.postgres.drop()
            except Exception as e:  # noqa: BLE001 -- teardown must not hide the test's own failure
                print(f"could not drop {self.postgres.name}: {e}", file=sys.stderr)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def log(self, tail=6000):
        try:
            return self.log_path.read_text(errors="replace")[-tail:]
        except FileNotFoundError:
            return ""

    def url(self, path):
        return self.base_url + path

    # -- the project's commands, against the live server's database ----------------------

    def manage(self, *args, env=None):
        result = subprocess.run(
            [PYTHON, "manage.py", *args], cwd=ROOT, env={**self.env, **(env or {})},
            capture_output=True, text=True, timeout=COMMAND_TIMEOUT, stdin=subprocess.DEVNULL,
        )
        if result.returncode != 0:
            raise RuntimeError(f"manage.py {' '.join(args)} failed ({result.returncode}):\n{result.stderr}\n{result.stdout}")
        return result.stdout

    def manage_json(self, *args):
        return json.loads(self.manage(*args, "--json"))

    def shell(self, code):
        """Run Python in `manage.py shell`; it prints one JSON value as its last line."""
        out = self.manage("shell", "--no-imports", "-c", code)
        return json.loads(out.strip().splitlines()[-1])

    def create_user(self, username, password=PASSWORD, email=None):
        self.manage(
            "createsuperuser", "--noinput", "--username", username, "--email", email or f"{username}@example.com",
            env={"DJANGO_SUPERUSER_PASSWORD": password},
        )
        self.shell(
            "from django.contrib.auth import get_user_model; import json\n"
            f"get_user_model().objects.filter(username={username!r}).update(first_name='Ada', last_name='Lovelace')\n"
            "print(json.dumps(True))"
        )
        return {"username": username, "password": password}

    def create_app(self, name, app_type, grants=(), redirect_uris=(), post_logout_redirect_uris=(), skip_consent=False):
        args = ["oidc_app", "create", "--name", name, "--type", app_type]
        for g in grants:
            args += ["--grant", g]
        for uri in redirect_uris:
            args += ["--redirect-uri", uri]
        for uri in post_logout_redirect_uris:
            args += ["--post-logout-redirect-uri", uri]
        if skip_consent:
            args.append("--skip-consent")
        return self.manage_json(*args)

    def update_app(self, client_id, **fields):
        """Set model fields the command line does not offer (e.g. allowed_origins), validated."""
        return self.shell(
            "import json\nfrom oidc_provider.models import Application\n"
            f"app = Application.objects.get(client_id={client_id!r})\n"
            f"for k, v in {fields!r}.items(): setattr(app, k, v)\n"
            "app.full_clean(exclude=['client_type', 'authorization_grant_type']); app.save()\n"
            "print(json.dumps(True))"
        )

    def token_counts(self, client_id):
        """Rows the token endpoint wrote for one application."""
        return self.shell(
            "import json\nfrom oauth2_provider.models import get_access_token_model as A, get_refresh_token_model as R, "
            "get_id_token_model as I, get_grant_model as G\n"
            f"q = dict(application__client_id={client_id!r})\n"
            "print(json.dumps({'access': A().objects.filter(**q).count(), 'refresh': R().objects.filter(**q).count(),"
            " 'refresh_active': R().objects.filter(revoked__isnull=True, **q).count(),"
            " 'id': I().objects.filter(**q).count(), 'grants': G().objects.filter(**q).count()}))"
        )


_shared = {"server": None, "users": 0}


@pytest.fixture(scope="session")
def live_provider():
    """One gunicorn server (4 workers x 4 threads) for the whole session; stopped by PID.

    Test modules import this fixture; each import is its own fixture definition, so the
    server is shared through ``_shared`` and stopped when the last of them is torn down.
    """
    if _shared["server"] is None:
        server = LiveProvider()
        try:
            server.start()
        except Exception:
            server.stop()
            raise
        _shared["server"] = server
    _shared["users"] += 1
    yield _shared["server"]
    _shared["users"] -= 1
    if _shared["users"] == 0:
        _shared["server"].stop()
        _shared["server"] = None


@pytest.fixture(scope="session")
def live_user(live_provider):
    if "user" not in _shared or _shared.get("user_server") is not live_provider:
        _shared["user"] = live_provider.create_user(f"rp{secrets.token_hex(3)}")
        _shared["user_server"] = live_provider
    return _shared["user"]


# -- the user's browser, played over HTTP -------------------------------------------------


class _Forms(HTMLParser):
    """Every <form> of a page: its action, method and inputs (submit buttons apart)."""

    def __init__(self):
        super().__init__()
        self.forms = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.forms.append({"action": attrs.get("action") or "", "method": (attrs.get("method") or "get").lower(),
                               "fields": {}, "buttons": {}})
        elif tag in ("input", "button") and self.forms and attrs.get("name"):
            kind = (attrs.get("type") or ("submit" if tag == "button" else "text")).lower()
            target = self.forms[-1]["buttons" if kind == "submit" else "fields"]
            target[attrs["name"]] = attrs.get("value") or ""


def forms_of(html):
    parser = _Forms()
    parser.feed(html)
    return parser.forms


class FrontChannelError(AssertionError):
    pass


def front_channel(session, url, user, redirect_prefix, *, max_steps=12, consent=True):
    """Follow an authorization request the way a browser would, and return the URL it ends on.

    Logs in on the hosted page when asked, approves the consent page, follows redirects
    by hand, and stops at the first URL that starts with ``redirect_prefix`` (the relying
    party's, never fetched). A form_post response is returned as (action, fields).
    """
    method, data = "GET", None
    for _ in range(max_steps):
        if method == "GET":
            response = session.get(url, allow_redirects=False, timeout=HTTP_TIMEOUT)
        else:
            origin = "{0}://{1}".format(*urlsplit(url)[:2])
            response = session.post(url, data=data, allow_redirects=False, timeout=HTTP_TIMEOUT,
                                    headers={"Referer": url, "Origin": origin})
        if response.status_code >= 500:
            raise FrontChannelError(f"{method} {url} -> {response.status_code}")
        if response.status_code in (301, 302, 303, 307):
            location = urljoin(url, response.headers["Location"])
            if location.startswith(redirect_prefix):
                return location
            url, method, data = location, "GET", None
            continue
        if response.status_code != 200:
            raise FrontChannelError(f"{method} {url} -> {response.status_code}: {response.text[:600]}")
        forms = forms_of(response.text)
        login = next((f for f in forms if "username" in f["fields"] and "password" in f["fields"]), None)
        approve = next((f for f in forms if "consent_form" in f["fields"] and "allow" in f["buttons"]), None)
        if login is not None:
            data = {**login["fields"], "username": user["username"], "password": user["password"]}
            url, method = urljoin(response.url, login["action"]), "POST"
        elif approve is not None:
            if not consent:
                raise FrontChannelError("the consent page was shown")
            data = {**approve["fields"], "consent_form": "1", "allow": "1"}
            url, method = urljoin(response.url, approve["action"]), "POST"
        elif forms and forms[0]["action"].startswith(redirect_prefix) and forms[0]["method"] == "post":
            return forms[0]["action"], forms[0]["fields"]  # form_post response mode
        else:
            raise FrontChannelError(f"no login, consent or form_post form at {response.url}: {response.text[:800]}")
    raise FrontChannelError(f"no redirect to {redirect_prefix} after {max_steps} steps")
