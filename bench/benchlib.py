"""What run.py uses: servers, scratch databases, seeding, wrk.

Every server is a gunicorn started here on a free loopback port, in its own session (so a
Ctrl-C reaches this script, not the servers), and stopped by its PID: by the caller's
``finally``, and again by an ``atexit`` hook and on SIGTERM/SIGHUP. Scratch PostgreSQL
databases are dropped the same way, after the servers that use them have stopped.
"""

import atexit
import base64
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
from pathlib import Path
from urllib.parse import quote, quote_plus, urlencode, urlsplit, urlunsplit

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
PYTHON = sys.executable
GUNICORN = str(Path(sys.executable).with_name("gunicorn"))
LUA = BENCH / "lua"
REDIRECT_URI = "https://rp.bench.invalid/callback"  # never contacted: the load generators read the Location header
PASSWORD = "Bench passw0rd, not a common one"
USERNAME = "bench"
COMMAND_TIMEOUT = 900

# -- clean-up --------------------------------------------------------------------------

_processes = []  # Popen objects this run started and has not stopped yet
_cleanups = []  # callables, run last-in first-out after the processes are stopped


def stop_process(proc, grace=10):
    """Stop one process this script started, by its PID: SIGTERM, then SIGKILL after ``grace`` s."""
    if proc.poll() is None:
        try:
            os.kill(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            try:
                os.kill(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(timeout=10)
    if proc in _processes:
        _processes.remove(proc)


def cleanup():
    for proc in list(reversed(_processes)):
        try:
            stop_process(proc)
        except Exception as e:  # keep cleaning up the rest
            print(f"bench: could not stop PID {proc.pid}: {e}", file=sys.stderr)
    while _cleanups:
        fn = _cleanups.pop()
        try:
            fn()
        except Exception as e:
            print(f"bench: clean-up step failed: {e}", file=sys.stderr)


def _on_signal(signum, frame):
    raise SystemExit(128 + signum)


def install_cleanup():
    atexit.register(cleanup)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _on_signal)


def run_main(main):
    """A script's entry point: its exit status, 130 on Ctrl-C (its ``finally`` has stopped what it started)."""
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("bench: interrupted; servers stopped", file=sys.stderr)
        sys.exit(130)


def on_cleanup(fn):
    _cleanups.append(fn)


def popen(cmd, **kwargs):
    proc = subprocess.Popen(cmd, start_new_session=True, **kwargs)
    _processes.append(proc)
    return proc


def run(cmd, *, env, cwd, timeout=COMMAND_TIMEOUT, input=None):
    """Run a command to completion (bounded); its stdout, or an error with its output."""
    proc = popen(cmd, env=env, cwd=cwd, stdin=subprocess.PIPE if input else subprocess.DEVNULL,
                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(input=input, timeout=timeout)
    except subprocess.TimeoutExpired:
        stop_process(proc)
        raise RuntimeError(f"timed out after {timeout}s: {' '.join(map(str, cmd))[:200]}")
    finally:
        if proc in _processes:
            _processes.remove(proc)
    if proc.returncode != 0:
        raise RuntimeError(f"failed ({proc.returncode}): {' '.join(map(str, cmd))[:300]}\n{err[-3000:]}\n{out[-2000:]}")
    return out


# -- small helpers ----------------------------------------------------------------------


_ports_given = set()


def free_port():
    """A loopback port free now and not given to another site of this run: the sites pick
    theirs before any of them binds, and the kernel may offer a port twice meanwhile."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _ports_given:
            _ports_given.add(port)
            return port


def basic(client_id, secret):
    """RFC 6749 §2.3.1 client_secret_basic."""
    raw = f"{quote_plus(client_id)}:{quote_plus(secret)}".encode()
    return "Basic " + base64.b64encode(raw).decode()


def is_postgres(url):
    return (url or "").startswith(("postgres://", "postgresql://", "pgsql://"))


def children(pid):
    """PIDs whose parent is ``pid`` (gunicorn's workers), from /proc."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may hold spaces, so split after the last ')'.
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid:
            found.append(int(entry))
    return sorted(found)


class ScratchPostgres:
    """A throwaway database on the server DATABASE_URL points at: created here, dropped at the end."""

    def __init__(self, url, tag):
        parts = urlsplit(url)
        base = parts.path.lstrip("/") or "postgres"
        self.name = f"bench_{tag}_{secrets.token_hex(4)}"
        self.admin_conninfo = urlunsplit(("postgresql", parts.netloc, "/" + base, parts.query, ""))
        self.url = urlunsplit((parts.scheme, parts.netloc, "/" + self.name, parts.query, ""))

    def create(self):
        import psycopg

        with psycopg.connect(self.admin_conninfo, autocommit=True, connect_timeout=10) as conn:
            conn.execute(f'CREATE DATABASE "{self.name}"')
        on_cleanup(self.drop)
        return self

    def drop(self):
        import psycopg

        with psycopg.connect(self.admin_conninfo, autocommit=True, connect_timeout=10) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


# -- servers ----------------------------------------------------------------------------


class Site:
    """One gunicorn-served WSGI application on a free loopback port."""

    kind = "site"
    wsgi = None

    def __init__(self, tmp, workers=2):
        self.tmp = Path(tmp) / self.kind
        self.tmp.mkdir(parents=True, exist_ok=True)
        self.workers = workers
        self.port = free_port()
        self.host = "127.0.0.1"
        self.base_url = f"http://{self.host}:{self.port}"
        self.proc = None
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "OIDC_"))}
        self.env["PYTHONUNBUFFERED"] = "1"
        self.cwd = ROOT
        self.data = {}

    def gunicorn_command(self):
        # The same server settings for every site: sync workers, as a plain `gunicorn app` runs.
        return [
            GUNICORN, self.wsgi,
            "--bind", f"{self.host}:{self.port}",
            "--workers", str(self.workers), "--worker-class", "sync",
            "--timeout", "120", "--graceful-timeout", "5", "--log-level", "warning",
        ]

    def ready_path(self):
        return "/"

    def start(self):
        ready_path = self.ready_path()
        log = open(self.tmp / "gunicorn.log", "ab")
        self.proc = popen(self.gunicorn_command(), cwd=self.cwd, env=self.env, stdin=subprocess.DEVNULL,
                          stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + 90
        import http.client

        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.kind}: gunicorn exited ({self.proc.returncode}); see {self.tmp / 'gunicorn.log'}:\n"
                                   + (self.tmp / "gunicorn.log").read_text()[-3000:])
            try:
                conn = http.client.HTTPConnection(self.host, self.port, timeout=5)
                conn.request("GET", ready_path)
                conn.getresponse().read()
                conn.close()
                # All workers booted, not only the first one.
                if len(children(self.proc.pid)) >= self.workers:
                    return self
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.kind}: gunicorn did not answer on {self.base_url} within 90 s")

    def stop(self):
        if self.proc is not None:
            stop_process(self.proc)
            self.proc = None

    def worker_pids(self):
        return children(self.proc.pid) if self.proc else []

    def log_tail(self, n=3000):
        try:
            return (self.tmp / "gunicorn.log").read_text()[-n:]
        except OSError:
            return ""


