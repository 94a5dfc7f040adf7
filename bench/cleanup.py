"""``manage.py cleartokens`` on a big backlog while the token endpoint serves load.

    DATABASE_URL=postgres://... .venv/bin/python bench/cleanup.py [--rows 4000000] [--expired 0.75]

What it answers: how many expired rows a minute ``cleartokens`` removes on PostgreSQL, and
what it does meanwhile to the token endpoint's p99 (long locks, long transactions). It seeds
one site of our project as run.py does, plus ``--rows`` growth rows (seed.grow; ``--expired``
of them past what cleartokens keeps), serves it with gunicorn, and drives the token endpoint
with wrk in windows of ``--window`` s, alternating client credentials and refresh (rotation,
a fresh pre-created refresh token per request): ``--baseline`` windows of each without a
clean-up, then windows back to back while ``manage.py cleartokens`` runs beside them, until
it exits. Meanwhile it samples pg_stat_activity: the longest transaction, and requests
waiting on a lock. ``--interrupt-after S`` stops the command (SIGTERM) after S s and starts
it again: the second run must finish the work, not start over. Rows removed are counted
among the growth rows only (by id), apart from what the load adds and rotates.
See bench/README.md.
"""

import argparse
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import benchlib  # noqa: E402
from benchlib import GrowthSite  # noqa: E402
from run import CONNECTIONS, WRK_THREADS, code_line, environment_line  # noqa: E402

SCENARIOS = ("client_credentials", "refresh")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=float, default=4e6, help="growth rows beside the normal seed (default 4e6)")
    p.add_argument("--expired", type=float, default=0.75,
                   help="fraction of them cleartokens removes (default 0.75: 3 M of 4 M)")
    p.add_argument("--window", type=int, default=5, help="seconds per wrk measurement (default 5)")
    p.add_argument("--baseline", type=int, default=4, help="windows per scenario without clean-up (default 4)")
    p.add_argument("--scenarios", default=",".join(SCENARIOS), help="comma list out of: " + ", ".join(SCENARIOS))
    p.add_argument("--max-rate", type=int, default=800,
                   help="highest refresh rate the server may reach (req/s); sizes the pre-created refresh tokens (800)")
    p.add_argument("--max-cleanup", type=int, default=600, help="give up on cleartokens after this many s (600)")
    p.add_argument("--interrupt-after", type=float, metavar="S",
                   help="SIGTERM cleartokens after S s, then run it again (is it resumable?)")
    p.add_argument("--workers", type=int, default=2, help="gunicorn sync workers (default 2)")
    p.add_argument("--cleartokens", default="", metavar="OPTIONS",
                   help="options for manage.py cleartokens, e.g. '--pause 0.1 --batch-size 5000'")
    args = p.parse_args(argv)
    args.cleartokens = args.cleartokens.split()
    args.rows = int(args.rows)
    args.scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    if not set(args.scenarios) <= set(SCENARIOS) or not args.scenarios:
        p.error("--scenarios: a comma list out of " + ", ".join(SCENARIOS))
    if not benchlib.is_postgres(os.environ.get("DATABASE_URL", "")):
        p.error("set DATABASE_URL=postgres://... (the clean-up is measured on PostgreSQL)")
    if not 0 < args.expired <= 1 or args.rows < 1000 or not 1 <= args.window <= 60 or args.baseline < 1:
        p.error("--expired in (0, 1], --rows >= 1000, --window 1..60 s, --baseline >= 1")
    return args


