"""Requests sent in-process for ``run.py --instructions``, run under ``valgrind --tool=callgrind
--zero-before=getppid --dump-before=getpgrp`` in a seeded site's environment. Per scenario: a
warm-up, ``os.getppid()`` (callgrind zeroes its counters), the requests through the WSGI
application gunicorn's worker would call, each answer checked as wrk checks it, and
``os.getpgrp()`` (callgrind dumps the counters): one dump per scenario, of those requests only.

    python bench/count.py SPECS.json WARMUP REQUESTS
"""

import gc
import io
import json
import os
import sys

import loadgen


class InProcess:
    """``loadgen.Http``'s ``call()``, answered by the WSGI application without a socket."""

    def __init__(self, application):
        self.application = application

    def call(self, method, path, body=None, headers=None):
        path, _, query = path.partition("?")
        data = body.encode() if isinstance(body, str) else (body or b"")
        environ = {
            "REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": query, "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1", "HTTP_HOST": "127.0.0.1",
            "HTTP_ACCEPT": "application/json", "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(data),
            "wsgi.errors": sys.stderr, "wsgi.multithread": False, "wsgi.multiprocess": True, "wsgi.run_once": False,
        }
        if data:
            environ.update(CONTENT_TYPE="application/x-www-form-urlencoded", CONTENT_LENGTH=str(len(data)))
        for name, value in (headers or {}).items():
            environ["HTTP_" + name.upper().replace("-", "_")] = value
        started = []
        result = self.application(environ, lambda status, response_headers, exc_info=None: started.append(
            (int(status[:3]), {k.lower(): v for k, v in response_headers})))
        try:
            payload = b"".join(result)
        finally:
            getattr(result, "close", lambda: None)()
        return started[0][0], started[0][1], payload


def requester(http, spec):
    """A function of the request's index that sends it; None when it worked, else why not."""
    if "login" in spec:
        session = spec["sessions"][0]
        return lambda index: loadgen.login_round_trip(http, spec["login"], session)
    headers = {"Authorization": spec["auth"]} if spec.get("auth") else {}

    def send(index):
        body = spec.get("body")
        if spec.get("walk"):
            body = body.replace("@@", f"{spec['prefix']}{index:08d}")
        status, _, payload = http.call(spec["method"], spec["path"], body=body, headers=headers)
        if not 200 <= status < 300:
            return f"{status}: {payload[:200]!r}"
        missing = [part for part in spec.get("expect", ()) if part.encode() not in payload]
        return f"no {missing[0]} in {payload[:200]!r}" if missing else None

    return send


def main(specs_path, warmup, requests):
    from project.wsgi import application  # what gunicorn serves; the site's folder is on PYTHONPATH

    http = InProcess(application)
    for scenario, spec in json.loads(open(specs_path).read()).items():
        send = requester(http, spec)
        for index in range(warmup):
            if (reason := send(index)) is not None:
                sys.exit(f"count: {scenario}: warm-up request {index} failed: {reason}")
        gc.collect()  # a collection of the warm-up's garbage does not fall inside the window
        os.getppid()
        failures = [reason for index in range(warmup, warmup + requests) if (reason := send(index)) is not None]
        os.getpgrp()
        if failures:
            sys.exit(f"count: {scenario}: {len(failures)} of {requests} requests failed, e.g. {failures[0]}")
        print(f"count: {scenario}: {requests} requests", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