class DjangoSite(Site):
    manage_cwd = ROOT

    def __init__(self, tmp, workers=2, database_url=None):
        super().__init__(tmp, workers)
        self.postgres = None
        if is_postgres(database_url):
            self.postgres = ScratchPostgres(database_url, self.kind)
            self.database_url = self.postgres.url
        else:
            self.database_url = f"sqlite:///{self.tmp / 'db.sqlite3'}"
        self.env.update(DJANGO_SECRET_KEY=secrets.token_urlsafe(50), DATABASE_URL=self.database_url)

    @property
    def database_label(self):
        return "PostgreSQL" if self.postgres else "SQLite (WAL)"

    def manage(self, *args, timeout=COMMAND_TIMEOUT, input=None):
        return run([PYTHON, "manage.py", *args], env=self.env, cwd=self.manage_cwd, timeout=timeout, input=input)

    def manage_json(self, *args):
        return json.loads(self.manage(*args))

    def manage_shell(self, function, params, timeout=COMMAND_TIMEOUT):
        """Run ``seed.<function>(params)`` in ``manage.py shell``; its JSON result."""
        script = (
            "import json, os, sys\n"
            f"sys.path.insert(0, {str(BENCH)!r})\n"
            "import seed\n"
            f"print('BENCH_SEED ' + json.dumps(seed.{function}(json.loads(os.environ['BENCH_SEED_PARAMS']))))\n"
        )
        env = {**self.env, "BENCH_SEED_PARAMS": json.dumps(params)}
        out = run([PYTHON, "manage.py", "shell", "--no-imports", "-c", script], env=env, cwd=self.manage_cwd, timeout=timeout)
        for line in out.splitlines():
            if line.startswith("BENCH_SEED "):
                return json.loads(line[len("BENCH_SEED "):])
        raise RuntimeError(f"{self.kind}: seeding printed no result:\n{out[-2000:]}")

    def create_database(self):
        if self.postgres:
            self.postgres.create()
        self.manage("migrate", "--noinput")