class Sampler(threading.Thread):
    """Every 0.2 s: the site database's longest open transaction (other than this sampler's)
    and how many of its backends wait on a lock, with the longest such wait."""

    def __init__(self, conninfo):
        super().__init__(daemon=True)
        self.conninfo, self.stopped, self.samples = conninfo, threading.Event(), []

    def run(self):
        import psycopg

        with psycopg.connect(self.conninfo, autocommit=True, connect_timeout=10) as conn:
            while not self.stopped.wait(0.2):
                rows = conn.execute(
                    "SELECT EXTRACT(EPOCH FROM now() - xact_start), wait_event_type = 'Lock',"
                    " EXTRACT(EPOCH FROM now() - query_start), state, left(regexp_replace(query, '\\s+', ' ', 'g'), 300)"
                    " FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    " AND xact_start IS NOT NULL ORDER BY xact_start LIMIT 50").fetchall()
                waiting = [float(r[2]) for r in rows if r[1]]
                longest = rows[0] if rows else (0, False, 0, "", "")
                self.samples.append((time.monotonic(), float(longest[0]), len(waiting), max(waiting, default=0.0),
                                     f"{longest[3]}: {longest[4]}"))

    def summary(self, since, until):
        s = [x for x in self.samples if since <= x[0] <= until]
        if not s:
            return {"longest_xact_s": 0.0, "lock_waiters_max": 0, "lock_wait_max_s": 0.0, "longest_xact": ""}
        longest = max(s, key=lambda x: x[1])
        return {"longest_xact_s": round(longest[1], 2), "lock_waiters_max": max(x[2] for x in s),
                "lock_wait_max_s": round(max(x[3] for x in s), 2), "longest_xact": longest[4]}


def growth_rows(site):
    """Growth rows still in the database, per table (by seed.grow's id ranges)."""
    import psycopg

    counts = {}
    with psycopg.connect(site.database_url.replace("postgres://", "postgresql://", 1), autocommit=True) as conn:
        for table, (lo, hi) in site.growth["ranges"].items():
            counts[table] = conn.execute(f"SELECT COUNT(*) FROM {table} WHERE id BETWEEN %s AND %s", (lo, hi)).fetchone()[0]
    return counts


def start_cleartokens(site, log, options=()):
    """``manage.py cleartokens`` in the background; its output lines, time-stamped, into ``log``."""
    proc = benchlib.popen([benchlib.PYTHON, "manage.py", "cleartokens", *options], env=site.env, cwd=site.manage_cwd,
                          stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    t0 = time.monotonic()

    def pump():
        for line in proc.stdout:
            log.append((time.monotonic() - t0, line.rstrip()))
            print(f"  cleartokens +{time.monotonic() - t0:6.1f} s | {line.rstrip()}", flush=True)

    threading.Thread(target=pump, daemon=True).start()
    return proc


def main(argv=None):
    args = parse_args(argv)
    if not benchlib.have_wrk():
        print("bench: wrk is not installed. Install it with:  apt-get install -y wrk", file=sys.stderr)
        return 2
    benchlib.install_cleanup()
    pg_url = os.environ["DATABASE_URL"]
    refresh_windows = args.baseline + args.max_cleanup // (args.window * len(args.scenarios)) + 2
    block = args.max_rate * args.window + CONNECTIONS
    refresh = block * refresh_windows if "refresh" in args.scenarios else 0
    print(f"bench: {environment_line()}")
    print(f"bench: {code_line()}")
    tmp = benchlib.make_tmp()
    site = GrowthSite(tmp, args.rows, args.workers, pg_url, expired=args.expired)
    try:
        t0 = time.monotonic()
        site.seed(codes=0, refresh=refresh, sessions=0)
        g = site.growth
        print(f"bench: seeded {site.postgres.name}: {g['rows']} growth rows ({g['expired_pct']} % expired), "
              f"{refresh} refresh tokens to walk, in {time.monotonic() - t0:.0f} s", flush=True)
        site.start()
        specs = {s: benchlib.specs(site)[s][0][1] for s in args.scenarios}
        offset = 0
        sampler = Sampler(site.postgres.url.replace("postgres://", "postgresql://", 1))
        sampler.start()

        def window(phase, scenario):
            nonlocal offset
            spec = specs[scenario]
            if spec.get("walk") and offset + block > refresh:
                return None  # out of refresh tokens: measure the rest on client credentials only
            result = benchlib.run_wrk(site, spec, duration=args.window, connections=CONNECTIONS, threads=WRK_THREADS,
                                      start=offset, per_thread=block // WRK_THREADS)
            if spec.get("walk"):
                offset += block
            result.update(phase=phase, scenario=scenario)
            print(f"  {phase:<8} {scenario:<20} {benchlib.ok_rate(result):8.1f}/s  p50 {result['p50_us'] / 1000:6.1f} ms"
                  f"  p99 {result['p99_us'] / 1000:7.1f} ms  max {result['max_us'] / 1000:7.1f} ms"
                  f"  errors {benchlib.errors_of(result)}", flush=True)
            benchlib.drain(site)
            return result

        # Warm-up, not counted (client credentials: it spends no pre-created token).
        benchlib.run_wrk(site, benchlib.specs(site)["client_credentials"][0][1], duration=2, connections=CONNECTIONS,
                         threads=WRK_THREADS)
        benchlib.drain(site)
        results = []
        base_start = time.monotonic()
        for _ in range(args.baseline):
            results += [window("without", s) for s in args.scenarios]
        base_end = time.monotonic()
        before = growth_rows(site)
        print(f"bench: growth rows before clean-up: {sum(before.values())} {before}", flush=True)

        log, runs = [], []
        clean_start = time.monotonic()
        proc = start_cleartokens(site, log, args.cleartokens)
        run_start, interrupted = clean_start, None
        while True:
            for scenario in args.scenarios:
                if proc.poll() is None:
                    results.append(window("during", scenario))
            if args.interrupt_after and interrupted is None and proc.poll() is None \
                    and time.monotonic() - run_start >= args.interrupt_after:
                os.kill(proc.pid, signal.SIGTERM)  # the one we started, by its PID
                proc.wait(timeout=60)
                interrupted = growth_rows(site)
                runs.append(time.monotonic() - run_start)
                print(f"bench: cleartokens stopped (SIGTERM) after {runs[-1]:.0f} s; growth rows left "
                      f"{sum(interrupted.values())}; starting it again", flush=True)
                run_start = time.monotonic()
                proc = start_cleartokens(site, log, args.cleartokens)
            if proc.poll() is not None:
                break
            if time.monotonic() - clean_start > args.max_cleanup:
                benchlib.stop_process(proc)
                print(f"bench: cleartokens still running after {args.max_cleanup} s: stopped", flush=True)
                break
        clean_end = time.monotonic()
        runs.append(clean_end - run_start)
        exit_code = proc.returncode
        sampler.stopped.set()
        after = growth_rows(site)
        after_windows = [window("after", s) for s in args.scenarios]
        results = [r for r in results + after_windows if r]

        removed = sum(before.values()) - sum(after.values())
        command_s = sum(runs)
        print(f"\nbench: cleartokens exit status {exit_code}; {len(runs)} run(s) {' + '.join(f'{r:.0f} s' for r in runs)}; "
              f"removed {removed} growth rows ({ {t: before[t] - after[t] for t in before} }); "
              f"left {sum(after.values())}")
        during = sampler.summary(clean_start, clean_end)
        print(f"bench: longest transaction without/during clean-up: "
              f"{sampler.summary(base_start, base_end)['longest_xact_s']:.2f} s / {during['longest_xact_s']:.2f} s "
              f"({during['longest_xact']}); backends waiting on a lock during: at most {during['lock_waiters_max']}, "
              f"the longest wait {during['lock_wait_max_s']:.2f} s")
        print("\n| what | without clean-up | during clean-up | ratio |\n|---|---:|---:|---:|")
        print(f"| growth rows removed per minute ({removed} in {command_s:.0f} s) | | "
              f"{removed / command_s * 60 if command_s else 0:,.0f} | |")
        for scenario in args.scenarios:
            for key, label, fmt in (("p99_us", "p99 ms", lambda v: f"{v / 1000:.1f}"),
                                    ("rate", "req/s", lambda v: f"{v:.0f}")):
                get = (lambda r: benchlib.ok_rate(r)) if key == "rate" else (lambda r, k=key: r[k])
                without = [get(r) for r in results if r["phase"] == "without" and r["scenario"] == scenario]
                during = [get(r) for r in results if r["phase"] == "during" and r["scenario"] == scenario]
                if without and during:
                    a, b = statistics.median(without), statistics.median(during)
                    worst = max(during) if key == "p99_us" else min(during)
                    print(f"| {scenario} {label}, median of windows (worst during: {fmt(worst)}) "
                          f"| {fmt(a)} | {fmt(b)} | {b / a:.2f}x |")
        errors = sum(benchlib.errors_of(r) for r in results)
        print(f"\n{len([r for r in results if r['phase'] == 'during'])} windows of {args.window} s during the clean-up; "
              f"errors in all windows: {errors}")
        return 1 if errors or exit_code else 0
    finally:
        site.stop()
        benchlib.cleanup()


if __name__ == "__main__":
    benchlib.run_main(main)
