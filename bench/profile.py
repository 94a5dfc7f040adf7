"""Where the time goes: in-process WSGI call loops under pyinstrument, and SQL queries per request.

    .venv/bin/python bench/profile.py [--site ours|dot|both] [--requests 1000] [--scenarios a,b] [--out DIR]

For each site (our project with production settings, DEBUG off; or the plain DOT baseline of
bench/dot_site.py) it makes a fresh database (SQLite in a temp folder, or a scratch database
when DATABASE_URL is PostgreSQL), seeds it like run.py does, and then, in a child process
running that site's Django, for each scenario:

1. warms up (30 requests), then records the SQL of one request (CaptureQueriesContext);
2. times ``--requests`` requests through the site's WSGI application (every middleware, one
   thread, no server, no profiler): the in-process cost of a request;
3. profiles as many again with pyinstrument, and breaks the time down by layer (self time
   attributed to the innermost frame of a known package: Django middleware, Django's
   handler/URLs/HTTP objects, the ORM, SQL execution, oauthlib, django-oauth-toolkit, our
   code, signing), plus inclusive figures (the view, SQL, signing) and the top functions.

Needs pyinstrument in the venv: ``.venv/bin/pip install 'pyinstrument>=5,<6'``.
Writes ``profile-<site>-<database>.txt`` and ``.json`` into ``--out`` (default bench/results).
"""

import argparse
import io
import json
import os
import subprocess
import sys
import time
import types
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import benchlib  # noqa: E402

SCENARIOS = ["client_credentials", "client_credentials_aksk", "code_exchange", "refresh", "userinfo",
             "introspection", "discovery", "jwks", "login"]
DEFAULT_PROFILED = ["client_credentials", "code_exchange"]
WARMUP = 30

# Layer of a frame by its file, first match wins; standard-library frames are transparent
# (their time goes to the nearest caller that has a layer).
LAYERS = [
    ("client secret hashing (Django's PBKDF2 hasher)", ("/django/contrib/auth/hashers.py", "/django/utils/crypto.py")),
    ("database backend (Django backend layer, driver, database)", ("/django/db/backends/", "/sqlite3/", "/psycopg/", "/psycopg_binary/")),
    ("ORM (queries, model instances, transactions)", ("/django/db/",)),
    ("Django middleware (+ sessions, auth, messages, axes, whitenoise)",
     ("/django/middleware/", "/django/contrib/sessions/", "/django/contrib/auth/middleware.py",
      "/django/contrib/messages/", "/whitenoise/", "/axes/")),
    ("signing (PyJWT, jwcrypto, cryptography)", ("/jwt/", "/jwcrypto/", "/cryptography/")),
    ("oauthlib", ("/oauthlib/",)),
    ("django-oauth-toolkit", ("/oauth2_provider/",)),
    ("our provider code (oidc_provider, console)", ("/oidc_provider/", "/console/", "/project/")),
    ("Django core (handler, URLs, request/response, signals, i18n)", ("/django/",)),
    ("benchmark harness", ("/bench/profile.py",)),
]
OTHER = "other third-party"


def layer_of(path):
    path = path or ""
    for name, needles in LAYERS:
        if any(n in path for n in needles):
            return name
    if "site-packages" in path:
        return OTHER
    return None  # standard library or synthetic: transparent


# -- the child: runs inside the site's Django ------------------------------------------------


def wsgi_caller(app):
    def call(method, path, headers=None, body=""):
        path, _, query = path.partition("?")
        data = body.encode() if isinstance(body, str) else (body or b"")
        environ = {
            "REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": query, "SCRIPT_NAME": "",
            "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8000", "HTTP_HOST": "127.0.0.1:8000",
            "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1", "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(data), "wsgi.errors": sys.stderr, "wsgi.version": (1, 0),
            "wsgi.multithread": False, "wsgi.multiprocess": True, "wsgi.run_once": False,
            "CONTENT_LENGTH": str(len(data)), "HTTP_ACCEPT": "application/json",
        }
        if data:
            environ["CONTENT_TYPE"] = "application/x-www-form-urlencoded"
        for k, v in (headers or {}).items():
            environ["HTTP_" + k.upper().replace("-", "_")] = v
        seen = {}

        def start_response(status, response_headers, exc_info=None):
            seen["status"] = int(status.split()[0])
            seen["headers"] = {k.lower(): v for k, v in response_headers}

        chunks = app(environ, start_response)
        try:
            payload = b"".join(chunks)
        finally:
            if hasattr(chunks, "close"):
                chunks.close()
        return seen["status"], seen["headers"], payload

    return call


