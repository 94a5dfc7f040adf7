"""A small Python load generator: threads, one keep-alive ``http.client`` connection each.

Used where wrk is awkward: the browserless login round trip (GET /auth with a session
cookie -> 302 with a code -> POST /token), for our provider, the DOT baseline and the floor
alike. gunicorn's sync workers close the connection after every response; ``http.client``
then reconnects on the next request, as wrk does.

Every loop is bounded by a deadline, every socket by a timeout.
"""

import http.client as httpclient
import threading
import time
from urllib.parse import parse_qs, urlsplit

SOCKET_TIMEOUT = 30


class Http:
    def __init__(self, host, port, timeout=SOCKET_TIMEOUT):
        self.host, self.port, self.timeout = host, port, timeout
        self.conn = None

    def call(self, method, path, body=None, headers=None):
        """(status, {lower-case header: value}, body bytes); raises OSError/HTTPException on socket trouble."""
        if self.conn is None:
            self.conn = httpclient.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            data = body.encode() if isinstance(body, str) else body
            hdrs = dict(headers or {})
            if data is not None:
                hdrs.setdefault("Content-Type", "application/x-www-form-urlencoded")
            self.conn.request(method, path, body=data, headers=hdrs)
            response = self.conn.getresponse()
            payload = response.read()
            if response.will_close:
                self.conn.close()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, payload
        except (OSError, httpclient.HTTPException):
            self.close()
            raise

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def percentile(sorted_values, p):
    if not sorted_values:
        return 0.0
    k = min(len(sorted_values) - 1, max(0, int(round(p / 100.0 * (len(sorted_values) - 1)))))
    return sorted_values[k]


def login_round_trip(http, spec, session_key):
    """One login round trip; returns None when it worked, else a short reason.

    ``spec``: auth_path (with query), token_path, token_headers, token_body (with @@ for the
    code), cookie_name, floor (the floor app answers 200 to both requests).
    """
    status, headers, _ = http.call("GET", spec["auth_path"], headers={"Cookie": f"{spec['cookie_name']}={session_key}"})
    if spec.get("floor"):
        if status != 200:
            return f"auth {status}"
        code = "floor"
    else:
        if status != 302:
            return f"auth {status}"
        query = parse_qs(urlsplit(headers.get("location", "")).query)
        if "code" not in query:
            return "auth: no code in " + headers.get("location", "")[:120]
        code = query["code"][0]
    status, _, body = http.call("POST", spec["token_path"], body=spec["token_body"].replace("@@", code),
                                headers=spec["token_headers"])
    if status != 200:
        return f"token {status}: {body[:200]!r}"
    for part in spec.get("expect", ()):
        if part.encode() not in body:
            return f"token: no {part}"
    return None


def login_load(host, port, spec, sessions, duration, threads=16):
    """Drive login round trips for ``duration`` seconds; one session per thread.

    Returns a dict shaped like a wrk result: requests (round trips that worked), non2xx
    (round trips that failed), socket errors, latency percentiles of whole round trips.
    """
    latencies = [[] for _ in range(threads)]
    failures = [0] * threads
    socket_errors = [0] * threads
    reasons = {}
    start = time.monotonic()
    deadline = start + duration

    def worker(n):
        http = Http(host, port)
        session = sessions[n % len(sessions)]
        try:
            while time.monotonic() < deadline:
                t0 = time.perf_counter()
                try:
                    reason = login_round_trip(http, spec, session)
                except (OSError, httpclient.HTTPException) as e:
                    socket_errors[n] += 1
                    reasons.setdefault(type(e).__name__, str(e)[:200])
                    time.sleep(0.01)
                    continue
                if reason is None:
                    latencies[n].append(time.perf_counter() - t0)
                else:
                    failures[n] += 1
                    reasons.setdefault(reason[:40], reason)
        finally:
            http.close()

    pool = [threading.Thread(target=worker, args=(n,), daemon=True) for n in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(timeout=max(0.0, deadline - time.monotonic()) + SOCKET_TIMEOUT * 2 + 5)
    elapsed = time.monotonic() - start
    merged = sorted(x for per in latencies for x in per)
    return {
        "requests": len(merged) + sum(failures),
        "duration_us": int(elapsed * 1e6),
        "connect": 0, "read": sum(socket_errors), "write": 0, "status": sum(failures), "timeout": 0,
        "non2xx": sum(failures), "bad_body": 0, "exhausted": 0,
        "p50_us": percentile(merged, 50) * 1e6, "p90_us": percentile(merged, 90) * 1e6,
        "p99_us": percentile(merged, 99) * 1e6, "max_us": (merged[-1] if merged else 0) * 1e6,
        "mean_us": (sum(merged) / len(merged) * 1e6) if merged else 0.0,
        "reasons": list(reasons.values())[:5],
    }
