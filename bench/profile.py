"""Where the time goes: cProfile of ``seq40`` on SQLite across *every* thread (the engine's
work happens in the worker-pool threads, which a plain cProfile of the main thread misses).

Each thread started while profiling runs under its own ``cProfile.Profile``; the profiles are
merged with :mod:`pstats`. Run alone: ``python -m bench.profile [seq40|loop] [runs] [loop items]``."""

from __future__ import annotations

import cProfile
import pstats
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench import playbooks
from bench.embedded import Bench
from bench.stores import sqlite_url

TIMER = time.thread_time  # CPU time of the calling thread: waits (GIL, locks, I/O) excluded
# thread loops and waits: their cumulative time is mostly idle waiting for work
WAITING = (" _loop", " _heartbeats", " wait_for_work", " wait", " run", " _bootstrap",
           " _bootstrap_inner")


class TimedLock:
    """Wraps the SQLite store's RLock to add up the wall time threads spend waiting for it
    (the CPU-time profile does not see waits)."""

    def __init__(self, inner: Any):
        self._inner = inner
        self.waited = 0.0
        self.count = 0

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        return bool(self._inner.acquire(blocking, timeout))

    def release(self) -> None:
        self._inner.release()

    def __enter__(self) -> bool:
        t = time.perf_counter()
        got = bool(self._inner.acquire())
        self.waited += time.perf_counter() - t
        self.count += 1
        return got

    def __exit__(self, *exc: object) -> None:
        self._inner.release()


@contextmanager
def all_threads(main: cProfile.Profile, out: list[cProfile.Profile]) -> Iterator[None]:
    """Profile the calling thread with ``main`` and each thread started inside the block."""
    # _bootstrap_inner, not run: thread subclasses (anyio's worker threads) override run()
    original = threading.Thread._bootstrap_inner  # type: ignore[attr-defined]

    def run(self: threading.Thread) -> None:
        prof = cProfile.Profile(TIMER)
        out.append(prof)  # at start: threads still alive at the end are read as they are
        prof.enable()
        try:
            original(self)
        finally:
            prof.disable()

    threading.Thread._bootstrap_inner = run  # type: ignore[attr-defined]
    main.enable()
    try:
        yield
    finally:
        main.disable()
        threading.Thread._bootstrap_inner = original  # type: ignore[attr-defined]


def _name(key: tuple[str, int, str]) -> str:
    file, line, func = key
    if file == "~":
        return func
    parts = Path(file).parts
    if "noetl" in parts:
        short = "/".join(parts[len(parts) - 1 - parts[::-1].index("noetl"):])
    else:
        short = "/".join(parts[-2:])
    return f"{short}:{line} {func}"


def package(key: tuple[str, int, str]) -> str:
    """Who owns a profiled function: noetl, a site-packages distribution, the standard
    library (stdlib), or a C builtin (labelled by its type where it names one)."""
    file, _, func = key
    if file == "~":
        for lib in ("sqlite3", "psycopg", "_thread", "_json", "_asyncio", "select"):
            if lib in func:
                return lib
        return "builtins"
    parts = Path(file).parts
    if "site-packages" in parts:
        return parts[parts.index("site-packages") + 1].removesuffix(".py")
    if "noetl" in parts and "src" in parts:
        return "noetl"
    return "stdlib"


def by_package(main: cProfile.Profile, profiles: list[cProfile.Profile]) -> list[tuple[str, float]]:
    """Own CPU time summed per package, largest first."""
    stats = pstats.Stats(main)
    for p in profiles:
        stats.add(p)
    totals: dict[str, float] = {}
    for k, v in stats.stats.items():  # type: ignore[attr-defined]
        totals[package(k)] = totals.get(package(k), 0.0) + v[2]
    return sorted(totals.items(), key=lambda kv: -kv[1])


def package_table(pkgs: list[tuple[str, float]], top: int = 10) -> list[str]:
    total = sum(t for _, t in pkgs) or 1.0
    out = ["| own CPU by package | s | share |", "|---|---:|---:|"]
    for name, t in pkgs[:top]:
        out.append(f"| {name} | {t:.3f} | {t / total:.1%} |")
    return out


def merged_rows(main: cProfile.Profile, profiles: list[cProfile.Profile]
                ) -> list[tuple[str, int, float, float]]:
    """(function, calls, own s, cumulative s) over all threads' profiles."""
    stats = pstats.Stats(main)
    for p in profiles:
        stats.add(p)
    table: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    return [(_name(k), v[1], v[2], v[3]) for k, v in table.items()]