def request_maker(call, spec, counter):
    """A function doing one scenario request (or login round trip) and checking the answer."""
    from urllib.parse import parse_qs, urlsplit

    if "login" in spec:
        login, session = spec["login"], spec["sessions"][0]

        def one():
            status, headers, _ = call("GET", login["auth_path"], {"Cookie": f"{login['cookie_name']}={session}"})
            assert status == 302, f"auth answered {status}"
            code = parse_qs(urlsplit(headers["location"]).query)["code"][0]
            status, _, body = call("POST", login["token_path"], login["token_headers"], login["token_body"].replace("@@", code))
            assert status == 200 and b"id_token" in body, f"token answered {status}: {body[:200]!r}"

        return one
    headers = {"Authorization": spec["auth"]} if spec.get("auth") else {}

    def one():
        body = spec.get("body", "")
        if spec.get("walk"):
            body = body.replace("@@", f"{spec['prefix']}{counter[spec['walk']]:08d}")
            counter[spec["walk"]] += 1
        status, _, payload = call(spec["method"], spec["path"], headers, body)
        assert 200 <= status < 300, f"{spec['path']} answered {status}: {payload[:300]!r}"
        for part in spec.get("expect", []):
            assert part.encode() in payload, f"{spec['path']}: no {part} in {payload[:300]!r}"

    return one


def analyse(root, n):
    """Per-request figures (ms) from a pyinstrument frame tree."""
    layers = defaultdict(float)
    selfs = defaultdict(float)
    inclusive_code = defaultdict(float)
    incl = defaultdict(float)

    def self_time(frame):
        return frame.time - sum(c.time for c in frame.children)

    def walk(frame, inherited, inside, parent_key=None):
        path = frame.file_path or ""
        own = layer_of(path)
        layer = own or inherited
        st = self_time(frame)
        if frame.is_synthetic:
            key = parent_key  # pyinstrument's "[self]" frames: the time of their parent's own code
        else:
            short = path.split("site-packages/")[-1].split("/work/main/")[-1]
            key = f"{frame.function} ({short}:{frame.line_no})"
        if st > 0:
            layers[layer or OTHER] += st
            if key:
                selfs[key] += st
        inside = set(inside)
        # Inclusive figures: count the topmost frame of each kind on a path once.
        kinds = []
        if "/django/db/backends/utils.py" in path:
            kinds.append("cursor.execute (driver + database)")
        if "/django/db/" in path:
            kinds.append("ORM incl. SQL")
        if "/django/db/transaction.py" in path:
            kinds.append("transaction.atomic enter/exit (BEGIN/COMMIT)")
        if any(x in path for x in ("/jwt/", "/jwcrypto/", "/cryptography/")):
            kinds.append("signing/verifying (PyJWT, jwcrypto)")
        if "/oauthlib/" in path:
            kinds.append("inside oauthlib (incl. its validator callbacks)")
        if frame.function == "_get_response" and path.endswith("django/core/handlers/base.py"):
            for child in frame.children:
                cp = child.file_path or ""
                if "/django/urls/" in cp:
                    incl["URL resolving"] += child.time
                elif "/django/middleware/" in cp or "/django/contrib/" in cp:
                    incl["middleware process_view"] += child.time
                elif not child.is_synthetic:
                    incl["the view (everything below Django's handler and middleware)"] += child.time
        for kind in kinds:
            if kind not in inside:
                incl[kind] += frame.time
                inside.add(kind)
        if ("/oidc_provider/" in path or "/oauth2_provider/" in path or "/console/" in path) and not frame.is_synthetic:
            key = f"{frame.function} ({path.split('site-packages/')[-1].split('/work/main/')[-1]}:{frame.line_no})"
            if key not in inside:
                inclusive_code[key] += frame.time
                inside.add(key)
        for child in frame.children:
            walk(child, layer, inside, key)

    walk(root, None, set())
    total = root.time
    per = lambda d: {k: v * 1000 / n for k, v in sorted(d.items(), key=lambda kv: -kv[1])}  # noqa: E731
    return {
        "total_ms": total * 1000 / n,
        "layers": per(layers),
        "inclusive": per(incl),
        "top_self": dict(list(per(selfs).items())[:20]),
        "top_provider_inclusive": dict(list(per(inclusive_code).items())[:25]),
    }


