"""Re-run and resume on real stores (SQLite and PostgreSQL): what is reused is not executed
again (its side effects, rows in a table, happen once), what failed or was cancelled runs
again from where it stopped, and the new execution's log records what it reused."""

from __future__ import annotations

import sqlite3
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from noetl.dsl import parse_playbook
from noetl.engine.resume import inputs_of, rerun, resume
from noetl.errors import Conflict, NotFound
from noetl.local import LocalRunner
from tests.helpers import wait_until

# Each step appends (step, n) to a sqlite table, so the test can count what ran.
NINE = "\n".join(["apiVersion: noetl.io/v1", "kind: Playbook",
                  "metadata: {name: nine, path: tests/resume/nine}",
                  "workload: {sink: none, fail_at: 7}", "workflow:"] + [f"""
  - step: {'start' if i == 1 else f's{i}'}
    type: python
    args: {{n: {i}, sink: "{{{{ workload.sink }}}}", fail_at: "{{{{ workload.fail_at }}}}"}}
    code: |
      import sqlite3
      def main(n, sink, fail_at):
          print(f"step {{n}} runs")
          if n == fail_at:
              raise RuntimeError(f"step {{n}} fails (fail_at={{fail_at}})")
          with sqlite3.connect(sink) as c:
              c.execute("CREATE TABLE IF NOT EXISTS ran (step TEXT, n INTEGER)")
              c.execute("INSERT INTO ran VALUES (?, ?)", ("s", n))
          return {{"n": n}}""" + (f"\n    next: [{{step: s{i + 1}}}]" if i < 9 else "")
                                                       for i in range(1, 10)])


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'noetl.db'}"
    else:
        yield request.getfixturevalue("pg_url")


def ran(sink: Path, kind: str = "s") -> list[int]:
    if not sink.exists():
        return []
    with sqlite3.connect(sink) as c:
        return sorted(r[0] for r in c.execute("SELECT n FROM ran WHERE step = ?", (kind,)))


def events_of(runner: LocalRunner, eid: int) -> list[Any]:
    with runner.store.read() as tx:
        return tx.get_events(eid, 0, 100000)


def test_resume_of_nine_steps_failed_at_seven_runs_only_seven_to_nine(
        store_url: str, tmp_path: Path) -> None:
    sink = tmp_path / "side_effects.db"
    pb = parse_playbook(NINE, "nine.yaml")
    with LocalRunner(store_url) as runner:
        first = runner.run(pb, args={"sink": str(sink)}, timeout=60)
        assert first["status"] == "FAILED" and first["error"]["step"] == "s7"
        assert ran(sink) == [1, 2, 3, 4, 5, 6]
        old = int(first["execution_id"])
        ex = resume(runner.engine, old, {"fail_at": 0})  # the fix: an override
        desc = runner.wait(ex.execution_id, 60)
        assert desc["status"] == "COMPLETED", desc["error"]
        assert desc["result"] == {"n": 9}
        assert ran(sink) == [1, 2, 3, 4, 5, 6, 7, 8, 9]  # 1-6 once: not executed again
        evs = events_of(runner, ex.execution_id)
        with runner.store.read() as tx:
            logs = tx.get_logs(ex.execution_id)
            lineage = tx.get_lineage(ex.execution_id)
            derived = tx.derived_executions(old)
            steps = tx.get_steps(ex.execution_id)
    ran_steps = [e.node_name for e in evs if e.event_type == "action_started"]
    assert ran_steps == ["s7", "s8", "s9"]
    reused = [(e.node_name, e.result) for e in evs if e.event_type == "step_reused"]
    assert reused == [("start", {"n": 1})] + [(f"s{i}", {"n": i}) for i in range(2, 7)]
    started = evs[0]
    assert started.event_type == "execution_started"
    assert started.context["resumed_from"] == str(old)
    assert started.context["overrides"] == {"fail_at": 0}
    assert started.context["workload"]["sink"] == str(sink)
    assert [r["message"] for r in logs] == ["step 7 runs", "step 8 runs", "step 9 runs"]
    assert {n: str(r.status) for n, r in steps.items()} == {
        n: "COMPLETED" for n in ["start"] + [f"s{i}" for i in range(2, 10)]}
    assert lineage is not None and lineage["kind"] == "resume"
    assert lineage["source_execution_id"] == str(old)
    assert lineage["reused"] == ["start", "s2", "s3", "s4", "s5", "s6"]
    assert [(d["execution_id"], d["kind"], d["status"]) for d in derived] == [
        (str(ex.execution_id), "resume", "COMPLETED")]


