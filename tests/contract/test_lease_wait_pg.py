"""An idle worker whose store says a job is due, but whose lease finds nothing (another
transaction holds the job's row, or its execution's row while the job is a poison job left
expired), backs off instead of leasing again at once: the pool of a direct worker (``noetl
worker start --store postgresql://...``) spun on such a job, thousands of empty leases a
second, until the other transaction ended. A notification still wakes it at once. Real
PostgreSQL, the rows held by a second connection."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from noetl.domain.records import now
from noetl.dsl import parse_playbook
from noetl.engine.core import Engine
from noetl.local import LocalBackend
from noetl.store import open_store
from noetl.store.postgres import PostgresStore
from noetl.worker.pool import WorkerPool
from tests.helpers import wait_until

pytestmark = pytest.mark.postgres

ONE = parse_playbook("apiVersion: noetl.io/v1\nkind: Playbook\nmetadata: {name: t, path: t}\n"
                     "workflow:\n  - step: start\n    type: python\n    code: |\n"
                     "      def main():\n          return 1\n")
HOLD = 0.5  # seconds the other connection holds the row (the window the leases are counted in)


class Counting(LocalBackend):
    """The direct worker's backend, recording when each lease was asked and what it found."""

    def __init__(self, engine: Engine):
        super().__init__(engine, "direct")
        self.leases: list[tuple[float, int]] = []  # (monotonic time, jobs leased)

    def lease(self, worker_id: str, limit: int = 1) -> list[dict[str, Any]]:
        works = super().lease(worker_id, limit)
        self.leases.append((time.monotonic(), len(works)))
        return works

    def empty(self) -> int:
        return sum(1 for _, n in self.leases if n == 0)


@pytest.fixture
def engine(fresh_pg_url: str) -> Iterator[Engine]:
    store = open_store(fresh_pg_url)
    try:
        yield Engine(store)
    finally:
        store.close()


def _poison(engine: Engine, eid: int) -> None:
    """Let the job's lease run out once more than the limit allows (not reaped yet): a lease
    that finds it while the execution's row is busy leaves it expired, unrun."""
    for i in range(engine.settings.max_lease_expiries + 1):
        assert len(engine.lease(f"lost-{i}", lease_seconds=0.001)) == 1
        until = now() + 0.001
        wait_until(lambda u=until: now() > u, timeout=5)
        if i < engine.settings.max_lease_expiries:
            assert engine.reap_expired() == 1


@pytest.mark.parametrize("held", ["job row", "execution row"])
def test_an_unleasable_due_job_does_not_make_an_idle_worker_spin(
        engine: Engine, fresh_pg_url: str, held: str) -> None:
    eid = engine.start(ONE).execution_id
    if held == "job row":  # a lease in another process, say, that has not committed yet
        lock = "SELECT 1 FROM noetl.queue WHERE execution_id = %s FOR UPDATE"
    else:  # a report of another of its jobs, say
        _poison(engine, eid)
        lock = "SELECT 1 FROM noetl.execution WHERE execution_id = %s FOR UPDATE"
    backend = Counting(engine)
    poll = PostgresStore.capabilities.poll_seconds
    pool = WorkerPool(backend, 1, worker_id="idle", poll_interval=poll)
    with psycopg.connect(fresh_pg_url) as holder:
        holder.execute(lock, (eid,))
        pool.start()
        try:
            wait_until(lambda: backend.leases, timeout=10, what="the first lease")
            time.sleep(HOLD)  # the window measured: the job is due and no lease can take it
            empty = backend.empty()
            holder.rollback()
            # the row is free: the job is leased within one back-off (no notification says so)
            wait_until(lambda: engine.is_terminal(eid), timeout=poll + 5,
                       what="the execution's end")
        finally:
            pool.stop()
    # a back-off from a few ms doubling up to the poll interval: about log2(HOLD / 5 ms) + 1
    assert empty <= 15, f"{empty} empty leases in {HOLD} s: the idle worker spun"
    assert engine.describe(eid)["status"] == ("COMPLETED" if held == "job row" else "FAILED")


def test_a_notification_wakes_a_worker_backing_off_at_once(engine: Engine,
                                                           fresh_pg_url: str) -> None:
    """The back-off only spaces out the re-checks: work another process makes ready (its
    NOTIFY) is leased at once, not after the back-off."""
    stuck = engine.start(ONE).execution_id
    backend = Counting(engine)
    pool = WorkerPool(backend, 1, worker_id="idle", poll_interval=60.0)
    other = open_store(fresh_pg_url)  # another process's store: its NOTIFY reaches ours
    try:
        with psycopg.connect(fresh_pg_url) as holder:
            holder.execute("SELECT 1 FROM noetl.queue WHERE execution_id = %s FOR UPDATE",
                           (stuck,))
            pool.start()
            # eight empty leases: the back-off has grown past a second (5 ms doubled 7 times)
            wait_until(lambda: backend.empty() >= 8, timeout=10, what="eight empty leases")
            t0 = time.monotonic()
            eid = Engine(other).start(ONE).execution_id
            wait_until(lambda: engine.is_terminal(eid), timeout=10, what="the new execution")
            leased = next(t for t, n in backend.leases if n)
            holder.rollback()
    finally:
        pool.stop()
        other.close()
    assert engine.describe(eid)["status"] == "COMPLETED"
    assert leased - t0 < 0.6, f"leased {leased - t0:.3f} s after the notification"
