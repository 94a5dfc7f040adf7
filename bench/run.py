"""The benchmark: our provider vs plain django-oauth-toolkit vs a bare WSGI floor.

    .venv/bin/python bench/run.py [--rounds 3] [--duration 10] [--scenarios a,b] [--workers 2]

Starts, in one run, three gunicorn servers with the same settings (sync workers, loopback,
free ports): (A) our project with production settings (DEBUG off) on a fresh SQLite file,
or on a scratch PostgreSQL database when DATABASE_URL is PostgreSQL; (B) a generated plain
DOT project (bench/dot_site.py) on its own fresh database of the same kind; (C) a bare WSGI
"hello" (bench/floor_app.py). Seeds them (manage.py commands and bench/seed.py), drives each
scenario with wrk (16 connections; Lua scripts in bench/lua/) -- the login round trip with
bench/loadgen.py -- interleaving A B C per scenario, round after round, and prints the
median of the rounds. ``--growth N,N`` adds our project on databases holding N more tokens
(seed.grow). Everything it starts it stops by PID; scratch databases are dropped.
See bench/README.md.
"""

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import benchlib  # noqa: E402
import loadgen  # noqa: E402
from benchlib import AgainstSite, DotSite, FloorSite, GrowthSite, OursSite, SqliteSite  # noqa: E402

SCENARIOS = {
    "client_credentials": "POST /token grant_type=client_credentials, service app, HTTP Basic",
    "client_credentials_aksk": "the same with an AK/SK pair of an access account (ours only)",
    "code_exchange": "POST /token authorization_code + PKCE (S256): access + ID (RS256) + refresh token; one fresh code per request",
    "refresh": "POST /token refresh_token with rotation; one fresh refresh token per request",
    "userinfo": "GET userinfo with a long-lived Bearer token",
    "introspection": "POST introspection (RFC 7662) of an access token, client authenticated with HTTP Basic",
    "discovery": "GET /.well-known/openid-configuration",
    "jwks": "GET /.well-known/jwks.json",
    "login": "logged-in session: GET /auth (consent skipped) -> 302 with code -> POST /token (Python generator)",
}
WALKING = {"code_exchange", "refresh"}
CONNECTIONS = 16
WRK_THREADS = 2


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    p.add_argument("--duration", type=int, default=10, help="seconds per measurement (default 10)")
    p.add_argument("--warmup", type=int, default=1, help="seconds of an uncounted first pass per target (default 1; 0 skips it)")
    p.add_argument("--scenarios", default=",".join(SCENARIOS), help=f"comma list out of: {', '.join(SCENARIOS)}")
    p.add_argument("--servers", default="ours,dot,floor", help="comma list out of: ours, dot, floor")
    p.add_argument("--workers", type=int, default=2, help="gunicorn sync workers per server (default 2)")
    p.add_argument("--max-rate", type=int, default=1500,
                   help="highest code-exchange/refresh rate a server may reach (req/s); sizes the pre-created codes "
                        "and refresh tokens (default 1500)")
    p.add_argument("--json", metavar="PATH", help="also write every measurement to this JSON file")
    p.add_argument("--against", metavar="REV",
                   help="also serve our project at this git revision (e.g. HEAD~1), interleaved with the working "
                        "tree in every round: an A/B of a change that the machine's drift hits alike")
    p.add_argument("--with-sqlite", action="store_true",
                   help="with DATABASE_URL on PostgreSQL, also serve our project on SQLite, interleaved in every "
                        "round: the PostgreSQL/SQLite ratio without the machine's drift between two runs")
    p.add_argument("--growth", metavar="N,N",
                   help="with DATABASE_URL on PostgreSQL, also serve our project on databases holding N more tokens "
                        "each (half expired; seed.grow), interleaved right after ours in every round: row 'ours with "
                        "<N> tokens', whose ours/baseline cell is that row / ours (the empty database)")
    p.add_argument("--instructions", type=int, metavar="N",
                   help="instead of req/s, count the CPU instructions our project spends per request: N requests per "
                        "scenario, sent in-process under valgrind's callgrind (bench/count.py); the same count on a "
                        "busy machine as on a quiet one, without the database server's own work")
    args = p.parse_args(argv)
    args.scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    if args.with_sqlite and not benchlib.is_postgres(os.environ.get("DATABASE_URL", "")):
        p.error("--with-sqlite compares with PostgreSQL: set DATABASE_URL=postgres://...")
    try:
        args.growth = sorted({int(float(n)) for n in (args.growth or "").split(",") if n.strip()})
    except ValueError:
        p.error("--growth: a comma list of row counts, e.g. 1000000,10000000 (or 1e6,1e7)")
    if args.growth and not benchlib.is_postgres(os.environ.get("DATABASE_URL", "")):
        p.error("--growth fills a PostgreSQL database: set DATABASE_URL=postgres://...")
    if args.growth and (args.instructions or min(args.growth) < 1 or max(args.growth) > 10**9):
        p.error("--growth: 1..1e9 rows each, and not with --instructions")
    unknown = [s for s in args.scenarios if s not in SCENARIOS]
    if unknown:
        p.error(f"unknown scenario(s) {', '.join(unknown)}; choose from {', '.join(SCENARIOS)}")
    args.servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    if not set(args.servers) <= {"ours", "dot", "floor"} or not args.servers:
        p.error("--servers: a comma list out of ours, dot, floor")
    if not 1 <= args.rounds <= 20 or not 1 <= args.duration <= 300 or not 0 <= args.warmup <= 30:
        p.error("--rounds 1..20, --duration 1..300 s, --warmup 0..30 s")
    if not 1 <= args.workers <= 16:
        p.error("--workers 1..16")
    if args.instructions is not None and not 20 <= args.instructions <= 10000:
        p.error("--instructions 20..10000")
    return args


