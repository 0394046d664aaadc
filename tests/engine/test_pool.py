"""The worker pool: reports from its threads are combined into batches, one idle thread at a
time asks for work, and a pool that is stopping keeps the leases of the jobs it still runs."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from noetl.dsl import parse_playbook
from noetl.engine.core import Engine
from noetl.errors import LeaseLost
from noetl.local import LocalBackend, LocalRunner
from noetl.store import open_store
from noetl.worker.combine import ReportCombiner
from noetl.worker.pool import WorkerPool
from tests.helpers import assert_one_terminal

LOOP = parse_playbook("""
apiVersion: noetl.io/v1
kind: Playbook
metadata: {name: loop}
workflow:
  - step: start
    type: python
    code: "def main():\\n    return list(range(300))"
    next: [{step: each}]
  - step: each
    type: iterator
    collection: "{{ start }}"
    element: x
    mode: async
    concurrency: 32
    task:
      type: python
      code: "def main(x):\\n    return x * 2"
    next: [{step: end}]
  - step: end
    type: python
    args: {r: "{{ each }}"}
    code: "def main(r):\\n    return {'n': len(r), 'sum': sum(r)}"
""")

SLOW = parse_playbook("""
apiVersion: noetl.io/v1
kind: Playbook
metadata: {name: slow}
workflow:
  - step: start
    type: python
    code: |
      def main():
          import time
          time.sleep(1.2)
          return {"slept": True}
""")


def test_reports_of_busy_threads_travel_together(sqlite_url: str) -> None:
    with LocalRunner(sqlite_url, concurrency=8) as runner:
        desc = runner.run(LOOP, timeout=60)
        combiner = runner.pool.combiner
        assert combiner is not None
        assert desc["status"] == "COMPLETED"
        assert desc["result"] == {"n": 300, "sum": 2 * sum(range(300))}
        assert combiner.reports == 302  # start, 300 items, end: each reported once
        assert combiner.batches < combiner.reports  # some batches carried several reports
        with runner.store.read() as tx:
            events = tx.get_events(desc["execution_id"], 0, 100000)
    assert_one_terminal(events)
    done = [e.current_index for e in events if e.event_type == "action_completed"
            and e.node_name == "each"]
    assert sorted(done) == list(range(300))


def test_combiner_deals_answers_jobs_and_errors_to_the_right_threads() -> None:
    calls: list[list[int]] = []
    gate = threading.Event()

    def send(reports: list[tuple[int, dict[str, Any]]], want: int
             ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        ids = [j for j, _ in reports]
        calls.append(ids)
        if len(calls) == 1:
            gate.wait(5)  # the first batch is on its way while the others gather
        answers = [{"status": "lease_lost", "error": f"job {j} lost"} if j == 3 else
                   {"status": "error", "error": "try again"} if j == 4 else {"status": "ok"}
                   for j in ids]
        return answers, [{"job_id": str(100 + j)} for j in ids if j not in (3, 4)][:want]

    comb = ReportCombiner(send)
    out: dict[int, Any] = {}

    def submit(j: int) -> None:
        try:
            out[j] = comb.submit(j, {"status": "ok"})
        except Exception as exc:
            out[j] = exc

    first = threading.Thread(target=submit, args=(1,))
    first.start()
    while not calls:
        time.sleep(0.001)
    rest = [threading.Thread(target=submit, args=(j,)) for j in (2, 3, 4, 5)]
    for t in rest:
        t.start()
    deadline = time.monotonic() + 5
    while len(comb._pending) < 4 and time.monotonic() < deadline:
        time.sleep(0.001)
    gate.set()
    for t in [first, *rest]:
        t.join(5)
    assert calls[0] == [1] and sorted(calls[1]) == [2, 3, 4, 5] and len(calls) == 2
    assert out[1] == ("ok", [{"job_id": "101"}])
    assert out[2][0] == "ok" and out[5][0] == "ok"
    assert isinstance(out[3], LeaseLost) and "job 3 lost" in str(out[3])
    assert isinstance(out[4], RuntimeError) and "try again" in str(out[4])
    # the two jobs leased with the second batch go to its first answered threads, in order:
    # a thread whose report was refused is free, so it runs one too (and 5 gets none)
    assert out[2][1] == [{"job_id": "102"}] and out[3].jobs == [{"job_id": "105"}]
    assert out[5][1] == []
    assert comb.batches == 2 and comb.reports == 5


def test_a_transport_error_reaches_every_thread_of_the_batch() -> None:
    def send(reports: list[tuple[int, dict[str, Any]]], want: int) -> Any:
        raise ConnectionError("server unreachable")

    comb = ReportCombiner(send)
    with pytest.raises(ConnectionError):
        comb.submit(1, {"status": "ok"})
    assert comb.batches == 0  # nothing was recorded as sent


def test_a_stopping_pool_keeps_the_lease_of_the_job_it_finishes(sqlite_url: str) -> None:
    """Regression: heartbeats stopped with the pool, so a job that ran on past the lease while
    its pool shut down gracefully was re-leased to another worker and run twice."""
    store = open_store(sqlite_url)
    engine = Engine(store, lease_seconds=0.4)
    leaving = WorkerPool(LocalBackend(engine), 1, worker_id="leaving").start()
    ex = engine.start(SLOW)
    deadline = time.monotonic() + 10
    while not leaving._running:
        assert time.monotonic() < deadline, "the slow step never started"
        time.sleep(0.01)
    staying = WorkerPool(LocalBackend(engine), 1, worker_id="staying").start()
    try:
        leaving.stop(timeout=10)  # returns once the running job has finished and reported
        desc = engine.describe(ex.execution_id)
        with store.read() as tx:
            events = tx.get_events(ex.execution_id)
    finally:
        staying.stop()
        store.close()
    assert desc["status"] == "COMPLETED" and desc["steps"]["start"]["attempts"] == 1
    assert [e.worker_id for e in events if e.event_type == "action_started"] == ["leaving"]
    assert not any(e.event_type == "action_retry" for e in events)


ONE = parse_playbook("""
apiVersion: noetl.io/v1
kind: Playbook
metadata: {name: one}
workflow:
  - step: start
    type: python
    code: "def main():\\n    return 1"
