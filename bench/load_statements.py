"""Statements and engine events per step under the ``throughput`` load, in the real processes.

``python -m bench.load_statements [http|direct|both] [executions] [reps] [--seq40]`` (defaults
both, 50, 1) starts the cluster of ``bench.distributed`` (``noetl server start`` at its default
process count, two ``noetl worker start`` at their default threads; HTTP workers or direct
workers) with :mod:`bench.loadcount` in every process (``bench/sqlcount`` on ``PYTHONPATH``),
runs the warm-up, then ``executions`` executions of 5 steps posted together (``--seq40``: that
many 40-step executions one after the other, for comparison), and prints per step, for the
server processes and the worker processes apart: statements (the most frequent by text),
BEGIN/COMMIT/ROLLBACK, round trips, and the engine events (leases and empty leases, MIN
probes, waits and what ended them, NOTIFYs received, retried transactions, pool waits). Also
the database's own counters (``pg_stat_database``: commits, rollbacks, deadlocks) and what its
backends were waiting on, sampled every 5 ms (``pg_stat_activity``). With
``NOETL_BENCH_PERF=FILE``, ``perf record`` of the database's backends during the load.

Counting costs CPU in every process: the numbers are counts, not timings."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psycopg

from bench import playbooks
from bench.cluster import Cluster
from bench.distributed import SERVER_PROCESSES, STARTERS, WORKER_CONCURRENCY, _wait_terminal
from bench.stores import scratch_postgres
from noetl.store import open_store

HERE = Path(__file__).resolve().parent


def _tree(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(d.name))
    out, stack = [], [pid]
    while stack:
        p = stack.pop()
        out.append(p)
        stack.extend(children.get(p, []))
    return out


class Snapshots:
    def __init__(self, directory: Path):
        self.dir = directory
        self.n = 0

    def take(self, pids: list[int]) -> dict[int, dict[str, Any]]:
        self.n += 1
        for p in pids:
            try:
                os.kill(p, signal.SIGUSR1)
            except ProcessLookupError:
                pass
        out: dict[int, dict[str, Any]] = {}
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            for p in pids:
                f = self.dir / f"{p}-{self.n}.json"
                if p not in out and f.exists():
                    out[p] = json.loads(f.read_text())
            if len(out) == len(pids):
                break
            time.sleep(0.02)
        return out


def _sum(snaps: dict[int, dict[str, Any]]) -> dict[str, Counter[str]]:
    tot: dict[str, Counter[str]] = {"n": Counter(), "by_text": Counter(), "control": Counter(),
                                    "events": Counter()}
    for s in snaps.values():
        for k in ("statements", "tx_control", "round_trips", "tx_round_trips"):
            tot["n"][k] += s[k]
        for k in ("by_text", "control", "events"):
            tot[k].update(s[k])
    return tot


def _diff(a: dict[str, Counter[str]], b: dict[str, Counter[str]]) -> dict[str, Counter[str]]:
    out: dict[str, Counter[str]] = {}
    for k in b:
        c: Counter[str] = Counter()
        for key in set(a[k]) | set(b[k]):
            v = b[k].get(key, 0) - a[k].get(key, 0)
            if v:
                c[key] = v
        out[k] = c
    return out


def _pg_stats(url: str, db: str) -> dict[str, float]:
    with psycopg.connect(url, autocommit=True) as c:
        r = c.execute("SELECT xact_commit, xact_rollback, deadlocks, tup_returned, tup_fetched, "
                      "tup_inserted, tup_updated, tup_deleted, blks_hit FROM pg_stat_database "
                      "WHERE datname = %s", (db,)).fetchone()
    assert r is not None
    names = ("commits", "rollbacks", "deadlocks", "tup_returned", "tup_fetched", "tup_inserted",
             "tup_updated", "tup_deleted", "blks_hit")
    return dict(zip(names, (float(v) for v in r), strict=True))


class WaitSampler(threading.Thread):
    """What the database's backends wait on, every ``every`` seconds."""

    def __init__(self, url: str, db: str, every: float = 0.005):
        super().__init__(daemon=True)
        self.url, self.db, self.every = url, db, every
        self.samples = 0
        self.seen: Counter[str] = Counter()
        self.stop = threading.Event()

    def run(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as c:
            while not self.stop.wait(self.every):
                rows = c.execute(
                    "SELECT state, wait_event_type, wait_event, left(query, 60) FROM "
                    "pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid() "
                    "AND application_name <> 'noetl-listen'", (self.db,)).fetchall()
                self.samples += 1
                for state, wtype, wev, q in rows:
                    if state == "active":
                        key = f"active {wtype or 'CPU'}:{wev or '-'}"
                        if wtype == "Lock":
                            key += f" [{' '.join(str(q).split())}]"
                        self.seen[key] += 1
                    elif state == "idle in transaction":
                        self.seen["idle in transaction"] += 1


def _perf(url: str, db: str, pids: list[int]) -> subprocess.Popen[bytes] | None:
    """With NOETL_BENCH_PERF=FILE: ``perf record`` the database's backends (and, with
    NOETL_BENCH_PERF_ALL, the server and worker processes) during the load."""
    out = os.environ.get("NOETL_BENCH_PERF")
    if not out:
        return None
    with psycopg.connect(url, autocommit=True) as c:
        backends = [int(r[0]) for r in c.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (db,)).fetchall()]
    watched = backends + (pids if os.environ.get("NOETL_BENCH_PERF_ALL") else [])
    p = subprocess.Popen(["perf", "record", "-q", "-F", "997", "-g", "-o", out, "-p",
                          ",".join(map(str, watched))], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    time.sleep(0.3)  # perf attached
    return p


def _spies(pids: list[int]) -> list[subprocess.Popen[bytes]]:
    """With NOETL_BENCH_PYSPY=DIR (and ``py-spy`` on PATH or in NOETL_BENCH_PYSPY_BIN):
    ``py-spy record --format raw`` of each server and worker process during the load, to
    ``DIR/<pid>.txt`` (collapsed stacks; NOETL_BENCH_PYSPY_RATE, NOETL_BENCH_PYSPY_ARGS:
    default ``--nonblocking --gil``, threads holding the GIL only)."""
    out = os.environ.get("NOETL_BENCH_PYSPY")
    if not out:
        return []
    exe = os.environ.get("NOETL_BENCH_PYSPY_BIN", "py-spy")
    rate = os.environ.get("NOETL_BENCH_PYSPY_RATE", "250")
    how = os.environ.get("NOETL_BENCH_PYSPY_ARGS", "--nonblocking --gil").split()
    procs = []
    for p in pids:
        procs.append(subprocess.Popen(
            [exe, "record", "--pid", str(p), "--format", "raw", "-r", rate, *how,
             "-o", f"{out}/{p}.txt"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    time.sleep(1.0)  # attached
    return procs


def measure(direct: bool, executions: int, reps: int, tmp: Path, seq40: bool = False) -> str:
    """``seq40``: ``executions`` runs of the 40-step sequence one after the other instead."""
    counts_dir = tmp / "counts"
    counts_dir.mkdir()
    with scratch_postgres() as url:
        cluster = Cluster(url, tmp)
        cluster.env["PYTHONPATH"] = os.pathsep.join(
            [str(HERE / "sqlcount"), str(HERE.parent), cluster.env.get("PYTHONPATH", "")])
        cluster.env["NOETL_BENCH_SQLCOUNT"] = str(counts_dir)
        store = open_store(url)
        snaps = Snapshots(counts_dir)
        try:
            cluster.start_server(processes=SERVER_PROCESSES)
            width = 40 if seq40 else 5
            path = cluster.register(playbooks.sequential(width, f"tp{width}"))
            for _ in range(2):
                if direct:
                    cluster.start_direct_worker(WORKER_CONCURRENCY)
                else:
                    cluster.start_worker(WORKER_CONCURRENCY)
            for _ in range(3):
                _wait_terminal(store, [cluster.start(path)], 120)
            assert cluster.server is not None
            server_pids = _tree(cluster.server.pid)
            worker_pids = [p for w in cluster.workers for p in _tree(w.pid)]
            pids = server_pids + worker_pids
            s0 = snaps.take(pids)
            pg0 = _pg_stats(url, cluster.database)
            cpu0 = cluster.cpu()
            sampler = WaitSampler(url, cluster.database)
            sampler.start()
            perf = _perf(url, cluster.database, server_pids + worker_pids)
            spies = _spies(server_pids + worker_pids)
            t0 = time.perf_counter()
            for _ in range(reps):
                if seq40:
                    for _ in range(executions):
                        _wait_terminal(store, [cluster.start(path)], 600)
                    continue
                with ThreadPoolExecutor(STARTERS) as pool:
                    eids = list(pool.map(lambda _: cluster.start(path), range(executions)))
                _wait_terminal(store, eids, 600)
            wall = time.perf_counter() - t0
            sampler.stop.set()
            sampler.join()
            for p in [*([perf] if perf is not None else []), *spies]:
                p.send_signal(signal.SIGINT)
            for p in [*([perf] if perf is not None else []), *spies]:
                p.wait(60)
            cpu1 = cluster.cpu()
            pg1 = _pg_stats(url, cluster.database)
            s1 = snaps.take(pids)
        finally:
            cluster.close()
            store.close()
    steps = executions * width * reps
    how = "one after the other" if seq40 else "posted together"
    lines = [f"## {'direct' if direct else 'HTTP'} workers: {executions} executions × {width} "
             f"steps × {reps} ({how}), {steps / wall:.0f} steps/s while counting, per step:"]
    cpu = {k: (cpu1[k] - cpu0[k]) / steps * 1000 for k in cpu0}
    lines.append("CPU ms/step: " + ", ".join(f"{k} {v:.2f}" for k, v in cpu.items()))
    for role, group in (("server", server_pids), ("workers", worker_pids)):
        d = _diff(_sum({p: s0[p] for p in group if p in s0 and p in s1}),
                  _sum({p: s1[p] for p in group if p in s0 and p in s1}))
        n = d["n"]
        if not n and not d["events"]:
            lines.append(f"### {role}: no SQL")
            continue
        lines.append(f"### {role} ({len(group)} processes)")
        lines.append(f"statements {n['statements'] / steps:.2f}, round trips "
                     f"{n['round_trips'] / steps:.2f}, control " + ", ".join(
                         f"{k} {v / steps:.2f}" for k, v in sorted(d["control"].items())))
        for sql, v in d["by_text"].most_common(30):
            lines.append(f"  {v / steps:6.2f}  {sql[:150]}")
        for k, v in sorted(d["events"].items()):
            lines.append(f"  event {k}: {v / steps:.3f}" + (f" (total {v:.1f})" if
                                                            k.endswith(" s") else ""))
    lines.append("### database (pg_stat_database, per step)")
    lines.append(", ".join(f"{k} {(pg1[k] - pg0[k]) / steps:.2f}" for k in pg0))
    lines.append(f"### backends' waits ({sampler.samples} samples, per sample)")
    for k, v in sampler.seen.most_common(12):
        lines.append(f"  {v / max(1, sampler.samples):6.3f}  {k}")
    return "\n".join(lines)


def main(argv: list[str]) -> None:
    seq40 = "--seq40" in argv
    argv = [a for a in argv if a != "--seq40"]
    which = argv[0] if argv else "both"
    executions = int(argv[1]) if len(argv) > 1 else 50
    reps = int(argv[2]) if len(argv) > 2 else 1
    modes = {"http": [False], "direct": [True], "both": [False, True]}[which]
    for direct in modes:
        with tempfile.TemporaryDirectory(prefix="noetl-loadstmt-") as tmp:
            print(measure(direct, executions, reps, Path(tmp), seq40), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