def code_line():
    """Which code was measured (read-only git commands)."""
    def git(*args):
        return subprocess.run(["git", *args], cwd=benchlib.ROOT, capture_output=True, text=True, timeout=10).stdout

    try:
        head = git("rev-parse", "--short", "HEAD").strip()
        dirty = git("status", "--porcelain", "--", "oidc_provider", "console", "project")
    except (OSError, subprocess.SubprocessError):
        return "code: (git not available)"
    changed = len(dirty.splitlines())
    return f"code at {head or '?'}" + (f", {changed} uncommitted change(s) in oidc_provider/console/project" if changed else "")


def environment_line():
    from importlib.metadata import version

    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "")
    return (f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}, "
            + ", ".join(f"{name} {version(name)}" for name in ("Django", "django-oauth-toolkit", "oauthlib", "gunicorn")))


def shape_of(spec):
    """Request shapes the floor is measured in, once per round each (the floor ignores paths)."""
    if "login" in spec:
        return "login, Python generator"
    if spec.get("walk"):
        return "POST, new body each"
    return "POST" if spec["method"] == "POST" else "GET"


def build_targets(args, sites):
    """{scenario: [(label, site, spec)]}: ours first, then the baseline(s), then the floor.

    The floor's label names its request shape; scenarios of the same shape share one
    measurement of it per round.
    """
    growth = [kind for kind in sites if kind.startswith("growth_")]
    kinds = ("ours", *growth, "against", "sqlite", "dot")
    per_site = {kind: benchlib.specs(site) for kind, site in sites.items() if kind in kinds}
    targets = {}
    for scenario in args.scenarios:
        rows = []
        for kind in kinds:
            for label, spec in per_site.get(kind, {}).get(scenario, []):
                if kind == "against":
                    label = f"ours at {sites[kind].rev}"
                elif kind == "sqlite":
                    label = "ours on SQLite"
                elif kind in growth:
                    label = growth_label(sites[kind])
                rows.append((label, sites[kind], spec))
        if "floor" in sites and rows:
            template = rows[0][2]
            rows.append((f"floor ({shape_of(template)})", sites["floor"], benchlib.floor_spec(template)))
        if rows:
            targets[scenario] = rows
    return targets


def growth_label(site):
    return f"ours with {benchlib.short_count(site.rows)} tokens"