LOOP = """
apiVersion: noetl.io/v1
kind: Playbook
metadata: {name: loop_resume}
workload: {sink: none, bad: 3}
workflow:
  - step: start
    next: [{step: each}]
  - step: each
    type: iterator
    collection: [0, 1, 2, 3, 4]
    element: x
    mode: sequential
    task:
      type: python
      args: {x: "{{ x }}", sink: "{{ workload.sink }}", bad: "{{ workload.bad }}"}
      code: |
        import sqlite3
        def main(x, sink, bad):
            if x == bad:
                raise ValueError(f"item {x} is bad")
            with sqlite3.connect(sink) as c:
                c.execute("CREATE TABLE IF NOT EXISTS ran (step TEXT, n INTEGER)")
                c.execute("INSERT INTO ran VALUES ('item', ?)", (x,))
            return x * x
    next: [{step: after}]
  - step: after
    type: python
    args: {squares: "{{ each }}"}
    code: |
      def main(squares):
          return sum(squares)
"""


def test_resume_reruns_only_the_loop_items_that_did_not_complete(
        store_url: str, tmp_path: Path) -> None:
    sink = tmp_path / "items.db"
    pb = parse_playbook(textwrap.dedent(LOOP), "loop.yaml")
    with LocalRunner(store_url) as runner:
        first = runner.run(pb, args={"sink": str(sink)}, timeout=60)
        assert first["status"] == "FAILED" and first["error"]["index"] == 3
        assert ran(sink, "item") == [0, 1, 2]
        ex = resume(runner.engine, int(first["execution_id"]), {"bad": -1})
        desc = runner.wait(ex.execution_id, 60)
        evs = events_of(runner, ex.execution_id)
    assert desc["status"] == "COMPLETED", desc["error"]
    assert desc["steps"]["each"]["result"] == [0, 1, 4, 9, 16]
    assert desc["result"] == 30
    assert ran(sink, "item") == [0, 1, 2, 3, 4]  # 0-2 once
    items = [e.current_index for e in evs if e.event_type == "action_started"
             and e.node_name == "each"]
    assert items == [3, 4]
    started = [e for e in evs if e.event_type == "step_started" and e.node_name == "each"]
    assert started[0].context["reused_items"] == 3


JOIN = """
apiVersion: noetl.io/v1
kind: Playbook
metadata: {name: join_resume}
workload: {sink: none, gate: none, fail_b: true}
workflow:
  - step: start
    next: [{step: a}, {step: b}]
  - step: a
    type: python
    args: {sink: "{{ workload.sink }}"}
    code: |
      import sqlite3
      def main(sink):
          with sqlite3.connect(sink) as c:
              c.execute("CREATE TABLE IF NOT EXISTS ran (step TEXT, n INTEGER)")
              c.execute("INSERT INTO ran VALUES ('a', 1)")
          return "a done"
    next: [{step: j, args: {from_a: "{{ a }}"}}]
  - step: b
    type: python
    args: {gate: "{{ workload.gate }}", fail_b: "{{ workload.fail_b }}"}
    code: |
      import os, time
      def main(gate, fail_b):
          deadline = time.time() + 60
          while not os.path.exists(gate):
              if time.time() > deadline:
                  raise TimeoutError("gate never opened")
              time.sleep(0.02)
          if fail_b:
              raise RuntimeError("b fails")
          return "b done"
    next: [{step: j, args: {from_b: "{{ b }}"}}]
  - step: j
    type: python
    code: |
      def main(from_a, from_b):
          return [from_a, from_b]
"""


def _wait_step(runner: LocalRunner, eid: int, step: str, status: str) -> None:
    wait_until(lambda: runner.engine.describe(eid)["steps"][step]["status"] == status, 30,
               f"step {step} {status}")