def _timed(fn, n):
    for _ in range(min(50, n)):
        fn()
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t0) * 1e6 / n


def micro(kind, data, call):
    """Costs of single operations, timed without a profiler (microseconds per operation)."""
    from django.contrib.auth import get_user_model

    User = get_user_model()
    user_pk = User.objects.get(username=benchlib.USERNAME).pk
    out = {
        "Django floor: GET of an unknown URL (middleware, URL resolving, 404), 0 queries":
            _timed(lambda: call("GET", "/bench-no-such-page"), 1000),
        "empty transaction.atomic() (BEGIN + COMMIT)": _timed(_empty_atomic, 2000),
        "one simple SELECT through the ORM (User by pk)": _timed(lambda: User.objects.get(pk=user_pk), 2000),
        "oauthlib Server + validator construction (DOT caches one per view class: not per request)":
            _timed(server_construction, 500),
    }
    out.update(middleware_overhead(kind, data, call))
    if kind == "ours":
        from oidc_provider import claims, keys, policy, secrets
        from oidc_provider.models import Application

        web_id = data["web"]["client_id"]
        digest = secrets.digest("x" * 43)
        key = keys.active_key()
        id_claims = {"iss": "http://127.0.0.1:8000/oidc", "sub": "s" * 32, "aud": web_id, "exp": 2_000_000_000,
                     "iat": 1_700_000_000, "auth_time": 1_700_000_000, "jti": "j" * 32, "azp": web_id, "nonce": "n"}

        def subject_uncached():
            u = User.objects.get(pk=user_pk)
            claims.subject(u)

        out.update({
            "policy.state_of() (1 query; asked 1-3x per token request)": _timed(lambda: policy.state_of("web", "authorization_code"), 2000),
            "Application by client_id (1 query, every column)": _timed(lambda: Application.objects.get(client_id=web_id), 2000),
            "keys.active_key() (1 query + per-process parsed-key cache)": _timed(keys.active_key, 2000),
            "RS256 sign of an ID token (PyJWT, cached key)": _timed(lambda: key.sign(id_claims, headers={"typ": "JWT"}), 500),
            "secrets.verify() (HMAC-SHA256, constant-time compare)": _timed(lambda: secrets.verify("x" * 43, digest), 20000),
            "user + claims.subject() (2 queries: user, Subject get_or_create)": _timed(subject_uncached, 2000),
        })
    return out


def middleware_overhead(kind, data, call):
    """The same request through the whole WSGI stack and straight to the view (no middleware,
    no handler): the difference is what Django's handler and the middleware cost."""
    from django.test import RequestFactory
    from django.urls import resolve

    specs = benchlib.specs(types.SimpleNamespace(kind=kind, data=data))
    factory = RequestFactory(HTTP_HOST="127.0.0.1:8000", SERVER_NAME="127.0.0.1", SERVER_PORT="8000")
    out = {}
    for scenario in ("discovery", "client_credentials"):
        label, spec = [e for e in specs[scenario] if "hashed secret, default" not in e[0]][0]
        match = resolve(spec["path"])
        headers = {"HTTP_AUTHORIZATION": spec["auth"]} if spec.get("auth") else {}

        def direct():
            if spec["method"] == "POST":
                request = factory.post(spec["path"], data=spec["body"], content_type="application/x-www-form-urlencoded", **headers)
            else:
                request = factory.get(spec["path"], **headers)
            response = match.func(request, *match.args, **match.kwargs)
            assert response.status_code == 200, response.content[:200]

        def full():
            h = {"Authorization": spec["auth"]} if spec.get("auth") else {}
            status, _, _ = call(spec["method"], spec["path"], h, spec.get("body", ""))
            assert status == 200

        n = 1000 if scenario == "discovery" else 500
        a, b = _timed(full, n), _timed(direct, n)
        out[f"{scenario} ({label}): whole WSGI stack"] = a
        out[f"{scenario} ({label}): the view alone (RequestFactory, no middleware)"] = b
        out[f"{scenario} ({label}): => Django handler + middleware"] = a - b
    return out


