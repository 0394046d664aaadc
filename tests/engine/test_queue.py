"""Queue mechanics through the engine: leases expire and are re-leased as a new attempt,
heartbeats keep a lease, release gives a job back, stale reports are refused."""

from __future__ import annotations

import time

import pytest

from noetl.dsl import parse_playbook
from noetl.engine.core import Engine
from noetl.errors import LeaseLost
from noetl.store import open_store
from noetl.worker.runner import run_work
from tests.helpers import assert_one_terminal

PB = parse_playbook("""
apiVersion: noetl.io/v1
kind: Playbook
metadata: {name: q}
workflow:
  - step: start
    type: python
    code: |
      def main():
          return {"ok": 1}
""")


def _wait_lease(engine: Engine, worker: str, timeout: float = 5.0) -> list[dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        works = engine.lease(worker)
        if works:
            return works
        time.sleep(0.02)
    raise AssertionError("nothing leased")


def test_expired_lease_is_released_to_another_worker(sqlite_url: str) -> None:
    engine = Engine(open_store(sqlite_url), lease_seconds=0.2)
    ex = engine.start(PB)
    first = engine.lease("w1")
    assert len(first) == 1 and first[0]["attempt"] == 1
    assert engine.lease("w2") == []  # held by w1
    second = _wait_lease(engine, "w2")  # w1 "died": the lease expires
    assert second[0]["job_id"] == first[0]["job_id"] and second[0]["attempt"] == 2
    # w1 wakes up late: its report is refused, w2's counts
    with pytest.raises(LeaseLost):
        engine.report(int(first[0]["job_id"]), "w1", run_work(first[0]))
    assert engine.report(int(second[0]["job_id"]), "w2", run_work(second[0])) == "ok"
    desc = engine.describe(ex.execution_id)
    assert desc["status"] == "COMPLETED"
    assert desc["steps"]["start"]["attempts"] == 2
    with engine.store.read() as tx:
        events = tx.get_events(ex.execution_id)
    assert_one_terminal(events)
    retry = [e for e in events if e.event_type == "action_retry"]
    assert len(retry) == 1 and retry[0].context["reason"] == "lease_expired"
    started = [(e.attempt, e.worker_id) for e in events if e.event_type == "action_started"]
    assert started == [(1, "w1"), (2, "w2")]


def test_heartbeat_keeps_the_lease(sqlite_url: str) -> None:
    engine = Engine(open_store(sqlite_url), lease_seconds=0.3)
    engine.start(PB)
    work = engine.lease("w1")[0]
    for _ in range(4):
        time.sleep(0.15)
        assert engine.heartbeat(int(work["job_id"]), "w1")["cancelled"] is False
        assert engine.lease("w2") == []
    with pytest.raises(LeaseLost):
        engine.heartbeat(int(work["job_id"]), "w2")


def test_release_gives_the_job_back_without_counting_an_attempt(sqlite_url: str) -> None:
    engine = Engine(open_store(sqlite_url))
    ex = engine.start(PB)
    work = engine.lease("w1")[0]
    engine.release(int(work["job_id"]), "w1")
    again = engine.lease("w2")[0]
    assert again["attempt"] == 1
    engine.report(int(again["job_id"]), "w2", run_work(again))
    assert engine.describe(ex.execution_id)["status"] == "COMPLETED"


def test_duplicate_report_is_acknowledged_once(sqlite_url: str) -> None:
    engine = Engine(open_store(sqlite_url))
    ex = engine.start(PB)
    work = engine.lease("w1")[0]
    outcome = {**run_work(work), "report_id": "r-1"}
    assert engine.report(int(work["job_id"]), "w1", outcome) == "ok"
    assert engine.report(int(work["job_id"]), "w1", outcome) == "duplicate"
    with engine.store.read() as tx:
        events = tx.get_events(ex.execution_id)
    assert [e.event_type for e in events].count("action_completed") == 1
    assert_one_terminal(events)


def test_actionable_start_has_top_priority_and_one_attempt(sqlite_url: str) -> None:
    engine = Engine(open_store(sqlite_url))
    engine.start(PB)  # actionable start: priority 100
    with engine.store.read() as tx:
        jobs = tx.list_jobs()
    assert jobs[0].priority == 100 and jobs[0].max_attempts == 1


def test_outcome_of_a_job_running_when_cancelled_is_still_recorded(sqlite_url: str) -> None:
    engine = Engine(open_store(sqlite_url))
    ex = engine.start(PB)
    work = engine.lease("w1")[0]
    engine.cancel(ex.execution_id)
    outcome = {"status": "error", "error": {"message": "interrupted", "type": "RuntimeError",
                                            "traceback": "tb"}, "report_id": "x"}
    assert engine.report(int(work["job_id"]), "w1", outcome) == "cancelled"
    with engine.store.read() as tx:
        events = tx.get_events(ex.execution_id)
    assert_one_terminal(events)
    late = [e for e in events if e.event_type == "action_failed"]
    assert len(late) == 1 and late[0].error == "interrupted" and late[0].meta["late"] is True
    assert events[-1].event_type == "action_failed"
    assert engine.describe(ex.execution_id)["status"] == "CANCELLED"


def test_report_hands_the_next_step_to_the_reporting_worker(sqlite_url: str) -> None:
    pb = parse_playbook("""
apiVersion: noetl.io/v1
kind: Playbook
metadata: {name: chain}
workflow:
  - step: start
    type: python
    code: "def main():\\n    return 1"
    next: [{step: second}]
  - step: second
    type: python
    args: {x: "{{ start }}"}
    code: "def main(x):\\n    return x + 1"
""")
    engine = Engine(open_store(sqlite_url))
    ex = engine.start(pb)
    first = engine.lease("w1")[0]
    status, works = engine.report_and_lease(int(first["job_id"]), "w1", run_work(first), 1)
    assert status == "ok" and len(works) == 1
    nxt = works[0]
    assert nxt["step"] == "second" and nxt["attempt"] == 1
    assert nxt["ctx"]["results"] == {"start": 1}  # the results it references travel with it
    assert engine.lease("w2") == []  # it is already leased to w1, nothing else is ready
    with engine.store.read() as tx:
        job = tx.get_job(int(nxt["job_id"]))
        assert job.status == "leased" and job.worker_id == "w1"
        assert tx.get_steps(ex.execution_id, ["second"])["second"].status == "RUNNING"
    status, works = engine.report_and_lease(int(nxt["job_id"]), "w1", run_work(nxt), 1)
    assert works == []
    desc = engine.describe(ex.execution_id)
    assert desc["status"] == "COMPLETED" and desc["result"] == 2
    with engine.store.read() as tx:
        events = tx.get_events(ex.execution_id)
    second = [e.event_type for e in events if e.node_name == "second"]
    assert second == ["step_started", "action_started", "action_completed", "step_result",
                      "step_completed"]
    assert_one_terminal(events)