def test_resume_keeps_a_joins_arrivals_and_reruns_the_failed_branch(
        store_url: str, tmp_path: Path) -> None:
    sink, gate = tmp_path / "join.db", tmp_path / "gate"
    pb = parse_playbook(textwrap.dedent(JOIN), "join.yaml")
    with LocalRunner(store_url) as runner:
        ex0 = runner.engine.start(pb, args={"sink": str(sink), "gate": str(gate)})
        _wait_step(runner, ex0.execution_id, "a", "COMPLETED")  # a arrived at the join
        gate.write_text("open")
        first = runner.wait(ex0.execution_id, 60)
        assert first["status"] == "FAILED" and first["error"]["step"] == "b"
        ex = resume(runner.engine, ex0.execution_id, {"fail_b": False})
        desc = runner.wait(ex.execution_id, 60)
        evs = events_of(runner, ex.execution_id)
    assert desc["status"] == "COMPLETED", desc["error"]
    assert desc["result"] == ["a done", "b done"]
    assert ran(sink, "a") == [1]
    assert [e.node_name for e in evs if e.event_type == "action_started"] == ["b", "j"]


def test_resume_of_a_cancelled_execution_reruns_what_was_in_flight(
        store_url: str, tmp_path: Path) -> None:
    sink, gate = tmp_path / "c.db", tmp_path / "gate"
    pb = parse_playbook(textwrap.dedent(JOIN), "join.yaml")
    with LocalRunner(store_url) as runner:
        ex0 = runner.engine.start(pb, args={"sink": str(sink), "gate": str(gate),
                                            "fail_b": False})
        _wait_step(runner, ex0.execution_id, "a", "COMPLETED")
        runner.engine.cancel(ex0.execution_id)  # b is waiting at its gate
        first = runner.wait(ex0.execution_id, 30)
        assert first["status"] == "CANCELLED"
        assert first["steps"]["b"]["status"] == "CANCELLED"
        gate.write_text("open")
        ex = resume(runner.engine, ex0.execution_id)
        desc = runner.wait(ex.execution_id, 60)
    assert desc["status"] == "COMPLETED", desc["error"]
    assert desc["result"] == ["a done", "b done"]
    assert ran(sink, "a") == [1]


def test_rerun_uses_the_same_version_and_inputs_with_overrides(store_url: str,
                                                               tmp_path: Path) -> None:
    sink = tmp_path / "rerun.db"
    with LocalRunner(store_url) as runner:
        v1 = runner.engine.register(NINE, "nine.yaml")
        runner.engine.register(NINE.replace("fail_at: 7", "fail_at: 2"), "nine.yaml")  # v2
        first = runner.run(path="tests/resume/nine", version=v1.version,
                           args={"sink": str(sink), "fail_at": 5}, timeout=60)
        assert first["status"] == "FAILED" and first["error"]["step"] == "s5"
        old = int(first["execution_id"])
        same = rerun(runner.engine, old)
        again = runner.wait(same.execution_id, 60)
        fixed = rerun(runner.engine, old, {"fail_at": 0})
        done = runner.wait(fixed.execution_id, 60)
        with runner.store.read() as tx:
            inputs = inputs_of(tx, tx.get_execution(fixed.execution_id))
            derived = tx.derived_executions(old)
    assert same.version == fixed.version == str(v1.version)
    assert same.catalog_id == fixed.catalog_id == v1.catalog_id
    assert again["status"] == "FAILED" and again["error"]["step"] == "s5"  # same inputs
    assert done["status"] == "COMPLETED"
    assert ran(sink) == [1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4, 5, 6, 7, 8, 9]  # nothing reused
    assert inputs["args"] == {"sink": str(sink), "fail_at": 0}
    assert inputs["rerun_of"] == str(old) and inputs["overrides"] == {"fail_at": 0}
    assert [(d["kind"], d["status"]) for d in derived] == [("rerun", "FAILED"),
                                                          ("rerun", "COMPLETED")]


def test_resume_refuses_what_cannot_be_resumed(store_url: str, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    pb = parse_playbook(textwrap.dedent(JOIN), "join.yaml")
    with LocalRunner(store_url) as runner:
        ex0 = runner.engine.start(pb, args={"sink": str(tmp_path / "x.db"), "gate": str(gate),
                                            "fail_b": False})
        with pytest.raises(Conflict, match="still RUNNING"):
            resume(runner.engine, ex0.execution_id)
        gate.write_text("open")
        assert runner.wait(ex0.execution_id, 60)["status"] == "COMPLETED"
        with pytest.raises(Conflict, match="completed: there is nothing to resume"):
            resume(runner.engine, ex0.execution_id)
        with pytest.raises(NotFound):
            resume(runner.engine, 12345)
        with pytest.raises(NotFound):
            rerun(runner.engine, 12345)
