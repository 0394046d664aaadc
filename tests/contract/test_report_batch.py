"""Several worker reports in one engine call (one transaction), on every store: each report gets
its own answer, in order; the steps the reports made ready are handed to the reporter; a report
that breaks the batch does not hold the others back."""

from __future__ import annotations

from typing import Any

import pytest

from noetl.dsl import parse_playbook
from noetl.engine.core import Engine
from noetl.engine.session import Session
from noetl.store import Store
from noetl.worker.runner import run_work
from tests.helpers import assert_one_terminal

CHAIN = parse_playbook("""
apiVersion: noetl.io/v1
kind: Playbook
metadata: {name: chain}
workload: {n: 1}
workflow:
  - step: start
    type: python
    args: {n: "{{ workload.n }}"}
    code: "def main(n):\\n    return n * 10"
    next: [{step: second}]
  - step: second
    type: python
    args: {x: "{{ start }}"}
    code: "def main(x):\\n    return x + 1"
""")


def _outcome(work: dict[str, Any], rid: str) -> dict[str, Any]:
    out = run_work(work)
    out["report_id"] = rid
    return out


def _lease_all(engine: Engine, worker: str, n: int) -> list[dict[str, Any]]:
    works = engine.lease(worker, n)
    assert len(works) == n, works
    return works


def test_batch_answers_each_report_and_hands_over_the_next_steps(store: Store) -> None:
    engine = Engine(store)
    eids = [engine.start(CHAIN, args={"n": n}).execution_id for n in (1, 2, 3, 4)]
    works = _lease_all(engine, "w1", 3)
    other = _lease_all(engine, "w2", 1)[0]  # the fourth start, leased by someone else
    by_eid = {int(w["execution_id"]): w for w in works}
    reports = [(int(w["job_id"]), _outcome(w, f"r{i}")) for i, w in enumerate(works)]
    reports.append(reports[0])  # sent twice (a retried request): recorded once
    reports.append((int(other["job_id"]), _outcome(other, "stolen")))
    reports.append((123456789, {"status": "ok", "data": 1}))
    results, nxt = engine.report_batch(reports, "w1", limit=3)

    assert [r["status"] for r in results] == ["ok", "ok", "ok", "duplicate", "lease_lost",
                                              "not_found"]
    assert "w2" in results[4]["error"] and "123456789" in results[5]["error"]
    # the three `second` steps went straight to w1, already leased, with their inputs
    assert sorted(int(w["execution_id"]) for w in nxt) == sorted(by_eid)
    assert {w["step"] for w in nxt} == {"second"} and all(w["attempt"] == 1 for w in nxt)
    results, more = engine.report_batch(
        [(int(w["job_id"]), _outcome(w, "s" + w["job_id"])) for w in nxt], "w1", limit=3)
    assert [r["status"] for r in results] == ["ok"] * 3 and more == []

    for eid in by_eid:
        desc = engine.describe(eid)
        n = {eids[0]: 1, eids[1]: 2, eids[2]: 3}[eid]
        assert desc["status"] == "COMPLETED" and desc["result"] == n * 10 + 1
        with store.read() as tx:
            events = tx.get_events(eid)
        assert_one_terminal(events)
        kinds = [(e.event_type, e.node_name) for e in events if e.event_type.startswith("action")]
        assert kinds == [("action_started", "start"), ("action_completed", "start"),
                         ("action_started", "second"), ("action_completed", "second")]
        assert {e.worker_id for e in events if e.event_type == "action_started"} == {"w1"}
    assert engine.describe(eids[3])["status"] == "RUNNING"  # w2's job is untouched


