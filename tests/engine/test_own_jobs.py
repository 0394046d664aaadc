"""An ``own_only`` runner (what ``noetl run`` uses) leases the jobs of its executions and of
their sub-playbook children, and never another execution's, even when that one's are ready or
its lease has run out first."""

from __future__ import annotations

import textwrap

from noetl.dsl import parse_playbook
from noetl.dsl.model import Playbook
from noetl.engine.core import Engine
from noetl.local import LocalRunner
from noetl.store import open_store
from tests.helpers import assert_one_terminal

FOREIGN = """
apiVersion: noetl.io/v1
kind: Playbook
metadata: {name: foreign}
workflow:
  - step: start
    next: [{step: work}]
  - step: work
    type: python
    code: |
      def main():
          return 1
"""

NESTED = """
apiVersion: noetl.io/v1
kind: Playbook
metadata: {name: nested_parent}
workflow:
  - step: start
    type: playbook
    args: {x: 20}
    content:
      apiVersion: noetl.io/v1
      kind: Playbook
      metadata: {name: nested_child}
      workload: {x: 0}
      workflow:
        - step: start
          type: playbook
          args: {y: "{{ workload.x }}"}
          content:
            apiVersion: noetl.io/v1
            kind: Playbook
            metadata: {name: nested_grandchild}
            workload: {y: 0}
            workflow:
              - step: start
                type: python
                args: {y: "{{ workload.y }}"}
                code: |
                  def main(y):
                      return int(y) + 1
    next: [{step: done}]
  - step: done
    type: python
    args: {v: "{{ start }}"}
    code: |
      def main(v):
          return v
"""


def _pb(text: str) -> Playbook:
    return parse_playbook(textwrap.dedent(text), "<test>")


def test_own_only_runner_runs_its_tree_and_leaves_another_execution_alone(
        sqlite_url: str) -> None:
    store = open_store(sqlite_url)
    try:
        # another execution whose job a worker now gone leased (the lease has run out), and
        # one whose job is ready
        other = Engine(store, lease_seconds=0.001)
        stale = other.start(_pb(FOREIGN))
        assert [w["execution_id"] for w in other.lease("gone", 5)] == [str(stale.execution_id)]
        ready = other.start(_pb(FOREIGN))
        with LocalRunner(store, concurrency=2, own_only=True) as runner:
            desc = runner.run(_pb(NESTED), timeout=60)
            with store.read() as tx:
                events = tx.get_events(int(desc["execution_id"]), 0, 100000)
                kids = tx.children(int(desc["execution_id"]))
        assert desc["status"] == "COMPLETED", desc["error"]
        assert desc["result"] == 21  # the grandchild's jobs ran too
        assert_one_terminal(events)
        assert len(kids) == 1 and kids[0].status == "COMPLETED"
        with store.read() as tx:
            for ex in (ready, stale):
                row = tx.get_execution(ex.execution_id)
                assert row is not None and row.status == "RUNNING"
                jobs = tx.list_jobs(execution_id=ex.execution_id)
                assert all(j.worker_id in (None, "gone") for j in jobs), jobs
                assert all(j.attempts <= 1 for j in jobs)
    finally:
        store.close()
