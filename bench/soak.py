"""The soak: a long mixed load on our provider on PostgreSQL, watching errors, throughput and memory.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test .venv/bin/python bench/soak.py [--minutes 10]

Starts our project under gunicorn (production settings, DEBUG off, 2 sync workers) on a
scratch database created on the DATABASE_URL server (dropped at the end), and drives it
with 16 threads for ``--minutes``, each picking its next call at random by weight, like real
traffic: mostly token and userinfo calls, some logins:

    client credentials 30, AK/SK client credentials 10, userinfo 25, refresh (rotation) 10,
    introspection 8, login round trip (session -> /auth -> code -> /token) 7, discovery 5, JWKS 5

Each thread starts with a login and then uses the tokens it got (userinfo and introspection
with its latest access token, refresh with its latest refresh token), as a relying party would.
Every 30 s it prints the window's throughput, latency, errors and each gunicorn worker's RSS
(from /proc/<pid>/status). At the end: errors (must be 0), throughput first vs last window,
RSS at start, after the first window and at the end (must be flat). Exit status 1 when there
were errors, a worker was restarted, or a worker's RSS grew more than the allowance.
"""

import argparse
import json
import os
import random
import sys
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import benchlib  # noqa: E402
import loadgen  # noqa: E402

WEIGHTS = {
    "client_credentials": 30,
    "client_credentials_aksk": 10,
    "userinfo": 25,
    "refresh": 10,
    "introspection": 8,
    "login": 7,
    "discovery": 5,
    "jwks": 5,
}
# RSS may grow this much from the end of the first window to the end of the run.
RSS_ALLOWANCE_FRACTION = 0.10
RSS_ALLOWANCE_KIB = 8 * 1024


class Window:
    def __init__(self):
        self.ok = Counter()
        self.errors = Counter()
        self.latencies = []


