"""``python -m bench [--quick] [--only seq40,loop] [--stores sqlite,postgres] [--write FILE]``."""

from __future__ import annotations

import argparse
import shlex
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import cold as cold_mod
from bench import doc, embedded, hardening, report
from bench.stats import Row

SCENARIOS = ("seq40", "seq7", "scale", "loop", "cold", "throughput", "recovery", "profile",
             "profile-server", "schedules", "validate", "health")


def log(msg: str) -> None:
    sys.stderr.write(msg + "\n")
    sys.stderr.flush()


def guarded(rows: list[Row], scenario: str, store: str, fn: Callable[[], list[Row]]) -> None:
    """Run one scenario; a failure becomes a row saying so instead of ending the run."""
    try:
        rows.extend(fn())
    except Exception as exc:
        log(traceback.format_exc())
        rows.append(Row(scenario, store, "-", "", note=f"error: {type(exc).__name__}: {exc}"[:200]))


def run_embedded(label: str, url: str, only: set[str], quick: bool, rows: list[Row]) -> None:
    reps = embedded.QUICK if quick else (embedded.FULL_PG if label == "postgres" else embedded.FULL)
    log(f"embedded on {label}")
    with embedded.Bench(url, label, log=log) as b:
        if "seq40" in only:
            guarded(rows, "seq40", label, lambda: b.seq40(reps.seq40))
        if "seq7" in only:
            guarded(rows, "seq7", label, lambda: b.seq7(reps.seq7))
        if "scale" in only:
            guarded(rows, "scale", label, lambda: b.scale(reps.scale))
        if "loop" in only:
            guarded(rows, "loop", label, lambda: b.loop(reps.loop))


def run_distributed(only: set[str], quick: bool, tmp: Path, rows: list[Row]) -> None:
    from bench import distributed
    from bench.cluster import commands_problem
    from bench.stores import postgres_problem, scratch_postgres

    wanted = only & {"throughput", "recovery", "seq40", "seq7", "loop"}
    if not wanted:
        return
    problem = commands_problem() or postgres_problem()
    if problem:
        log(f"distributed scenarios: {problem}")
        for r in distributed.unavailable("not available yet: " + problem):
            if r.scenario in wanted:
                rows.append(r)
        return
    for direct in (False, True):  # HTTP workers of the server; direct workers (--store)
        log(f"distributed ({'direct workers' if direct else 'server + HTTP workers'}) on postgres")
        sub = tmp / ("direct" if direct else "http")
        sub.mkdir()
        with scratch_postgres() as url, distributed.Distributed(url, sub, log=log,
                                                                direct=direct) as d:
            _distributed(d, wanted, quick, rows)


def _distributed(d: Any, wanted: set[str], quick: bool, rows: list[Row]) -> None:
    label = d.label
    if "throughput" in wanted:
        guarded(rows, "throughput", label,
                lambda: d.throughput(50 if quick else 200, 1 if quick else 2))
    if "loop" in wanted:
        guarded(rows, "loop", label, lambda: d.loop(1 if quick else 3))
    if wanted & {"seq40", "seq7"}:
        guarded(rows, "seq40/seq7", label, lambda: [
            r for r in d.sequences(3 if quick else 10) if r.scenario.split()[0] in wanted])
    if "recovery" in wanted:
        guarded(rows, "recovery", label, lambda: d.recovery(1 if quick else 2))


def run_schedules(quick: bool, tmp: Path, rows: list[Row]) -> None:
    from bench.schedules import LABEL, every_second
    from bench.stores import postgres_problem, scratch_postgres

    problem = postgres_problem()
    if problem:
        rows.append(Row("schedules", LABEL, "-", "", note="not available: " + problem))
        return
    with scratch_postgres() as url:
        guarded(rows, "schedules", LABEL,
                lambda: every_second(url, tmp, 10 if quick else 60, log=log))


def server_profile(quick: bool) -> str:
    from bench.cluster import commands_problem
    from bench.stores import postgres_problem

    problem = commands_problem() or postgres_problem()
    if problem:
        return f"(not available yet: {problem})\n"
    log("profile of the server under throughput load")
    from bench.profile_server import markdown, profile_server

    try:
        return markdown(profile_server(40 if quick else 100))
    except Exception:
        log(traceback.format_exc())
        return "(server profile failed; see the run's stderr)\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    ap.add_argument("--quick", action="store_true", help="fewer repetitions, no 10,000-item loop")
    ap.add_argument("--only", default=",".join(SCENARIOS),
                    help=f"comma-separated scenarios (default all: {','.join(SCENARIOS)})")
    ap.add_argument("--stores", default="sqlite,postgres",
                    help="stores for the embedded scenarios (sqlite,postgres)")
    ap.add_argument("--write", metavar="FILE", help="write the Markdown report (docs/benchmarks.md)")
    args = ap.parse_args(argv)
    only = {s.strip() for s in args.only.split(",") if s.strip()}
    unknown = only - set(SCENARIOS)
    if unknown:
        ap.error(f"unknown scenario(s): {', '.join(sorted(unknown))}")
    stores = {s.strip() for s in args.stores.split(",") if s.strip()}
    command = "python -m bench " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    info = report.machine()
    started = time.monotonic()
    rows: list[Row] = []
    profile_md = server_md = ""
    with tempfile.TemporaryDirectory(prefix="noetl-bench-") as tmp_name:
        tmp = Path(tmp_name)
        if "sqlite" in stores:
            sub = tmp / "sqlite"
            sub.mkdir()
            from bench.stores import sqlite_url

            run_embedded("sqlite", sqlite_url(sub), only, args.quick, rows)
        if "postgres" in stores and only & {"seq40", "seq7", "scale", "loop"}:
            from bench.stores import postgres_problem, scratch_postgres

            problem = postgres_problem()
            if problem:
                rows.append(Row("embedded", "postgres", "-", "", note="not available: " + problem))
            else:
                with scratch_postgres() as url:
                    run_embedded("postgres", url, only, args.quick, rows)
        if "cold" in only:
            log("cold start")
            guarded(rows, "cold", "sqlite", lambda: cold_mod.cold(tmp, 3 if args.quick else 10))
        if "validate" in only:
            log("validation of 8,000 and 40,000 steps")
            guarded(rows, "validate", "-", lambda: hardening.validate(1 if args.quick else 3))
        if "health" in only:
            log("/health while a hostile template renders")
            guarded(rows, "health", "sqlite", lambda: hardening.health(tmp, 1 if args.quick else 3))
        dist = tmp / "dist"
        dist.mkdir()
        run_distributed(only, args.quick, dist, rows)
        if "schedules" in only:
            run_schedules(args.quick, tmp / "schedules", rows)
        if "profile" in only:
            log("profile of seq40 on sqlite")
            from bench.profile import markdown, profile

            try:
                profile_md = markdown(profile("seq40", 3 if args.quick else 10, log=log))
            except Exception:
                log(traceback.format_exc())
                profile_md = "(profile failed; see the run's stderr)\n"
        if "profile-server" in only:
            server_md = server_profile(args.quick)
    took = time.monotonic() - started
    report.print_table(rows)
    log(f"benchmarks took {took:.0f} s")
    if args.write:
        doc.write(Path(args.write), info, command, rows, profile_md, server_md, took)
        log(f"wrote {args.write}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