""")


def _until(cond: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.005)


def test_jobs_leased_for_idle_threads_are_given_back_when_the_pool_stops(sqlite_url: str
                                                                         ) -> None:
    """The stop lands while one thread's lease (for itself and two idle threads) is on its
    way, and the idle threads have already gone: what it brings back for them is released."""
    store = open_store(sqlite_url)
    engine = Engine(store)
    holder: list[WorkerPool] = []
    asked: list[int] = []

    class StopDuringLease(LocalBackend):
        def lease(self, worker_id: str, limit: int = 1) -> list[dict[str, Any]]:
            works = super().lease(worker_id, limit)
            if works:
                asked.append(limit)
                pool = holder[0]
                pool._stop.set()  # what stop() does first ...
                with pool._cv:
                    pool._cv.notify_all()
                _until(lambda: pool._waiting == 0)  # ... and the idle threads have left
            return works

    pool = WorkerPool(StopDuringLease(engine), 3, worker_id="w", poll_interval=5)
    holder.append(pool)
    try:
        pool.start()
        _until(lambda: pool._waiting == 2)  # one thread polls, two wait for what it brings
        eids = [engine.start(ONE).execution_id for _ in range(3)]
        _until(lambda: pool._stop.is_set())
        pool.stop(timeout=10)
        assert asked == [3]
        with store.read() as tx:
            jobs = tx.list_jobs()
        assert len(jobs) == 3
        assert all(j.status == "queued" and j.worker_id is None and j.attempts == 0
                   for j in jobs), [(j.status, j.worker_id, j.attempts) for j in jobs]
        assert all(engine.describe(e)["status"] == "RUNNING" for e in eids)
        assert not pool._running and not pool._inbox
    finally:
        store.close()


def test_a_lease_never_asks_for_more_than_the_api_allows(sqlite_url: str) -> None:
    store = open_store(sqlite_url)
    engine = Engine(store)
    asked: list[int] = []

    class Recording(LocalBackend):
        def lease(self, worker_id: str, limit: int = 1) -> list[dict[str, Any]]:
            asked.append(limit)
            return super().lease(worker_id, limit)

    pool = WorkerPool(Recording(engine), 150, worker_id="big", poll_interval=0.2).start()
    try:
        _until(lambda: pool._waiting >= 120 and len(asked) >= 3)
        ex = engine.start(ONE)
        _until(lambda: engine.is_terminal(ex.execution_id))
        assert engine.describe(ex.execution_id)["status"] == "COMPLETED"
    finally:
        pool.stop()
        store.close()
    assert max(asked) == 100  # 149 threads idle, one lease for 100 of them


@pytest.mark.postgres
def test_a_report_still_unanswered_when_the_pool_stops_is_counted_unrecorded(
        fresh_pg_url: str) -> None:
    """Another transaction holds the execution's row, so the job's report waits past the
    pool's stop timeout: stop() counts it unrecorded (the worker's exit code says so, 3) and
    logs it; once the row is free the report goes through."""
    import psycopg

    engine = Engine(open_store(fresh_pg_url))
    try:
        ex = engine.start(parse_playbook(
            "apiVersion: noetl.io/v1\nkind: Playbook\nmetadata: {name: one}\nworkflow:\n"
            "  - step: start\n    type: python\n    code: \"def main():\\n    return 7\"\n"))
        with psycopg.connect(fresh_pg_url) as holder:
            holder.execute("SELECT 1 FROM noetl.execution WHERE execution_id = %s FOR UPDATE",
                           (ex.execution_id,))
            pool = WorkerPool(LocalBackend(engine), 1, worker_id="held").start()
            deadline = time.monotonic() + 10
            while pool.jobs_done == 0 and not pool._unreported:
                assert time.monotonic() < deadline, "the job never ran"
                time.sleep(0.01)
            pool.stop(timeout=0.5)
            assert pool.unrecorded == 1
            holder.rollback()  # the row is free: the report waiting for it is recorded
        deadline = time.monotonic() + 10
        while engine.describe(ex.execution_id)["status"] != "COMPLETED":
            assert time.monotonic() < deadline, "the report never went through"
            time.sleep(0.02)
    finally:
        engine.store.close()
