"""Instructions per request: a scenario's in-process cost as the CPU counts it, for A/B of a change.

    apt-get install -y valgrind
    .venv/bin/python bench/instructions.py [--scenarios client_credentials,userinfo] [--against REV]
                                           [--requests 100,300]

Requests per second on a shared two-core machine drift by 15-30 % within minutes, so a change
worth 3 % cannot be seen in them, not even interleaved. The number of instructions a request
executes does not drift: here it repeats to within 0.1 %. For our project at this tree (and,
with ``--against``, at another revision, exported as ``run.py --against`` does) this seeds a
SQLite database as run.py does; then, for each scenario, it calls the site's WSGI application
in a loop (every middleware, no server) under ``valgrind --tool=callgrind`` twice, with N1 and N2 requests
after a warm-up, each time on a fresh copy of the database, and prints
(instructions(N2) - instructions(N1)) / (N2 - N1): the per-request cost without start-up.

To make the count repeat: ``PYTHONHASHSEED=0``; ``gc.freeze()`` after the warm-up (otherwise a
full collection of Django's heap falls in one window and not the other: 3 % either way); the
dashboard's token counts are written once an hour instead of by a timer every second of
valgrind's slowed clock. The count is that of the Python process alone: on SQLite, the
database's work is in it; gunicorn's own parsing (some 0.56 M instructions per request, the
floor) is not. It says which change is cheaper, not how many requests per second a server
makes: RSA signing, for one, costs more cycles per instruction than Python does.

With ``DATABASE_URL`` on PostgreSQL, the site's database is a scratch database there, copied
from its seeded state (``CREATE DATABASE … TEMPLATE``) before each run; the count is then the
Python side of a request alone (Django, the driver, the socket calls), not the server's.
"""

import argparse
import io
import json
import os
import re
import shutil
import subprocess
import sys
import types
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import benchlib  # noqa: E402

SCENARIOS = ["client_credentials", "client_credentials_aksk", "code_exchange", "refresh", "userinfo",
             "introspection", "discovery", "jwks", "login"]
DEFAULT_SCENARIOS = ["client_credentials", "code_exchange", "userinfo", "introspection"]
WARMUP = 30
COLLECTED = re.compile(r"Collected : (\d+)")


def wsgi_caller(app):
    """``call(method, path, headers, body) -> (status, headers, payload)`` straight through ``app``."""

    def call(method, path, headers=None, body=""):
        path, _, query = path.partition("?")
        data = body.encode()
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


def child(params):
    """Inside valgrind: the site's Django, a warm-up, then ``params['requests']`` requests."""
    import gc

    sys.path.insert(0, os.getcwd())
    import django

    django.setup()
    from django.conf import settings
    from django.core.wsgi import get_wsgi_application

    settings.CONSOLE_TOKEN_COUNT_INTERVAL = 3600
    call = wsgi_caller(get_wsgi_application())
    site = types.SimpleNamespace(kind="ours", data=params["data"])
    _label, scenario = benchlib.specs(site)[params["scenario"]][0]
    one = request_maker(call, scenario, defaultdict(int))
    for _ in range(WARMUP):
        one()
    gc.collect()
    gc.freeze()
    for _ in range(params["requests"]):
        one()


def keep_seeded(site):
    """Keep the seeded database, for ``restore_seeded`` before each run."""
    if site.postgres is None:
        database = site.database_url.removeprefix("sqlite:///")
        shutil.copyfile(database, f"{database}.seeded")
        return
    seeded = benchlib.ScratchPostgres(site.postgres.admin_conninfo, "seeded")
    seeded.name = f"{site.postgres.name}_seeded"
    _admin(site, f'CREATE DATABASE "{seeded.name}" TEMPLATE "{site.postgres.name}"')
    benchlib.on_cleanup(seeded.drop)
    site.seeded = seeded.name