def server_construction():
    from oauth2_provider.settings import oauth2_settings

    return oauth2_settings.OAUTH2_SERVER_CLASS(oauth2_settings.OAUTH2_VALIDATOR_CLASS(), **oauth2_settings.server_kwargs)


def _empty_atomic():
    from django.db import transaction

    with transaction.atomic():
        pass


def child(params):
    sys.path.insert(0, os.getcwd())
    import django

    django.setup()
    from django.core.wsgi import get_wsgi_application
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    app = get_wsgi_application()
    call = wsgi_caller(app)
    site = types.SimpleNamespace(kind=params["kind"], data=params["data"])
    specs = benchlib.specs(site)
    counter = defaultdict(int)
    out = {}
    for scenario in params["scenarios"]:
        if scenario not in specs:
            continue
        for label, spec in specs[scenario]:
            one = request_maker(call, spec, counter)
            # DOT's default PBKDF2 secret costs ~0.5 s a request: a few tell enough.
            n = min(params["requests"], 20) if "hashed secret, default" in label else params["requests"]
            for _ in range(min(WARMUP, n)):
                one()
            with CaptureQueriesContext(connection) as ctx:
                one()
            queries = [q["sql"] for q in ctx.captured_queries]
            t0 = time.perf_counter()
            for _ in range(n):
                one()
            elapsed = time.perf_counter() - t0
            entry = {"label": label, "queries": len(queries), "sql": queries, "ms_per_request": elapsed * 1000 / n}
            if scenario in params["profiled"]:
                from pyinstrument import Profiler

                profiler = Profiler(interval=0.001)
                profiler.start()
                for _ in range(n):
                    one()
                profiler.stop()
                entry["profile"] = analyse(profiler.last_session.root_frame(), n)
                entry["requests"] = n
                entry["profile_text"] = profiler.output_text(unicode=False, color=False, show_all=False,
                                                             timeline=False)[:60000]
            out[f"{scenario} | {label}"] = entry
            print(f"profile: {params['kind']} {scenario}: {entry['ms_per_request']:.2f} ms/request, "
                  f"{len(queries)} queries", file=sys.stderr, flush=True)
    out["_micro"] = micro(params["kind"], params["data"], call)
    print("BENCH_PROFILE " + json.dumps(out))


# -- the parent: prepares the sites and writes the report -----------------------------------------


