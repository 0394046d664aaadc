"""Distributed scenarios on PostgreSQL with ``noetl server start`` + ``noetl worker start``
subprocesses: ``throughput``, ``seq40``/``seq7``, ``loop``, ``recovery``; the workers either
HTTP workers of the server (``--server``) or direct workers (``--store``: the engine in the
worker, on PostgreSQL; the server then only takes the run requests).

Times come from the engine's events, read straight from the scratch database. Each scenario
also prints the CPU per step of the server, the workers and the database's PostgreSQL
backends (``/proc`` of the local processes) as a ``<scenario> cpu`` row."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench import playbooks
from bench.cluster import Cluster, ancestors
from bench.embedded import SEQ7_MS, SEQ40_MS
from bench.stats import Row
from noetl.store import Store, open_store

THROUGHPUT = 500.0  # steps/s
RECOVERY_S = 10.0
LOOP1000_S = 4.0
DIRECT_SEQ40_MS = 1.0  # issue 16: a direct worker's seq40
CPU_PER_STEP_MS = 1.2  # issue 16: server + workers + PostgreSQL, per step
TERMINAL = ("COMPLETED", "FAILED", "CANCELLED")
LABEL = "postgres (server+workers)"
DIRECT_LABEL = "postgres (direct workers)"


def _given(name: str) -> int | None:
    raw = os.environ.get(name)
    return int(raw) if raw else None


# The defaults are what is measured (`noetl server start` sizes its processes, and `noetl
# worker start` its threads, from the cores); these variables override them.
SERVER_PROCESSES = _given("NOETL_BENCH_SERVER_PROCESSES")
WORKER_CONCURRENCY = _given("NOETL_BENCH_WORKER_CONCURRENCY")
STARTERS = 8  # client threads posting the run requests of `throughput` together


def sizes() -> str:
    from noetl.settings import cpu_count, default_server_processes, default_worker_threads

    p = SERVER_PROCESSES or default_server_processes(True)
    c = WORKER_CONCURRENCY or default_worker_threads()
    how = "defaults" if SERVER_PROCESSES is None and WORKER_CONCURRENCY is None else "given"
    return f"{p} server processes, {c} threads per worker ({how}, {cpu_count()} cores)"


def unavailable(reason: str) -> list[Row]:
    return [Row("throughput", LABEL, "steps/s, 200 executions × 5 steps, 2 workers", "steps/s",
                target=THROUGHPUT, higher_is_better=True, note=reason),
            Row("seq40", LABEL, "per-step overhead", "ms", target=SEQ40_MS["postgres"], note=reason),
            Row("seq7", LABEL, "request → execution_completed", "ms", target=SEQ7_MS["postgres"],
                note=reason),
            Row("recovery", LABEL, "worker SIGKILL → step started again", "s", target=RECOVERY_S,
                note=reason)]


def _stamp(store: Store, eid: int, event_type: str, node: str | None = None,
           nth: int = 1) -> float | None:
    with store.read() as tx:
        events = [e for e in tx.get_events(eid, 0, 100000, event_type=event_type)
                  if node is None or e.node_name == node]
    return events[nth - 1].created_at if len(events) >= nth else None


def _wait_terminal(store: Store, eids: list[int], timeout: float) -> None:
    """Wait until the executions ended; raise unless all COMPLETED. Polls one execution row
    at a time by its key (the next one still running), so the observer adds almost no load
    to what it measures, and none that grows with the database: a count of all executions
    by status, the poll before, scanned the table (7.6 ms a poll at 20,000 executions, in
    the measured window)."""
    deadline = time.monotonic() + timeout
    pending = list(eids)
    while pending:
        with store.read() as tx:
            row = tx.get_execution(pending[0])
        if row is not None and str(row.status) in TERMINAL:
            if str(row.status) != "COMPLETED":
                raise RuntimeError(f"execution {pending[0]} ended {row.status}")
            pending.pop(0)
            continue
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(pending)} of {len(eids)} executions not ended after "
                               f"{timeout} s (the first: {row.status if row else 'missing'})")
        time.sleep(0.02)


class Distributed:
    """``direct``: direct workers (``--store``) instead of HTTP workers of the server."""

    def __init__(self, store_url: str, tmp: Path, log: Callable[[str], None] = print,
                 direct: bool = False):
        self.cluster = Cluster(store_url, tmp)
        self.tmp = tmp
        self.log = log
        self.store: Store | None = None
        self.direct = direct
        self.label = DIRECT_LABEL if direct else LABEL

    def _worker(self, concurrency: int | None) -> subprocess.Popen[bytes]:
        if self.direct:
            return self.cluster.start_direct_worker(concurrency)
        return self.cluster.start_worker(concurrency)

    def _cpu_row(self, scenario: str) -> Row:
        return Row(f"{scenario} cpu", self.label, "CPU per step, server+workers+postgres", "ms",
                   target=CPU_PER_STEP_MS)

    def _add(self, spent: dict[str, float], before: dict[str, float]) -> None:
        """Add the CPU spent since ``before`` to ``spent``, per part. A scenario's window
        closes as soon as its executions ended: the benchmark's own reads of their events
        afterwards (in PostgreSQL) are not the system's work."""
        after = self.cluster.cpu()
        for k in before:
            spent[k] = spent.get(k, 0.0) + after[k] - before[k]

    def _spent(self, row: Row, spent: dict[str, float], steps: int) -> Row:
        """Add ``spent`` (CPU seconds per part) over ``steps`` to ``row`` as ms per step.
        The kernel counts CPU in ticks (10 ms): a figure is only as fine as 10 ms over its
        steps, so a short run's is summed with others' (``sequences``)."""
        part = {k: v / steps * 1000 for k, v in spent.items()}
        row.values.append(sum(part.values()))
        row.note = ", ".join(f"{k} {v:.2f}" for k, v in part.items())
        if not self.cluster.postgres_visible():
            row.note += " (PostgreSQL's processes are not visible here: not counted)"
        return row

    def __enter__(self) -> Distributed:
        self.cluster.start_server(processes=SERVER_PROCESSES)
        self.log(f"  {self.label}: {sizes()}")
        self.store = open_store(self.cluster.store_url)
        return self

    def __exit__(self, *exc: object) -> None:
        self.cluster.close()
        if self.store is not None:
            self.store.close()

    def _st(self) -> Store:
        assert self.store is not None
        return self.store

    def _run(self, path: str, timeout: float = 120) -> tuple[int, float]:
        requested = time.time()
        eid = self.cluster.start(path)
        _wait_terminal(self._st(), [eid], timeout)
        return eid, requested

    def _span(self, eid: int) -> float:
        end = _stamp(self._st(), eid, "execution_completed")
        start = _stamp(self._st(), eid, "execution_started")
        assert end is not None and start is not None
        return end - start

    def throughput(self, executions: int, reps: int) -> list[Row]:
        path = self.cluster.register(playbooks.sequential(5, "tp5"))
        for _ in range(2):
            self._worker(WORKER_CONCURRENCY)
        for _ in range(3):
            self._run(path)  # warm-up (also: the workers are up, every server process too)
        row = Row("throughput", self.label,
                  f"steps/s, {executions} executions × 5 steps, 2 workers",
                  "steps/s", target=THROUGHPUT, higher_is_better=True)
        spent: dict[str, float] = {}
        for _ in range(reps):
            before = self.cluster.cpu()
            with ThreadPoolExecutor(STARTERS) as pool:  # the run requests, posted together
                eids = list(pool.map(lambda _: self.cluster.start(path), range(executions)))
            _wait_terminal(self._st(), eids, 600)
            self._add(spent, before)  # (not the reads of the figures below)
            starts = [_stamp(self._st(), e, "execution_started") for e in eids]
            ends = [_stamp(self._st(), e, "execution_completed") for e in eids]
            span = max(e for e in ends if e) - min(s for s in starts if s)
            row.values.append(executions * 5 / span)
        cpu = self._spent(self._cpu_row("throughput"), spent, executions * 5 * reps)
        row.note = sizes()
        self.cluster.stop_workers()
        self.log(f"  throughput median {row.median:.0f} steps/s; CPU {cpu.note}")
        return [row, cpu]

    def sequences(self, reps: int) -> list[Row]:
        seq40 = self.cluster.register(playbooks.sequential(40, "seq40"))
        seq7 = self.cluster.register(playbooks.SEQ7)
        self._worker(WORKER_CONCURRENCY)
        self._run(seq40)
        self._run(seq7)
        r40 = Row("seq40", self.label, "per-step overhead", "ms",
                  target=DIRECT_SEQ40_MS if self.direct else SEQ40_MS["postgres"])
        r7 = Row("seq7", self.label, "request → execution_completed", "ms",
                 target=SEQ7_MS["postgres"])
        cpu = self._cpu_row("seq40")
        spent: dict[str, float] = {}
        for _ in range(reps):
            before = self.cluster.cpu()
            eid, _ = self._run(seq40)
            self._add(spent, before)  # (a run's 40 steps alone: 0.25 ms per tick)
            r40.values.append(self._span(eid) / 40 * 1000)
            eid, requested = self._run(seq7)
            end = _stamp(self._st(), eid, "execution_completed")
            assert end is not None
            r7.values.append((end - requested) * 1000)
        self._spent(cpu, spent, 40 * reps)  # the seq40 runs' CPU summed
        self.cluster.stop_workers()
        self.log(f"  seq40/seq7 ({self.label}): {r40.median:.2f} ms/step, {r7.median:.1f} ms; "
                 f"CPU {cpu.median:.2f} ms/step")
        return [r40, cpu, r7]

    def loop(self, reps: int, n: int = 1000) -> list[Row]:
        """The 1,000-item loop through the server, two workers."""
        path = self.cluster.register(playbooks.loop("dloop"))
        for _ in range(2):
            self._worker(WORKER_CONCURRENCY)
        self._run(path)  # warm-up (100 items)
        total = Row("loop", self.label, f"loop step total, {n} items, 2 workers", "s",
                    target=LOOP1000_S)
        spent: dict[str, float] = {}
        for _ in range(reps):
            requested = time.time()
            before = self.cluster.cpu()
            eid = self.cluster.start(path, {"n": n})
            _wait_terminal(self._st(), [eid], 600)
            self._add(spent, before)
            done = _stamp(self._st(), eid, "step_completed", "each")
            begun = _stamp(self._st(), eid, "step_started", "each")
            assert done is not None and begun is not None and done > requested
            total.values.append(done - begun)
        cpu = self._spent(self._cpu_row("loop"), spent, (n + 2) * reps)  # items, reduce, start
        self.cluster.stop_workers()
        self.log(f"  loop {n} ({self.label}) median {total.median:.2f} s; CPU {cpu.note}")
        return [total, cpu]

    def recovery(self, reps: int) -> list[Row]:
        row = Row("recovery", self.label, "worker SIGKILL → step started again", "s",
                  target=RECOVERY_S, note="lease expiry decides (NOETL_LEASE_SECONDS)")
        for i in range(reps):
            marker = self.tmp / f"recovery-{i}.pid"
            path = self.cluster.register(playbooks.crash_once(marker, f"crash_once{i}"))
            workers = [self._worker(1), self._worker(1)]
            eid = self.cluster.start(path)
            deadline = time.monotonic() + 60
            while not marker.exists():
                if time.monotonic() > deadline:
                    raise TimeoutError("no worker started the recovery step within 60 s")
                time.sleep(0.02)
            pid = int(marker.read_text())
            # the step runs in the worker process its supervisor (the pid we started) runs
            if not set(ancestors(pid)) & {w.pid for w in workers}:
                raise RuntimeError(f"step ran in pid {pid}, not under a worker we started")
            os.kill(pid, signal.SIGKILL)
            killed = time.time()
            _wait_terminal(self._st(), [eid], 120)
            again = _stamp(self._st(), eid, "action_started", "work", nth=2)
            if again is None:
                raise RuntimeError("the step completed without a second attempt")
            row.values.append(again - killed)
            self.cluster.stop_workers()
        self.log(f"  recovery median {row.median:.2f} s")
        return [row]
