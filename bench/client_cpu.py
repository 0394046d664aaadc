"""Embedded seq40: per-step time and this process's CPU per step, on a store.

``python -m bench.client_cpu [postgres|sqlite] [runs] [rounds]`` (defaults postgres, 20, 1)
runs seq40 embedded (``LocalRunner``, as the ``seq40`` scenario) after three warm-up
executions and prints, per round: the median per-step overhead (event timestamps, as the
scenario), the wall clock per step of the whole round (client included), and the CPU time
(user + system) of this process per step: the engine, the tools and the client side of the
store, without the database server's. Meant for A/B runs of two checkouts side by side
(``PYTHONPATH=<checkout>/src``, interleaved), where the CPU figure varies far less than the
times on a shared machine.
"""

from __future__ import annotations

import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench import playbooks
from bench.embedded import Bench
from bench.stores import scratch_postgres, sqlite_url

STEPS = 40


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def measure(url: str, label: str, runs: int) -> tuple[float, float, float]:
    """(median per-step overhead, wall per step, CPU per step), in ms."""
    text = playbooks.sequential(STEPS, "seq40")
    with Bench(url, label, log=lambda _: None) as b:
        for _ in range(3):
            b.run(text)
        c0, t0 = _cpu(), time.perf_counter()
        spans = []
        for _ in range(runs):
            eid, _ = b.run(text)
            spans.append(b.exec_span(eid))
        wall, cpu = time.perf_counter() - t0, _cpu() - c0
    jobs = runs * (STEPS + 2)
    return (statistics.median(spans) / STEPS * 1e3, wall / jobs * 1e3, cpu / jobs * 1e3)


def main(argv: list[str]) -> None:
    store = argv[0] if argv else "postgres"
    runs = int(argv[1]) if len(argv) > 1 else 20
    rounds = int(argv[2]) if len(argv) > 2 else 1
    for _ in range(rounds):
        if store == "postgres":
            with scratch_postgres() as url:
                got = measure(url, "postgres", runs)
        else:
            with tempfile.TemporaryDirectory(prefix="noetl-cpu-") as tmp:
                got = measure(sqlite_url(Path(tmp)), "sqlite", runs)
        print(f"seq40 {store}: {got[0]:.3f} ms/step, wall {got[1]:.3f} ms/step, "
              f"client CPU {got[2]:.3f} ms/step", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