def report(kind, database, results, n):
    results = dict(results)
    micro_costs = results.pop("_micro", {})
    lines = [f"# {kind} on {database}: {n} requests per scenario, in-process (WSGI call loop, one thread, DEBUG off)", ""]
    lines.append("| scenario | in-process ms/request | req/s (1 thread) | SQL queries |")
    lines.append("|---|---:|---:|---:|")
    for key, e in results.items():
        lines.append(f"| {key.replace(' | ', ' — ')} | {e['ms_per_request']:.2f} | {1000 / e['ms_per_request']:.0f} | {e['queries']} |")
    if micro_costs:
        lines += ["", "Single operations, timed without a profiler (microseconds each):", ""]
        lines += [f"  {v:9.1f} us  {k}" for k, v in micro_costs.items()]
    for key, e in results.items():
        lines += ["", f"## {key.replace(' | ', ' — ')}", "", f"{e['queries']} queries:"]
        lines += [f"  {i + 1:>2}. {sql[:240]}" for i, sql in enumerate(e["sql"])]
        p = e.get("profile")
        if not p:
            continue
        lines += ["", f"Profiled: {p['total_ms']:.2f} ms/request under the profiler.", "",
                  "Self time by layer (ms/request):"]
        lines += [f"  {v:7.3f}  {v / p['total_ms']:6.1%}  {k}" for k, v in p["layers"].items()]
        lines += ["", "Inclusive (ms/request; overlapping):"]
        lines += [f"  {v:7.3f}  {v / p['total_ms']:6.1%}  {k}" for k, v in p["inclusive"].items()]
        lines += ["", "Top functions by self time (ms/request):"]
        lines += [f"  {v:7.3f}  {k}" for k, v in p["top_self"].items()]
        lines += ["", "Provider code (oidc_provider, oauth2_provider, console) by inclusive time (ms/request):"]
        lines += [f"  {v:7.3f}  {k}" for k, v in p["top_provider_inclusive"].items()]
        lines += ["", "pyinstrument call tree:", "", e["profile_text"]]
    return "\n".join(lines) + "\n"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--site", choices=["ours", "dot", "both"], default="both")
    p.add_argument("--requests", type=int, default=500, help="requests timed, and again profiled, per scenario")
    p.add_argument("--scenarios", default=",".join(SCENARIOS), help="scenarios whose queries and time are measured")
    p.add_argument("--profile", default=",".join(DEFAULT_PROFILED), help="scenarios profiled with pyinstrument")
    p.add_argument("--out", default=str(benchlib.BENCH / "results"))
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        return child(json.loads(Path(args.child).read_text()))
    try:
        import pyinstrument  # noqa: F401
    except ImportError:
        print("profile: pyinstrument is missing: .venv/bin/pip install 'pyinstrument>=5,<6'", file=sys.stderr)
        return 2
    if not 10 <= args.requests <= 100000:
        p.error("--requests 10..100000")
    scenarios = [s for s in args.scenarios.split(",") if s]
    profiled = [s for s in args.profile.split(",") if s]
    database_url = os.environ.get("DATABASE_URL", "")
    pg_url = database_url if benchlib.is_postgres(database_url) else None
    database = "postgresql" if pg_url else "sqlite"
    benchlib.install_cleanup()
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = benchlib.make_tmp()
    kinds = ["ours", "dot"] if args.site == "both" else [args.site]
    status = 0
    try:
        for kind in kinds:
            site = (benchlib.OursSite if kind == "ours" else benchlib.DotSite)(tmp, 1, pg_url)
            need = WARMUP + 1 + 2 * args.requests + 10
            site.seed(codes=need if "code_exchange" in scenarios else 0,
                      refresh=need if "refresh" in scenarios else 0, sessions=1)
            params = {"kind": kind, "data": site.data, "requests": args.requests, "scenarios": scenarios,
                      "profiled": profiled}
            params_file = site.tmp / "profile-params.json"
            params_file.write_text(json.dumps(params))
            if kind == "ours":
                # What our issuer would be behind the WSGI caller's Host header.
                site.env["OIDC_ISSUER"] = "http://127.0.0.1:8000/oidc"
            env = {**site.env, "PYTHONPATH": str(site.cwd)}
            proc = benchlib.popen([benchlib.PYTHON, str(Path(__file__).resolve()), "--child", str(params_file)],
                                  cwd=site.cwd, env=env, stdout=subprocess.PIPE, text=True)
            try:
                stdout, _ = proc.communicate(timeout=3600)
            finally:
                benchlib.stop_process(proc)
            result = None
            for line in stdout.splitlines():
                if line.startswith("BENCH_PROFILE "):
                    result = json.loads(line[len("BENCH_PROFILE "):])
            if result is None:
                print(f"profile: {kind} produced no result (exit {proc.returncode})", file=sys.stderr)
                status = 1
                continue
            text = report(kind, "PostgreSQL" if pg_url else "SQLite (WAL)", result, args.requests)
            (out_dir / f"profile-{kind}-{database}.txt").write_text(text)
            (out_dir / f"profile-{kind}-{database}.json").write_text(json.dumps(result, indent=1))
            print(text.split("\n## ")[0])
            for key, e in result.items():
                if key != "_micro" and e.get("profile"):
                    pr = e["profile"]
                    print(f"\n{kind} {key}: {pr['total_ms']:.2f} ms/request profiled; by layer:")
                    for k, v in pr["layers"].items():
                        print(f"  {v:7.3f} ms  {v / pr['total_ms']:6.1%}  {k}")
            print(f"profile: wrote {out_dir / f'profile-{kind}-{database}.txt'}")
    finally:
        benchlib.cleanup()
    return status


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