class Soak:
    def __init__(self, site, threads, window_s, deadline, seed):
        self.site, self.threads, self.window_s, self.deadline = site, threads, window_s, deadline
        self.lock = threading.Lock()
        self.windows = defaultdict(Window)
        self.error_samples = []
        self.start = time.monotonic()
        self.rng_seed = seed
        specs = benchlib.specs(site)
        self.fixed = {name: specs[name][0][1] for name in ("client_credentials", "client_credentials_aksk", "discovery", "jwks")}
        self.login = specs["login"][0][1]["login"]
        self.sessions = site.data["sessions"]
        web = site.data["web"]
        self.web_auth = benchlib.basic(web["client_id"], web["client_secret"])

    def record(self, scenario, ok, latency, reason=None):
        w = int((time.monotonic() - self.start) // self.window_s)
        with self.lock:
            window = self.windows[w]
            if ok:
                window.ok[scenario] += 1
                window.latencies.append(latency)
            else:
                window.errors[scenario] += 1
                if len(self.error_samples) < 20:
                    self.error_samples.append(f"{scenario}: {reason}")

    # -- one thread ------------------------------------------------------------------

    def do_login(self, http, state, session):
        status, headers, _ = http.call("GET", self.login["auth_path"], headers={"Cookie": f"sessionid={session}"})
        if status != 302 or "code=" not in headers.get("location", ""):
            return f"auth {status} {headers.get('location', '')[:100]}"
        from urllib.parse import parse_qs, urlsplit

        code = parse_qs(urlsplit(headers["location"]).query)["code"][0]
        status, _, body = http.call("POST", self.login["token_path"], body=self.login["token_body"].replace("@@", code),
                                    headers=self.login["token_headers"])
        if status != 200:
            return f"token {status} {body[:200]!r}"
        tokens = json.loads(body)
        if "id_token" not in tokens or "refresh_token" not in tokens:
            return "token: no id_token/refresh_token"
        state.update(access=tokens["access_token"], refresh=tokens["refresh_token"])
        return None

    def do(self, http, scenario, state, session):
        if scenario == "login":
            return self.do_login(http, state, session)
        if scenario in self.fixed:
            spec = self.fixed[scenario]
            headers = {"Authorization": spec["auth"]} if spec.get("auth") else {}
            status, _, body = http.call(spec["method"], spec["path"], body=spec.get("body") or None, headers=headers)
            expect = spec.get("expect", [])
        elif scenario == "userinfo":
            status, _, body = http.call("GET", "/oidc/me", headers={"Authorization": f"Bearer {state['access']}"})
            expect = ['"sub"']
        elif scenario == "introspection":
            status, _, body = http.call("POST", "/oidc/token/introspection", body=f"token={state['access']}",
                                        headers={"Authorization": self.web_auth})
            expect = ['"active": true']
        elif scenario == "refresh":
            status, _, body = http.call("POST", "/oidc/token", body=f"grant_type=refresh_token&refresh_token={state['refresh']}",
                                        headers={"Authorization": self.web_auth})
            expect = ["refresh_token"]
            if status == 200:
                tokens = json.loads(body)
                state.update(access=tokens["access_token"], refresh=tokens["refresh_token"])
        else:
            raise ValueError(scenario)
        if status != 200:
            return f"{status} {body[:200]!r}"
        for part in expect:
            if part.encode() not in body:
                return f"no {part} in {body[:200]!r}"
        return None

    def worker(self, n):
        rng = random.Random(self.rng_seed + n)
        names, weights = list(WEIGHTS), list(WEIGHTS.values())
        http = loadgen.Http(self.site.host, self.site.port)
        session = self.sessions[n % len(self.sessions)]
        state = {}
        try:
            while time.monotonic() < self.deadline:
                scenario = "login" if not state else rng.choices(names, weights)[0]
                t0 = time.perf_counter()
                try:
                    reason = self.do(http, scenario, state, session)
                except Exception as e:  # socket trouble, bad JSON: an error like any other
                    reason = f"{type(e).__name__}: {e}"
                    time.sleep(0.05)
                self.record(scenario, reason is None, time.perf_counter() - t0, reason)
        finally:
            http.close()


def fmt_mib(kib):
    return "-" if kib is None else f"{kib / 1024:.1f}"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, default=10, help="length of the load (default 10)")
    p.add_argument("--window", type=int, default=30, help="seconds per report window (default 30)")
    p.add_argument("--workers", type=int, default=2, help="gunicorn sync workers (default 2)")
    p.add_argument("--connections", type=int, default=16, help="client threads (default 16)")
    p.add_argument("--seed", type=int, default=7, help="random seed of the traffic mix")
    args = p.parse_args(argv)
    if not 0.1 <= args.minutes <= 240 or not 5 <= args.window <= 600 or not 1 <= args.connections <= 64:
        p.error("--minutes 0.1..240, --window 5..600, --connections 1..64")
    database_url = os.environ.get("DATABASE_URL", "")
    if not benchlib.is_postgres(database_url):
        print("soak: set DATABASE_URL to a PostgreSQL server, e.g.\n"
              "  DATABASE_URL=postgres://postgres@127.0.0.1:5432/test .venv/bin/python bench/soak.py", file=sys.stderr)
        return 2
    benchlib.install_cleanup()
    tmp = benchlib.make_tmp()
    site = benchlib.OursSite(tmp, args.workers, database_url)
    try:
        site.seed(codes=0, refresh=0, sessions=args.connections)
        site.start()
        pids = site.worker_pids()
        rss_launch = {pid: benchlib.rss_kib(pid) for pid in pids}
        print(f"soak: ours on {site.base_url}, PostgreSQL scratch database {site.postgres.name}; gunicorn PID "
              f"{site.proc.pid}, workers {pids}; {args.connections} threads for {args.minutes:g} min")
        print(f"soak: mix {', '.join(f'{k} {v}' for k, v in WEIGHTS.items())}")
        print(f"soak: other processes use {benchlib.foreign_load():.0%} of the CPUs at the start")
        duration = args.minutes * 60
        soak = Soak(site, args.connections, args.window, time.monotonic() + duration, args.seed)
        threads = [threading.Thread(target=soak.worker, args=(n,), daemon=True) for n in range(args.connections)]
        meter = benchlib.CpuMeter().start()
        for t in threads:
            t.start()
        header = f"{'window':>11} {'req/s':>8} {'logins/s':>8} {'errors':>6} {'p50 ms':>7} {'p99 ms':>7} {'other load':>10}  RSS MiB per worker"
        print(header)
        rss_rows = []
        n_windows = int(-(-duration // args.window))
        for w in range(n_windows):
            window_end = soak.start + min((w + 1) * args.window, duration)
            time.sleep(max(0.0, window_end - time.monotonic()))
            if w == n_windows - 1:
                for t in threads:
                    t.join(timeout=loadgen.SOCKET_TIMEOUT * 2 + 5)
            meter.stop()
            other = meter.foreign
            meter = benchlib.CpuMeter().start()
            time.sleep(0.2)  # let the window's last records land
            current = site.worker_pids()
            rss = {pid: benchlib.rss_kib(pid) for pid in current}
            rss_rows.append(rss)
            win = soak.windows.get(w, Window())
            seconds = min(args.window, duration - w * args.window)
            lat = sorted(win.latencies)
            total_ok = sum(win.ok.values())
            print(f"{w * args.window:>4}-{w * args.window + seconds:>4.0f} s {total_ok / seconds:>8.1f} "
                  f"{win.ok['login'] / seconds:>8.1f} {sum(win.errors.values()):>6} "
                  f"{loadgen.percentile(lat, 50) * 1000:>7.1f} {loadgen.percentile(lat, 99) * 1000:>7.1f} {other:>10.0%}  "
                  + " ".join(f"{pid}:{fmt_mib(v)}" for pid, v in rss.items()), flush=True)
        for t in threads:
            t.join(timeout=1)

        totals_ok, totals_err = Counter(), Counter()
        for win in soak.windows.values():
            totals_ok.update(win.ok)
            totals_err.update(win.errors)
        errors = sum(totals_err.values())
        end_pids = site.worker_pids()
        restarted = sorted(set(pids) ^ set(end_pids))
        first, last = rss_rows[0] if rss_rows else {}, rss_rows[-1] if rss_rows else {}
        print()
        print(f"soak: {sum(totals_ok.values())} calls worked, {errors} failed, in {duration:.0f} s; by scenario: "
              + ", ".join(f"{k} {totals_ok[k]}" + (f" ({totals_err[k]} failed)" if totals_err[k] else "") for k in WEIGHTS))
        if soak.error_samples:
            print("soak: first errors:\n  " + "\n  ".join(soak.error_samples))
        rates = [sum(soak.windows.get(w, Window()).ok.values()) / min(args.window, duration - w * args.window)
                 for w in range(n_windows)]
        if rates:
            print(f"soak: throughput first window {rates[0]:.1f} req/s, last {rates[-1]:.1f} req/s, "
                  f"min {min(rates):.1f}, max {max(rates):.1f}")
        flat = True
        print("soak: worker RSS (MiB)   at launch   after 1st window   at end   growth since 1st window")
        for pid in pids:
            a, b, c = rss_launch.get(pid), first.get(pid), last.get(pid)
            growth = (c - b) if (b is not None and c is not None) else None
            ok = growth is not None and growth <= max(RSS_ALLOWANCE_KIB, b * RSS_ALLOWANCE_FRACTION)
            flat = flat and ok
            print(f"      worker {pid:<8}  {fmt_mib(a):>9}   {fmt_mib(b):>16}   {fmt_mib(c):>6}   "
                  f"{('+' + fmt_mib(growth)) if growth is not None else 'gone'}{'' if ok else '  <- not flat'}")
        if restarted:
            print(f"soak: worker PIDs changed during the run (restarted workers): {restarted}")
        verdict = errors == 0 and not restarted and flat
        print(f"soak: {'PASS' if verdict else 'FAIL'}: errors {errors} (must be 0), workers restarted "
              f"{len(restarted)}, memory {'flat' if flat else 'NOT flat'} "
              f"(allowance max({RSS_ALLOWANCE_KIB // 1024} MiB, {RSS_ALLOWANCE_FRACTION:.0%}))")
        return 0 if verdict else 1
    finally:
        site.stop()
        benchlib.cleanup()


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("soak: interrupted; server stopped, scratch database dropped", file=sys.stderr)
        sys.exit(130)