class OursSite(DjangoSite):
    """Our project, production settings (DEBUG off), its own data folder and database."""

    kind = "ours"
    wsgi = "project.wsgi"
    prefix = "/oidc"

    def __init__(self, tmp, workers=2, database_url=None):
        super().__init__(tmp, workers, database_url)
        self.env.update(
            DJANGO_SETTINGS_MODULE="project.settings",
            DJANGO_DEBUG="0",
            DJANGO_DATA_DIR=str(self.tmp / "data"),
            DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost",
            OIDC_ISSUER=f"{self.base_url}/oidc",
        )

    def seed(self, *, codes, refresh, sessions):
        self.create_database()
        service = self.manage_json("oidc_app", "create", "--name", "bench service", "--type", "service", "--json")
        web = self.manage_json(
            "oidc_app", "create", "--name", "bench web", "--type", "web", "--grant", "authorization_code",
            "--grant", "refresh_token", "--redirect-uri", REDIRECT_URI, "--skip-consent", "--json",
        )
        aksk = self.manage_json("accesskey", "create", "--account", "bench", "--scope", "read", "--json")
        self.env_with_password = {**self.env, "DJANGO_SUPERUSER_PASSWORD": PASSWORD}
        run([PYTHON, "manage.py", "createsuperuser", "--noinput", "--username", USERNAME, "--email", "bench@example.com"],
            env=self.env_with_password, cwd=self.manage_cwd)
        rows = self.manage_shell("ours", {
            "username": USERNAME, "web_client_id": web["client_id"], "codes": codes, "refresh": refresh,
            "code_prefix": "bc-" + secrets.token_hex(4) + "-", "refresh_prefix": "br-" + secrets.token_hex(4) + "-",
            "redirect_uri": REDIRECT_URI, "sessions": sessions,
        })
        self.data = {"service": service, "web": web, "aksk": aksk, **rows}
        return self.data

    def ready_path(self):
        return "/oidc/.well-known/openid-configuration"


class GrowthSite(OursSite):
    """Our project with ``rows`` more tokens in its tables than the normal seed, half of them
    expired by default (``run.py --growth``, bench/cleanup.py): does a request cost the same
    in a database that has served for years? PostgreSQL only (seed.grow)."""

    def __init__(self, tmp, rows, workers=2, database_url=None, expired=0.5):
        self.rows, self.expired = rows, expired
        self.kind = f"growth_{short_count(rows).lower()}"
        super().__init__(tmp, workers, database_url)

    def seed(self, *, codes, refresh, sessions):
        data = super().seed(codes=codes, refresh=refresh, sessions=sessions)
        self.growth = self.manage_shell("grow", {
            "n": self.rows, "expired": self.expired, "tag": "g" + secrets.token_hex(4), "redirect_uri": REDIRECT_URI,
            "web_client_id": data["web"]["client_id"], "service_client_id": data["service"]["client_id"],
        }, timeout=4 * 3600)
        return data