def measure(site, spec, duration, start, block):
    if site.kind == "floor":
        start, block = 0, 10**7 * WRK_THREADS  # the floor ignores the credential; nothing to run out of
    if "login" in spec:
        return loadgen.login_load(site.host, site.port, spec["login"], spec["sessions"], duration, threads=CONNECTIONS)
    return benchlib.run_wrk(site, spec, duration=duration, connections=CONNECTIONS, threads=WRK_THREADS,
                            start=start, per_thread=block // WRK_THREADS)


def fmt_ms(us):
    return f"{us / 1000:.1f}"


def line(scenario, label, result):
    return (f"{scenario:<24} {label:<44} {benchlib.ok_rate(result):>9.1f}/s  p50 {fmt_ms(result['p50_us']):>7} ms  "
            f"p99 {fmt_ms(result['p99_us']):>7} ms  errors {benchlib.errors_of(result)}"
            + (f" (ran out of credentials: {result['exhausted']})" if result.get("exhausted") else ""))


def summarise(targets, results):
    """Rows of the final table, with medians over the rounds and the ratios."""
    rows = []
    for scenario, entries in targets.items():
        medians = {}
        for label, _site, _spec in entries:
            runs = results.get((scenario, label), [])
            if not runs:
                continue
            rates = [benchlib.ok_rate(r) for r in runs]
            medians[label] = statistics.median(rates)
            rows.append({
                "scenario": scenario, "server": label, "median": medians[label], "rounds": rates,
                "p50_ms": statistics.median(r["p50_us"] for r in runs) / 1000,
                "p99_ms": statistics.median(r["p99_us"] for r in runs) / 1000,
                "errors": sum(benchlib.errors_of(r) for r in runs),
                "exhausted": sum(r.get("exhausted", 0) for r in runs),
            })
        by_label = {row["server"]: row["rounds"] for row in rows if row["scenario"] == scenario}
        ours = by_label.get("ours")
        baseline = next((by_label[k] for k in ("dot (unhashed secret)", "dot") if k in by_label), None)
        floor = next((v for k, v in by_label.items() if k.startswith("floor")), None)
        for row in rows:
            if row["scenario"] != scenario or ours is None:
                continue
            if row["server"] == "ours":
                row["vs_baseline"] = paired_ratio(ours, baseline)
                row["vs_floor"] = paired_ratio(ours, floor)
            elif row["server"].startswith(("dot (hashed", "ours at ", "ours on SQLite")):
                row["vs_baseline"] = paired_ratio(ours, row["rounds"])
            elif row["server"].startswith("ours with "):  # growth: that row / the empty database
                row["vs_baseline"] = paired_ratio(row["rounds"], ours)
    return rows


def paired_ratio(ours, other):
    """The median over the rounds of ours / other, each round's two figures measured one right
    after the other: the machine's drift from round to round cancels within each pair."""
    if not other:
        return None
    pairs = [a / b for a, b in zip(ours, other) if b]
    return statistics.median(pairs) if len(pairs) == len(ours) == len(other) else None


def print_table(rows, header):
    print()
    print(header)
    cols = ["scenario", "server", "req/s (median)", "rounds", "p50 ms", "p99 ms", "errors", "ours/baseline", "ours/floor"]
    table = []
    for r in rows:
        ratio = lambda v: "" if v is None else f"{v:.2f}x"  # noqa: E731
        table.append([
            r["scenario"], r["server"], f"{r['median']:.1f}", " / ".join(f"{x:.0f}" for x in r["rounds"]),
            f"{r['p50_ms']:.1f}", f"{r['p99_ms']:.1f}", str(r["errors"]),
            ratio(r.get("vs_baseline")), ratio(r.get("vs_floor")),
        ])
    widths = [max(len(c), *(len(row[i]) for row in table)) if table else len(c) for i, c in enumerate(cols)]
    right = {2, 3, 4, 5, 6, 7, 8}
    fmt_row = lambda row: "| " + " | ".join(  # noqa: E731
        (v.rjust(widths[i]) if i in right else v.ljust(widths[i])) for i, v in enumerate(row)) + " |"
    print(fmt_row(cols))
    print("|" + "|".join(("-" * (w + 1) + ":" if i in right else "-" * (w + 2)) for i, w in enumerate(widths)) + "|")
    for row in table:
        print(fmt_row(row))
    print()
    print("How to read it: bench/README.md, 'Reading the figures'. Both ratios are paired (the median of each round's")
    print("own ratio); a difference of a few % is below this machine's noise, --instructions counts it.")
    if any(r["exhausted"] for r in rows):
        print("WARNING: some runs ran out of pre-created codes/refresh tokens: raise --max-rate.")


def count_instructions(args, pg_url):
    """``--instructions N``: callgrind's count of N requests per scenario, for our project on
    the run's database, at ``--against``'s revision and on SQLite (``--with-sqlite``) too.
    The sites are seeded as for wrk; bench/count.py sends the requests in-process."""
    if shutil.which("valgrind") is None:
        print("bench: valgrind is not installed. Install it with:  apt-get install -y valgrind", file=sys.stderr)
        return 2
    n, warmup = args.instructions, max(args.instructions // 4, 5)
    print(f"bench: {environment_line()}")
    print(f"bench: {code_line()}")
    tmp = benchlib.make_tmp()
    sites = {"ours": OursSite(tmp, 1, pg_url)}
    if args.against:
        sites["against"] = AgainstSite(tmp, args.against, 1, pg_url)
    if args.with_sqlite:
        sites["sqlite"] = SqliteSite(tmp, 1)
    labels = {"ours": "ours", "against": f"ours at {sites['against'].rev}" if args.against else "", "sqlite": "ours on SQLite"}
    procs = {}
    for kind, site in sites.items():
        site.seed(codes=n + warmup if "code_exchange" in args.scenarios else 0,
                  refresh=n + warmup if "refresh" in args.scenarios else 0, sessions=1)
        specs = benchlib.specs(site)
        (site.tmp / "specs.json").write_text(json.dumps({s: specs[s][0][1] for s in args.scenarios}))
        # Counts are of instructions, not time: the sites may be counted side by side.
        procs[kind] = benchlib.popen(
            ["valgrind", "--tool=callgrind", "--zero-before=getppid", "--dump-before=getpgrp",
             f"--callgrind-out-file={site.tmp}/callgrind.%p", benchlib.PYTHON, str(benchlib.BENCH / "count.py"),
             str(site.tmp / "specs.json"), str(warmup), str(n)],
            cwd=site.cwd, env={**site.env, "PYTHONHASHSEED": "0", "PYTHONPATH": str(site.cwd)},
            stdout=open(site.tmp / "count.log", "wb"), stderr=subprocess.STDOUT)
    print(f"bench: counting {len(args.scenarios)} scenarios x {n} requests (+{warmup} warm-up) under callgrind "
          f"for {', '.join(labels[k] for k in sites)}", flush=True)
    rows = []
    for kind, proc in procs.items():
        proc.wait(timeout=benchlib.COMMAND_TIMEOUT * 4)
        log = (sites[kind].tmp / "count.log").read_text(errors="replace")
        dumps = sorted(sites[kind].tmp.glob(f"callgrind.{proc.pid}.*"), key=lambda f: int(f.suffix[1:]))
        if proc.returncode or len(dumps) < len(args.scenarios):
            raise RuntimeError(f"{labels[kind]}: counting failed ({proc.returncode}):\n{log[-3000:]}")
        for scenario, dump in zip(args.scenarios, dumps):
            total = next(int(line.split()[1]) for line in dump.read_text().splitlines()
                         if line.startswith(("totals:", "summary:")))
            rows.append({"scenario": scenario, "server": labels[kind], "per_request": total / n})
    print(f"\nCPU instructions per request of our project's process, {n} requests per scenario after {warmup} "
          f"(callgrind; the database server's own work not counted)\n")
    print("| scenario | server | M instructions/req | ours/that row |")
    print("|---|---|---:|---:|")
    for scenario in args.scenarios:
        ours = next(r["per_request"] for r in rows if r["scenario"] == scenario and r["server"] == "ours")
        for r in (r for r in rows if r["scenario"] == scenario):
            ratio = "" if r["server"] == "ours" else f"{ours / r['per_request']:.3f}"
            print(f"| {scenario} | {r['server']} | {r['per_request'] / 1e6:.3f} | {ratio} |")
    print("\nours/that row: ours' instructions per request divided by that row's (1.03: ours spends 3 % more).")
    return 0


def main(argv=None):
    args = parse_args(argv)
    database_url = os.environ.get("DATABASE_URL", "")
    if database_url and not benchlib.is_postgres(database_url) and not database_url.startswith("sqlite"):
        print(f"bench: DATABASE_URL {database_url!r} is neither SQLite nor PostgreSQL", file=sys.stderr)
        return 2
    pg_url = database_url if benchlib.is_postgres(database_url) else None
    benchlib.install_cleanup()
    if args.instructions:
        try:
            return count_instructions(args, pg_url)
        finally:
            benchlib.cleanup()
    if not benchlib.have_wrk():
        print("bench: wrk is not installed. Install it with:  apt-get install -y wrk", file=sys.stderr)
        return 2

    walking = [s for s in args.scenarios if s in WALKING]
    block = int(args.max_rate * args.duration) + CONNECTIONS
    warm_block = int(args.max_rate * args.warmup) + CONNECTIONS if args.warmup else 0
    seeds = warm_block + args.rounds * block
    codes = seeds if "code_exchange" in walking else 0
    refresh = seeds if "refresh" in walking else 0
    sessions = CONNECTIONS if "login" in args.scenarios else 0

    n_targets = len(args.scenarios)
    print(f"bench: {environment_line()}")
    print(f"bench: {code_line()}")
    print(f"bench: database {'PostgreSQL (' + pg_url.split('@')[-1] + ')' if pg_url else 'SQLite (WAL)'}; "
          f"{args.workers} sync workers per server; wrk -t{WRK_THREADS} -c{CONNECTIONS}; "
          f"{args.rounds} rounds x {args.duration:g} s (+{args.warmup:g} s warm-up) over {n_targets} scenarios")
    started = time.monotonic()
    tmp = benchlib.make_tmp()
    sites = {}
    try:
        if "ours" in args.servers:
            sites["ours"] = OursSite(tmp, args.workers, pg_url)
        for rows in args.growth:
            site = GrowthSite(tmp, rows, args.workers, pg_url)
            sites[site.kind] = site
        if args.against:
            sites["against"] = AgainstSite(tmp, args.against, args.workers, pg_url)
        if args.with_sqlite:
            sites["sqlite"] = SqliteSite(tmp, args.workers)
        if "dot" in args.servers:
            sites["dot"] = DotSite(tmp, args.workers, pg_url)
        if "floor" in args.servers:
            sites["floor"] = FloorSite(tmp, args.workers)
        for kind, site in sites.items():
            if kind == "floor":
                continue
            t0 = time.monotonic()
            site.seed(codes=codes, refresh=refresh, sessions=sessions)
            print(f"bench: seeded {kind} ({codes} codes, {refresh} refresh tokens, {sessions} sessions"
                  + (f"; +{site.growth['rows']} growth rows, {site.growth['users']} users in {site.growth['seconds']:.0f} s"
                     if isinstance(site, GrowthSite) else "")
                  + f") in {time.monotonic() - t0:.0f} s", flush=True)
        for kind, site in sites.items():
            site.start()
            print(f"bench: {kind} on {site.base_url} (gunicorn PID {site.proc.pid}, workers {site.worker_pids()})")

        targets = build_targets(args, sites)
        per_round = sum(1 for e in targets.values() for label, site, _ in e if site.kind != "floor")
        per_round += len({label for e in targets.values() for label, site, _ in e if site.kind == "floor"})
        warm = sum(1 for e in targets.values() for _, site, _ in e if site.kind != "floor") if args.warmup else 0
        estimate = args.rounds * per_round * (args.duration + 1.2) + warm * (args.warmup + 1.2)
        print(f"bench: {per_round} measurements per round; about {estimate / 60:.0f} min from here", flush=True)
        results = {}
        offsets = {}

        def slot(round_no, duration, counted):
            floors = {}  # shape -> this round's floor measurement
            for scenario, entries in targets.items():
                for label, site, spec in entries:
                    tag = f"[round {round_no}/{args.rounds}]" if counted else "[warm-up]"
                    if site.kind == "floor":
                        if not counted:
                            continue  # nothing to warm up in the floor
                        if label in floors:
                            results.setdefault((scenario, label), []).append(floors[label])
                            continue
                    key = (site.kind, spec.get("walk"))
                    start = offsets.get(key, 0)
                    size = (block if counted else warm_block)
                    result = measure(site, spec, duration, start, size)
                    if spec.get("walk"):
                        offsets[key] = start + size
                    if site.kind == "floor":
                        floors[label] = result
                    print(f"{tag:<14} {line(scenario, label, result)}", flush=True)
                    if result.get("reasons"):
                        print(f"{'':14} failures: {result['reasons']}")
                    if counted:
                        results.setdefault((scenario, label), []).append(result)
                    elif benchlib.errors_of(result):
                        print(f"{'':14} WARNING: errors in warm-up; server log tail:\n{site.log_tail(1500)}")
                    benchlib.drain(site)
                    time.sleep(0.5)

        if args.warmup:
            slot(0, args.warmup, counted=False)
        for r in range(1, args.rounds + 1):
            slot(r, args.duration, counted=True)

        rows = summarise(targets, results)
        db = "PostgreSQL" if pg_url else "SQLite (WAL)"
        print_table(rows, f"Results on {db}, {args.workers} gunicorn sync workers, {CONNECTIONS} connections, "
                          f"median of {args.rounds} rounds x {args.duration:g} s (total run {time.monotonic() - started:.0f} s)")
        if args.json:
            Path(args.json).write_text(json.dumps({
                "environment": environment_line(), "database": db, "workers": args.workers,
                "rounds": args.rounds, "duration": args.duration, "rows": rows,
                "runs": {f"{s} | {label}": v for (s, label), v in results.items()},
            }, indent=2))
            print(f"bench: wrote {args.json}")
        return 1 if any(r["errors"] for r in rows) else 0
    finally:
        for site in sites.values():
            site.stop()
        benchlib.cleanup()


if __name__ == "__main__":
    benchlib.run_main(main)