def test_a_report_that_breaks_the_batch_does_not_hold_back_the_others(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = Engine(store)
    for n in (1, 2, 3):
        engine.start(CHAIN, args={"n": n})
    works = _lease_all(engine, "w1", 3)
    poisoned = int(works[1]["execution_id"])
    real = Session.job_succeeded

    def flaky(self: Session, job: Any, outcome: dict[str, Any]) -> None:
        if self.eid == poisoned:
            raise RuntimeError("engine bug on this report")
        real(self, job, outcome)

    monkeypatch.setattr(Session, "job_succeeded", flaky)
    results, nxt = engine.report_batch(
        [(int(w["job_id"]), _outcome(w, f"r{i}")) for i, w in enumerate(works)], "w1", 3)
    # the others are recorded; the one the engine cannot process fails its step with the
    # reason (issue 13: never a report refused, and retried, for ever)
    assert [r["status"] for r in results] == ["ok", "ok", "ok"]
    assert len(nxt) == 2 and poisoned not in {int(w["execution_id"]) for w in nxt}
    monkeypatch.setattr(Session, "job_succeeded", real)
    desc = engine.describe(poisoned)
    assert desc["status"] == "FAILED"
    assert desc["steps"]["start"]["status"] == "FAILED"
    assert "engine bug on this report" in desc["steps"]["start"]["error"]["message"]
    # the worker's retry with the same report id changes nothing
    results, _ = engine.report_batch([(int(works[1]["job_id"]), _outcome(works[1], "r1"))],
                                     "w1", 0)
    assert results[0]["status"] in ("duplicate", "cancelled", "lease_lost")
    assert engine.describe(poisoned)["status"] == "FAILED"


def test_a_finished_loop_item_hands_the_next_waiting_item_to_its_worker(store: Store) -> None:
    """A sequential loop: each item's report queues the next waiting item and gives it to the
    reporting worker in the same transaction (no lease round), with its loop context."""
    pb = parse_playbook("""
apiVersion: noetl.io/v1
kind: Playbook
metadata: {name: seqloop}
workflow:
  - step: start
    type: iterator
    collection: [a, b, c]
    element: letter
    mode: sequential
    task:
      type: python
      args: {n: "{{ _loop.count }}", i: "{{ _loop.index }}"}
      code: "def main(letter, n, i):\\n    return f'{letter}{i}/{n}'"
""")
    engine = Engine(store)
    ex = engine.start(pb)
    work = engine.lease("w1", 5)
    assert [w["index"] for w in work] == [0]  # one at a time
    # another run's first step waits in the queue with a higher priority than loop items: a
    # plain lease after the report would take it; the hand-off gives the reporter the next item
    other = engine.start(CHAIN).execution_id
    seen = []
    for _ in range(3):
        (w,) = work
        assert int(w["execution_id"]) == ex.execution_id and w["step"] == "start"
        seen.append((w["index"], w["attempt"], w["ctx"]["extra"]["letter"]))
        status, work = engine.report_and_lease(int(w["job_id"]), "w1", run_work(w), 1)
        assert status == "ok"
    assert seen == [(0, 1, "a"), (1, 1, "b"), (2, 1, "c")]
    # the loop is over: now the reporter is free for the other run's step
    assert [int(w["execution_id"]) for w in work] == [other]
    desc = engine.describe(ex.execution_id)
    assert desc["status"] == "COMPLETED" and desc["result"] == ["a0/3", "b1/3", "c2/3"]
    with store.read() as tx:
        events = tx.get_events(ex.execution_id)
    assert_one_terminal(events)
    assert [e.worker_id for e in events if e.event_type == "action_started"] == ["w1"] * 3


KID = """
apiVersion: noetl.io/v1
kind: Playbook
metadata: {name: kid, path: tests/kid}
workflow:
  - step: start
    type: python
    args: {x: "{{ workload.x }}"}
    code: "def main(x):\\n    return x + 1"
"""

MOM = parse_playbook("""
apiVersion: noetl.io/v1
kind: Playbook
metadata: {name: mom}
workflow:
  - step: start
    next: [{step: child}, {step: own}]
  - step: child
    type: playbook
    path: tests/kid
    args: {x: 1}
    next: [{step: join}]
  - step: own
    type: python
    code: "def main():\\n    return 'mine'"
    next: [{step: join}]
  - step: join
    type: python
    args: {c: "{{ child }}", o: "{{ own }}"}
    code: "def main(c, o):\\n    return [c, o]"
""")


def test_a_batch_with_a_parent_and_its_child(store: Store) -> None:
    """One batch reports a parent's step and its child's last step: the child ends and
    reports to its parent inside the same transaction, and the parent's join runs once."""
    engine = Engine(store)
    engine.register(KID, "kid.yaml")
    ex = engine.start(MOM)
    works = engine.lease("w1", 5)
    assert sorted(w["step"] for w in works) == ["own", "start"]  # own, and the child's start
    child = next(w for w in works if w["step"] == "start")
    assert int(child["execution_id"]) != ex.execution_id
    reports = [(int(w["job_id"]), _outcome(w, w["job_id"])) for w in works]
    results, nxt = engine.report_batch(reports, "w1", limit=2)
    assert [r["status"] for r in results] == ["ok", "ok"]
    assert [w["step"] for w in nxt] == ["join"]  # handed over, once
    results, _ = engine.report_batch([(int(nxt[0]["job_id"]), _outcome(nxt[0], "j"))], "w1")
    desc = engine.describe(ex.execution_id)
    assert desc["status"] == "COMPLETED" and desc["result"] == [2, "mine"]
    with store.read() as tx:
        assert_one_terminal(tx.get_events(ex.execution_id))
        assert_one_terminal(tx.get_events(int(child["execution_id"])))


FORK = parse_playbook("""
apiVersion: noetl.io/v1
kind: Playbook
metadata: {name: fork}
workflow:
  - step: start
    next: [{step: a}, {step: b}]
  - step: a
    type: python
    code: "def main():\\n    return 1"
  - step: b
    type: python
    code: "def main():\\n    return 2"
""")


def test_a_batch_with_two_jobs_of_one_execution(store: Store) -> None:
    """The second report of an execution sees what the first one of the batch wrote (on
    PostgreSQL the batch reads every report's rows up front: the second reads them again)."""
    engine = Engine(store)
    ex = engine.start(FORK)
    works = engine.lease("w1", 5)
    assert sorted(w["step"] for w in works) == ["a", "b"]
    others = [engine.start(CHAIN, args={"n": n}).execution_id for n in (5, 6)]
    works += _lease_all(engine, "w1", 2)
    reports = [(int(w["job_id"]), _outcome(w, w["job_id"])) for w in works]
    results, _ = engine.report_batch(reports, "w1", limit=0)
    assert [r["status"] for r in results] == ["ok"] * 4
    desc = engine.describe(ex.execution_id)
    assert desc["status"] == "COMPLETED", desc
    assert {n: desc["steps"][n]["result"] for n in "ab"} == {"a": 1, "b": 2}
    for eid in others:  # their `start` recorded, `second` queued
        d = engine.describe(eid)
        assert d["status"] == "RUNNING"
        assert {n: s["status"] for n, s in d["steps"].items()} == \
            {"start": "COMPLETED", "second": "QUEUED"}