def restore_seeded(site):
    if site.postgres is None:
        db = Path(site.database_url.removeprefix("sqlite:///"))
        for suffix in ("-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
        shutil.copyfile(f"{db}.seeded", db)
        return
    _admin(site, f'DROP DATABASE IF EXISTS "{site.postgres.name}" WITH (FORCE)')
    _admin(site, f'CREATE DATABASE "{site.postgres.name}" TEMPLATE "{site.seeded}"')


def _admin(site, sql):
    import psycopg

    with psycopg.connect(site.postgres.admin_conninfo, autocommit=True, connect_timeout=10) as conn:
        conn.execute(sql)


def count(site, scenario, requests):
    """Instructions of one child run: ``requests`` requests after the warm-up."""
    restore_seeded(site)
    params = site.tmp / "instructions-params.json"
    params.write_text(json.dumps({"data": site.data, "scenario": scenario, "requests": requests}))
    env = {**site.env, "PYTHONHASHSEED": "0", "PYTHONPATH": str(site.cwd)}
    proc = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", benchlib.PYTHON,
         str(Path(__file__).resolve()), "--child", str(params)],
        cwd=site.cwd, env=env, capture_output=True, text=True, timeout=3600,
    )
    found = COLLECTED.search(proc.stderr)
    if proc.returncode != 0 or not found:
        raise RuntimeError(f"{site.kind} {scenario}: the run failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    return int(found.group(1))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scenarios", default=",".join(DEFAULT_SCENARIOS), help=f"of {', '.join(SCENARIOS)}")
    p.add_argument("--against", metavar="REV", help="also count our project at this git revision")
    p.add_argument("--requests", default="100,300", help="N1,N2: the two runs' request counts")
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        return child(json.loads(Path(args.child).read_text()))
    if shutil.which("valgrind") is None:
        print("instructions: valgrind is missing: apt-get install -y valgrind", file=sys.stderr)
        return 2
    scenarios = [s for s in args.scenarios.split(",") if s]
    unknown = sorted(set(scenarios) - set(SCENARIOS))
    if unknown:
        p.error(f"unknown scenarios {unknown}; choose from {SCENARIOS}")
    try:
        n1, n2 = (int(n) for n in args.requests.split(","))
    except ValueError:
        p.error("--requests takes two numbers, N1,N2")
    if not 0 <= n1 < n2 <= 5000:
        p.error("--requests N1,N2 with 0 <= N1 < N2 <= 5000")
    benchlib.install_cleanup()
    tmp = benchlib.make_tmp()
    try:
        database_url = os.environ.get("DATABASE_URL")
        sites = [benchlib.OursSite(tmp, 1, database_url)]
        if args.against:
            sites.append(benchlib.AgainstSite(tmp, args.against, 1, database_url))
        need = WARMUP + n2 + 5
        for site in sites:
            site.seed(codes=need, refresh=need, sessions=1)
            # What the WSGI caller's Host header makes our issuer.
            site.env["OIDC_ISSUER"] = "http://127.0.0.1:8000/oidc"
            keep_seeded(site)
        print(f"instructions: database {sites[0].database_label}", file=sys.stderr, flush=True)
        names = {"ours": "this tree"} | ({"against": f"at {sites[1].rev}"} if args.against else {})
        header = "| scenario | " + " | ".join(f"{names[s.kind]} (instructions/request)" for s in sites)
        header += " | this tree / against |" if args.against else " |"
        lines = [header, "|---|" + "---:|" * (len(sites) + bool(args.against))]
        for scenario in scenarios:
            per_request = []
            for site in sites:
                first, second = (count(site, scenario, n) for n in (n1, n2))
                per_request.append((second - first) / (n2 - n1))
                print(f"instructions: {names[site.kind]} {scenario}: {per_request[-1]:,.0f} per request",
                      file=sys.stderr, flush=True)
            row = f"| {scenario} | " + " | ".join(f"{v:,.0f}" for v in per_request)
            row += f" | {per_request[0] / per_request[1]:.3f} |" if args.against else " |"
            lines.append(row)
        print("\n".join(lines))
    finally:
        benchlib.cleanup()
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
