"""Embedded seq40 with a large workload: does a step's cost grow with the workload's size?

``python -m bench.big_workload [sqlite|postgres] [KB ...]`` (defaults sqlite, 0 100 500) runs
seq40 embedded (``LocalRunner``, as the ``seq40`` scenario) with a workload holding a list of
about KB kilobytes (``blob``, also a bare name in templates), and prints the median per-step
overhead of three runs for each size. Every step sees the whole workload (its render context,
a python step's ``context``; a report reads the execution row)."""

from __future__ import annotations

import statistics
import sys
import tempfile
from pathlib import Path

import yaml

from bench import playbooks
from bench.embedded import Bench
from bench.stores import scratch_postgres, sqlite_url

STEPS = 40


def playbook(kb: int) -> str:
    doc = yaml.safe_load(playbooks.sequential(STEPS, f"big{kb}"))
    doc["workload"] = {**(doc.get("workload") or {}),
                       "blob": ["x" * 90 + f"{i:08d}" for i in range(kb * 10)]}
    return str(yaml.safe_dump(doc))


def measure(url: str, label: str, sizes: list[int]) -> list[tuple[int, float]]:
    out = []
    with Bench(url, label, log=lambda _: None) as b:
        for kb in sizes:
            text = playbook(kb)
            b.run(text)  # warm-up
            spans = [b.exec_span(b.run(text)[0]) / STEPS * 1e3 for _ in range(3)]
            out.append((kb, statistics.median(spans)))
    return out


def main(argv: list[str]) -> None:
    store = argv[0] if argv else "sqlite"
    sizes = [int(a) for a in argv[1:]] or [0, 100, 500]
    if store == "postgres":
        with scratch_postgres() as url:
            rows = measure(url, store, sizes)
    else:
        with tempfile.TemporaryDirectory(prefix="noetl-big-") as tmp:
            rows = measure(sqlite_url(Path(tmp)), store, sizes)
    print(f"| workload ({store}) | ms/step |\n|---:|---:|")
    for kb, ms in rows:
        print(f"| {kb} KB | {ms:.2f} |")


if __name__ == "__main__":
    main(sys.argv[1:])