def short_count(n):
    """1000000 -> '1M', 250000 -> '250k'."""
    for size, unit in ((10**9, "G"), (10**6, "M"), (10**3, "k")):
        if n >= size and n % (size // 10) == 0:
            return f"{n / size:g}{unit}"
    return str(n)


class AgainstSite(OursSite):
    """Our project at another git revision (``run.py --against REV``), exported with
    ``git archive`` into the temp folder and served from there, so that a change and its
    parent are measured interleaved in one run: the machine's drift hits both alike."""

    kind = "against"

    def __init__(self, tmp, rev, workers=2, database_url=None):
        super().__init__(tmp, workers, database_url)
        self.rev = subprocess.run(["git", "rev-parse", "--short", rev], cwd=ROOT, check=True, capture_output=True,
                                  text=True).stdout.strip()
        tree = self.tmp / "tree"
        tree.mkdir(exist_ok=True)
        archive = subprocess.run(["git", "archive", self.rev], cwd=ROOT, check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
        # Its own packages come first on sys.path (the venv's editable install points at ROOT).
        self.cwd = self.manage_cwd = tree
        self.env["PYTHONPATH"] = str(tree)


class SqliteSite(OursSite):
    """Our project on SQLite while the run's DATABASE_URL is PostgreSQL (``run.py --with-sqlite``):
    both databases measured interleaved, so that their ratio is free of the machine's drift."""

    kind = "sqlite"

    def __init__(self, tmp, workers=2):
        super().__init__(tmp, workers, None)


class DotSite(DjangoSite):
    """The plain django-oauth-toolkit baseline (bench/dot_site.py), generated into the temp folder."""

    kind = "dot"
    wsgi = "dotsite.wsgi"
    prefix = "/o"

    def __init__(self, tmp, workers=2, database_url=None):
        super().__init__(tmp, workers, database_url)
        from dot_site import generate

        self.project = generate(self.tmp / "project")
        self.cwd = self.manage_cwd = self.project
        self.env["DJANGO_SETTINGS_MODULE"] = "dotsite.settings"

    def seed(self, *, codes, refresh, sessions):
        self.create_database()
        self.data = self.manage_shell("dot", {
            "username": USERNAME, "password": PASSWORD, "codes": codes, "refresh": refresh,
            "code_prefix": "dc-" + secrets.token_hex(4) + "-", "refresh_prefix": "dr-" + secrets.token_hex(4) + "-",
            "redirect_uri": REDIRECT_URI, "sessions": sessions,
        })
        return self.data

    def ready_path(self):
        return "/o/.well-known/openid-configuration"


class FloorSite(Site):
    """A bare WSGI "hello" (bench/floor_app.py) under the same gunicorn settings."""

    kind = "floor"
    wsgi = "floor_app:application"

    def __init__(self, tmp, workers=2):
        super().__init__(tmp, workers)
        self.cwd = BENCH

    def seed(self, **kwargs):
        return {}

    def ready_path(self):
        return "/"


def make_tmp():
    tmp = Path(tempfile.mkdtemp(prefix="oidc-bench-"))
    on_cleanup(lambda: shutil.rmtree(tmp, ignore_errors=True))
    return tmp


# -- request specs ------------------------------------------------------------------------
#
# One description per (scenario, target), used by wrk (as Lua arguments) and by the Python
# login generator.

AUTH_QUERY = {"response_type": "code", "scope": "openid profile email", "state": "bench-state", "nonce": "bench-nonce",
              "code_challenge_method": "S256"}


def login_spec(site, client_id, client_secret, data):
    token_path = "/oidc/token" if isinstance(site, OursSite) else "/o/token/"
    auth_path = "/oidc/auth" if isinstance(site, OursSite) else "/o/authorize/"
    query = urlencode({**AUTH_QUERY, "client_id": client_id, "redirect_uri": data["redirect_uri"],
                       "code_challenge": data["challenge"]}, quote_via=quote)
    return {
        "auth_path": f"{auth_path}?{query}",
        "token_path": token_path,
        "token_headers": {"Authorization": basic(client_id, client_secret)},
        "token_body": f"grant_type=authorization_code&code=@@&redirect_uri={quote(data['redirect_uri'], safe='')}"
                      f"&code_verifier={data['verifier']}",
        "cookie_name": "sessionid",
        "expect": ["id_token", "refresh_token"],
    }


def specs(site):
    """{scenario: [(label, spec)]} for one site. A spec: method, path, auth, body, expect,
    and for the walking scenarios ``walk`` ("code" or "refresh") and ``prefix``."""
    d = site.data
    if isinstance(site, OursSite):
        token, svc, web, ak = "/oidc/token", d["service"], d["web"], d["aksk"]
        web_auth = basic(web["client_id"], web["client_secret"])
        out = {
            "client_credentials": [("ours", {
                "method": "POST", "path": token, "auth": basic(svc["client_id"], svc["client_secret"]),
                "body": "grant_type=client_credentials&scope=read", "expect": ["access_token"]})],
            "client_credentials_aksk": [("ours", {
                "method": "POST", "path": token, "auth": basic(ak["access_key"], ak["secret_key"]),
                "body": "grant_type=client_credentials&scope=read", "expect": ["access_token"]})],
            "userinfo": [("ours", {"method": "GET", "path": "/oidc/me", "auth": f"Bearer {d['userinfo_token']}",
                                   "expect": ['"sub"']})],
            "introspection": [("ours", {"method": "POST", "path": "/oidc/token/introspection", "auth": web_auth,
                                        "body": f"token={d['introspect_token']}", "expect": ['"active": true']})],
            "discovery": [("ours", {"method": "GET", "path": "/oidc/.well-known/openid-configuration", "expect": ['"issuer"']})],
            "jwks": [("ours", {"method": "GET", "path": "/oidc/.well-known/jwks.json", "expect": ['"keys"']})],
        }
        code_auth, label = web_auth, "ours"
        login = login_spec(site, web["client_id"], web["client_secret"], d)
    else:
        token, apps = "/o/token/", d["apps"]
        code_auth = basic(apps["code_plain"]["client_id"], apps["code_plain"]["client_secret"])
        label = "dot (unhashed secret)"
        cc_body = "grant_type=client_credentials&scope=read"
        out = {
            "client_credentials": [
                ("dot (hashed secret, default)", {
                    "method": "POST", "path": token, "auth": basic(apps["cc_hashed"]["client_id"], apps["cc_hashed"]["client_secret"]),
                    "body": cc_body, "expect": ["access_token"]}),
                ("dot (unhashed secret)", {
                    "method": "POST", "path": token, "auth": basic(apps["cc_plain"]["client_id"], apps["cc_plain"]["client_secret"]),
                    "body": cc_body, "expect": ["access_token"]}),
            ],
            "userinfo": [("dot", {"method": "GET", "path": "/o/userinfo/", "auth": f"Bearer {d['userinfo_token']}",
                                  "expect": ['"sub"']})],
            "introspection": [("dot (unhashed secret)", {"method": "POST", "path": "/o/introspect/", "auth": code_auth,
                                                         "body": f"token={d['introspect_token']}", "expect": ['"active": true']})],
            "discovery": [("dot", {"method": "GET", "path": "/o/.well-known/openid-configuration", "expect": ['"issuer"']})],
            "jwks": [("dot", {"method": "GET", "path": "/o/.well-known/jwks.json", "expect": ['"keys"']})],
        }
        login = login_spec(site, apps["code_plain"]["client_id"], apps["code_plain"]["client_secret"], d)
    out["code_exchange"] = [(label, {
        "method": "POST", "path": token, "auth": code_auth, "walk": "code", "prefix": d["code_prefix"],
        "body": f"grant_type=authorization_code&code=@@&redirect_uri={quote(d['redirect_uri'], safe='')}"
                f"&code_verifier={d['verifier']}",
        "expect": ["access_token", "id_token", "refresh_token"]})]
    out["refresh"] = [(label, {
        "method": "POST", "path": token, "auth": code_auth, "walk": "refresh", "prefix": d["refresh_prefix"],
        "body": "grant_type=refresh_token&refresh_token=@@", "expect": ["access_token", "refresh_token"]})]
    out["login"] = [(label, {"login": login, "sessions": d["sessions"]})]
    return out


def floor_spec(spec):
    """The same request shape against the floor app (it ignores method, path and body)."""
    if "login" in spec:
        login = {**spec["login"], "auth_path": "/", "token_path": "/", "floor": True, "expect": []}
        return {"login": login, "sessions": ["floor"]}
    return {**spec, "path": "/", "expect": []}


# -- wrk --------------------------------------------------------------------------------


def have_wrk():
    return shutil.which("wrk") is not None


def run_wrk(site, spec, *, duration, connections=16, threads=2, start=0, per_thread=0, timeout_s=30):
    """One wrk run; the parsed BENCH_RESULT line of bench/lua/common.lua."""
    script = LUA / ("walk.lua" if spec.get("walk") else "fixed.lua")
    args = [f"method={spec['method']}", f"path={spec['path']}", f"auth={spec.get('auth', '')}",
            f"body={spec.get('body', '')}", f"expect={'|'.join(spec.get('expect', []))}"]
    if spec.get("walk"):
        args += [f"prefix={spec['prefix']}", f"start={start}", f"per_thread={per_thread}"]
    cmd = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{duration}s", "--timeout", f"{timeout_s}s",
           "-s", str(script), site.base_url + spec["path"], "--", *args]
    out = run(cmd, env=os.environ.copy(), cwd=BENCH, timeout=duration + timeout_s + 30)
    for line in out.splitlines():
        if line.startswith("BENCH_RESULT "):
            return json.loads(line[len("BENCH_RESULT "):])
    raise RuntimeError(f"wrk printed no result:\n{out[-2000:]}")


def errors_of(result):
    socket = result["connect"] + result["read"] + result["write"] + result["timeout"]
    return result["non2xx"] + result["bad_body"] + socket


def ok_rate(result):
    ok = result["requests"] - result["non2xx"] - result["bad_body"]
    return ok / (result["duration_us"] / 1e6) if result["duration_us"] else 0.0


def drain(site, max_wait=120):
    """Wait until the server has finished the requests the last load left queued.

    A slow load (DOT's PBKDF2, ~0.4 s a request) leaves up to one request per connection in
    gunicorn's queue after wrk stops; the next measurement must not pay for them. A quick
    request that comes back fast means the workers are free.
    """
    import http.client

    deadline = time.monotonic() + max_wait
    while time.monotonic() < deadline:
        t0 = time.monotonic()
        try:
            conn = http.client.HTTPConnection(site.host, site.port, timeout=max_wait)
            conn.request("GET", site.ready_path())
            conn.getresponse().read()
            conn.close()
        except OSError:
            time.sleep(0.2)
            continue
        if time.monotonic() - t0 < 0.25:
            return