def profile(scenario: str = "seq40", runs: int = 10, log: Callable[[str], None] = print,
            items: int = 1000) -> dict[str, Any]:
    """Profile ``runs`` executions of the scenario (``seq40``, or ``loop`` of ``items``) on a
    fresh SQLite store."""
    if scenario == "seq40":
        text, args, steps = playbooks.sequential(40, "seq40"), None, 40
    else:
        text, args, steps = playbooks.loop(), {"n": items}, items
    profiles: list[cProfile.Profile] = []
    main = cProfile.Profile(TIMER)
    with tempfile.TemporaryDirectory(prefix="noetl-prof-") as tmp:
        with Bench(sqlite_url(Path(tmp)), "sqlite", log=log) as b:
            b.run(text, args)  # warm-up, not profiled
            with all_threads(main, profiles):
                b.runner.pool.stop()  # restart the pool so its threads run profiled
                b.runner.pool._stop.clear()
                b.runner.pool._threads = []
                store: Any = b.runner.store
                lock = TimedLock(store._lock) if hasattr(store, "_lock") else None
                if lock is not None:
                    store._lock = lock
                b.runner.pool.start()
                t = time.perf_counter()
                spans = []
                for _ in range(runs):
                    eid, _ = b.run(text, args)
                    spans.append(b.exec_span(eid))
                wall = time.perf_counter() - t
                b.runner.pool.stop()
    rows = merged_rows(main, profiles)
    pkgs = by_package(main, profiles)
    busy = sum(tt for _, _, tt, _ in rows)

    def calls(*needles: str) -> int:
        return sum(n for name, n, _, _ in rows if any(x in name for x in needles))

    jobs = runs * (steps if scenario == "seq40" else steps + 2)
    counts = {"SQL statements (execute + executemany)":
              calls("'execute' of 'sqlite3", "'executemany' of 'sqlite3"),
              "store.transaction() (incl. nested)": calls("store/sqlite.py:98 transaction"),
              "store.read()": calls("store/sqlite.py:119 read"),
              "engine lease attempts": calls("engine/core.py:124 _lease_in"),
              "json.dumps": calls("json/__init__.py:183 dumps"),
              "json.loads": calls("json/__init__.py:299 loads")}
    return {"scenario": scenario, "runs": runs, "steps": steps, "wall": wall,
            "per_step_ms": sum(spans) / len(spans) / steps * 1000,
            "threads": len(profiles) + 1, "busy": busy, "jobs": jobs, "packages": pkgs,
            "counts": counts, "rows": rows,
            "lock_wait": lock.waited if lock else None, "lock_count": lock.count if lock else 0}


def markdown(p: dict[str, Any], top: int = 15) -> str:
    rows = p["rows"]
    busy = p["busy"] or 1.0
    lock = ("" if p["lock_wait"] is None else
            f" Threads waited {p['lock_wait']:.2f} s in all (wall clock) for the SQLite store's "
            f"lock over {p['lock_count']} acquisitions.")
    lines = [f"cProfile with a per-thread CPU-time clock (`time.thread_time`) in all "
             f"{p['threads']} threads (the engine runs in the worker-pool threads), {p['runs']} "
             f"runs of `{p['scenario']}` on SQLite, {p['jobs']} jobs: {p['wall']:.2f} s wall, "
             f"{p['busy']:.2f} s CPU ({p['per_step_ms']:.2f} ms/step under the profiler, which "
             f"inflates call-heavy code). Waits (GIL, locks, I/O) are not CPU time and do not "
             f"appear below.{lock}", "",
             "Calls per job:", "", "| what | per job |", "|---|---:|"]
    for what, n in p["counts"].items():
        lines.append(f"| {what} | {n / p['jobs']:.1f} |")
    lines += ["", *package_table(p["packages"]),
              "", "Top functions by own CPU time (tottime), share of all CPU time:", "",
              "| function | calls | own s | share |", "|---|---:|---:|---:|"]
    own = sorted(rows, key=lambda r: -r[2])
    for name, calls, tt, _ in own[:top]:
        lines.append(f"| `{name}` | {calls} | {tt:.3f} | {tt / busy:.1%} |")
    lines += ["", "NoETL functions by cumulative CPU time (with callees), share of all CPU time:",
              "", "| function | calls | cum s | share |", "|---|---:|---:|---:|"]
    ours = sorted((r for r in rows if r[0].startswith("noetl/")), key=lambda r: -r[3])
    for name, calls, _, ct in [r for r in ours if not r[0].endswith(WAITING)][:top]:
        lines.append(f"| `{name}` | {calls} | {ct:.3f} | {ct / busy:.1%} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    which = sys.argv[1] if len(sys.argv) > 1 else "seq40"
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    size = int(sys.argv[3]) if len(sys.argv) > 3 else 1000
    sys.stdout.write(markdown(profile(which, n, items=size)))
