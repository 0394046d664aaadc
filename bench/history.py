"""Whether a step costs the same on a database with a history as on a new one.

The design rule: no statement of a step scans a table that grows with the runs. A planner can
break it on its own: with some thousands of rows, and no statistics (autovacuum off, as in
CI), PostgreSQL hashed the whole execution table in a join it took for a large one. This
measures the same work on a fresh scratch database and on one given a synthetic history
(:func:`add_history`: finished executions with their step rows, done jobs and events, written
by SQL in a few seconds), side by side:

- **embedded**, as ``noetl run`` runs (``LocalRunner(own_only=True)``: its leases take only
  its own executions' jobs, through the execution tree): the 200-item loop and seq40, on
  SQLite and PostgreSQL;
- **distributed** (PostgreSQL): the throughput scenario of :mod:`bench.distributed` (server +
  two HTTP workers, 50 executions × 5 steps, three rounds).

``python -m bench.history [executions] [--stores sqlite,postgres] [--no-distributed]``
(default 20,000 executions of history) prints a Markdown table of fresh against history."""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench import playbooks
from bench.stores import scratch_postgres, sqlite_url

STEPS, EVENTS, JOBS = 7, 25, 5  # per execution of history (about a seq7's)


def add_history(url: str, executions: int) -> None:
    """Finished executions with their rows, ids below any the engine draws (it draws 64-bit
    time-ordered ids), written by recursive-CTE inserts (the same SQL on both stores)."""
    from noetl.store import open_store

    def series(n: int) -> str:
        return (f"WITH RECURSIVE g(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM g "
                f"WHERE x < {n - 1}) ")

    store = open_store(url)
    try:
        with store.transaction() as tx:
            x = tx._x  # (the store's own statement call, for these bulk inserts)
            x(series(executions) + "INSERT INTO execution (execution_id, path, status, "
              "playbook, workload, state, created_at, updated_at, ended_at) SELECT x + 1, "
              "'history/p', 'COMPLETED', '{}', '{\"n\": 1}', '{}', 0, 0, 0 FROM g")
            x(series(executions * STEPS) + "INSERT INTO step_state (execution_id, step, "
              f"status, attempts, runs, active, has_result) SELECT x / {STEPS} + 1, "
              f"'s' || (x % {STEPS}), 'COMPLETED', 1, 1, 0, 1 FROM g")
            x(series(executions * JOBS) + "INSERT INTO queue (queue_id, execution_id, step, "
              "run, kind, payload, status, priority, attempts, max_attempts, available_at, "
              f"created_at, updated_at) SELECT x + 1, x / {JOBS} + 1, 's' || (x % {JOBS}), "
              "1, 'step', '{}', 'done', 50, 1, 1, 0, 0, 0 FROM g")
            x(series(executions * EVENTS) + "INSERT INTO event (event_id, execution_id, "
              f"event_type, status, node_name, created_at) SELECT x + 1, x / {EVENTS} + 1, "
              "'step_completed', 'COMPLETED', 's', 0 FROM g")
    finally:
        store.close()


@contextmanager
def _database(store: str, tmp: Path, name: str) -> Iterator[str]:
    if store == "sqlite":
        yield sqlite_url(tmp, name)
    else:
        with scratch_postgres() as url:
            yield url


def embedded(url: str) -> dict[str, float]:
    """Loop of 200 items (s) and seq40 (ms/step, event span), ``own_only`` as ``noetl run``."""
    from noetl.dsl import parse_playbook
    from noetl.local import LocalRunner

    loop = parse_playbook(playbooks.loop("hloop"), "<bench>")
    seq = parse_playbook(playbooks.sequential(40, "hseq40"), "<bench>")
    out: dict[str, list[float]] = {"loop 200 items, s": [], "seq40, ms/step": []}
    with LocalRunner(url, concurrency=4, own_only=True) as runner:
        for rep in range(4):  # the first of each is a warm-up
            t = time.perf_counter()
            desc = runner.run(loop, args={"n": 200}, timeout=600)
            took = time.perf_counter() - t
            assert desc["status"] == "COMPLETED", desc.get("error")
            t = time.perf_counter()
            desc = runner.run(seq, timeout=600)
            per = (time.perf_counter() - t) / 40 * 1000
            assert desc["status"] == "COMPLETED", desc.get("error")
            if rep:
                out["loop 200 items, s"].append(took)
                out["seq40, ms/step"].append(per)
    return {k: statistics.median(v) for k, v in out.items()}


def distributed(url: str, tmp: Path) -> dict[str, float]:
    from bench.distributed import Distributed

    with Distributed(url, tmp, log=lambda _: None) as d:
        rows = d.throughput(50, 3)
    return {"throughput, steps/s": rows[0].median, "throughput CPU, ms/step": rows[1].median}


def main(argv: list[str]) -> None:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m bench.history")
    ap.add_argument("executions", nargs="?", type=int, default=20000)
    ap.add_argument("--stores", default="sqlite,postgres")
    ap.add_argument("--no-distributed", action="store_true")
    args = ap.parse_args(argv)
    history, stores = args.executions, args.stores.split(",")
    lines = ["| store | measure | fresh | with history | ratio |", "|---|---|---:|---:|---:|"]
    with tempfile.TemporaryDirectory(prefix="noetl-history-") as td:
        tmp = Path(td)
        for store in stores:
            got = {}
            for label, n in (("fresh", 0), ("history", history)):
                with _database(store, tmp, f"{store}-{label}") as url:
                    t = time.perf_counter()
                    if n:
                        add_history(url, n)
                    print(f"{store} {label}: {n} executions of history "
                          f"({time.perf_counter() - t:.1f} s)", file=sys.stderr)
                    got[label] = embedded(url)
                    if store == "postgres" and not args.no_distributed:
                        (tmp / label).mkdir(exist_ok=True)
                        got[label].update(distributed(url, tmp / label))
            for k, fresh in got["fresh"].items():
                old = got["history"][k]
                lines.append(f"| {store} | {k} | {fresh:.3g} | {old:.3g} | {old / fresh:.2f} |")
    print(f"History: {history} finished executions ({history * STEPS} step rows, "
          f"{history * JOBS} jobs, {history * EVENTS} events).\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main(sys.argv[1:])
