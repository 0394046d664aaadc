"""Iterator loops (each item a job, results in order) and sub-playbooks (parent waits)."""

from __future__ import annotations

import textwrap

from noetl.dsl import parse_playbook
from noetl.local import LocalRunner
from tests.helpers import assert_one_terminal, run_yaml, types_for

LOOP = """
apiVersion: noetl.io/v1
kind: Playbook
metadata: {name: loop}
workload: {n: 1000}
workflow:
  - step: start
    next: [{step: make}]
  - step: make
    type: python
    args: {n: "{{ workload.n }}"}
    code: |
      def main(n):
          return list(range(n))
    next: [{step: each}]
  - step: each
    type: iterator
    collection: "{{ make }}"
    element: x
    mode: MODE
    concurrency: 8
    task:
      type: python
      code: |
        def main(x):
            return x * 2
    next: [{step: total}]
  - step: total
    type: python
    args: {vals: "{{ each }}"}
    code: |
      def main(vals):
          return {"count": len(vals), "sum": sum(vals), "first": vals[:3]}
"""


def test_async_loop_of_1000_keeps_order_and_waits_for_all(sqlite_url: str) -> None:
    desc, events = run_yaml(LOOP.replace("MODE", "async"), sqlite_url, concurrency=4)
    assert desc["status"] == "COMPLETED", desc["error"]
    assert desc["steps"]["each"]["result"] == [2 * i for i in range(1000)]
    assert desc["result"] == {"count": 1000, "sum": 999000, "first": [0, 2, 4]}
    items = [e for e in events if e.event_type == "action_completed" and e.node_name == "each"]
    assert sorted(e.current_index for e in items) == list(range(1000))
    # the step after the loop started only after the last item finished
    last_item = max(e.seq for e in items)
    total_start = next(e.seq for e in events
                       if e.event_type == "step_started" and e.node_name == "total")
    assert total_start > last_item


def test_sequential_loop_runs_one_item_at_a_time(sqlite_url: str) -> None:
    desc, events = run_yaml(LOOP.replace("MODE", "sequential").replace("n: 1000", "n: 20"),
                            sqlite_url, concurrency=4)
    assert desc["status"] == "COMPLETED"
    seq = [(e.event_type, e.current_index) for e in events
           if e.node_name == "each" and e.event_type in ("action_started", "action_completed")]
    assert seq == [(t, i) for i in range(20) for t in ("action_started", "action_completed")]


def test_empty_collection_yields_empty_list(sqlite_url: str) -> None:
    desc, _ = run_yaml(LOOP.replace("MODE", "async"), sqlite_url, args={"n": 0})
    assert desc["status"] == "COMPLETED"
    assert desc["steps"]["each"]["result"] == []
    assert desc["result"]["count"] == 0


def test_failed_item_fails_the_loop(sqlite_url: str) -> None:
    desc, events = run_yaml("""
        apiVersion: noetl.io/v1
        kind: Playbook
        metadata: {name: badloop}
        workflow:
          - step: start
            type: iterator
            collection: [1, 2, 0, 4]
            element: d
            task:
              type: python
              code: |
                def main(d):
                    return 10 / d
            next: [{step: after}]
          - step: after
            type: python
            code: "def main():\\n    return 1"
    """, sqlite_url)
    assert desc["status"] == "FAILED"
    assert desc["error"]["type"] == "ZeroDivisionError"
    assert desc["error"]["index"] == 2
    assert types_for(events, "after") == []


def test_loop_with_where_order_limit(sqlite_url: str) -> None:
    desc, _ = run_yaml("""
        apiVersion: noetl.io/v1
        kind: Playbook
        metadata: {name: filt}
        workload:
          users: [{name: a, age: 30}, {name: b, age: 15}, {name: c, age: 40}, {name: d, age: 22}]
        workflow:
          - step: start
            type: iterator
            collection: "{{ workload.users }}"
            element: u
            where: "{{ u.age >= 18 }}"
            order_by: "{{ -u.age }}"
            limit: 2
            task:
              type: python
              args: {who: "{{ u.name }}", i: "{{ _loop.index }}"}
              code: |
                def main(who, i):
                    return f"{i}:{who}"
    """, sqlite_url)
    assert desc["status"] == "COMPLETED", desc["error"]
    assert desc["result"] == ["0:c", "1:a"]


CHILD = """
apiVersion: noetl.io/v1
kind: Playbook
metadata: {name: child, path: tests/child}
workload: {x: 1}
workflow:
  - step: start
    next: [{step: double}]
  - step: double
    type: python
    args: {x: "{{ workload.x }}"}
    code: |
      def main(x):
          if x < 0:
              raise ValueError("negative")
          return {"doubled": x * 2}
    next: [{step: describe}]
  - step: describe
    type: python
    args: {d: "{{ double.doubled }}"}
    code: |
      def main(d):
          return f"value {d}"
"""

PARENT = """
apiVersion: noetl.io/v1
kind: Playbook
metadata: {name: parent}
workload: {values: [1, 2, 3]}
workflow:
  - step: start
    next: [{step: one}]
  - step: one
    type: playbook
    path: tests/child
    return_step: double
    args: {x: 21}
    next: [{step: many}]
  - step: many
    type: iterator
    collection: "{{ workload.values }}"
    element: v
    mode: async
    task:
      type: playbook
      path: tests/child
      args: {x: "{{ v }}"}
    next: [{step: end}]
  - step: end
"""


def test_sub_playbook_waits_and_returns(sqlite_url: str) -> None:
    with LocalRunner(sqlite_url) as runner:
        runner.engine.register(textwrap.dedent(CHILD), "child.yaml")
        desc = runner.run(parse_playbook(PARENT), timeout=30)
        assert desc["status"] == "COMPLETED", desc["error"]
        assert desc["steps"]["one"]["result"] == {"doubled": 42}
        assert desc["steps"]["many"]["result"] == ["value 2", "value 4", "value 6"]
        assert len(desc["children"]) == 4
        assert all(c["status"] == "COMPLETED" for c in desc["children"])
        with runner.store.read() as tx:
            for c in desc["children"]:
                assert_one_terminal(tx.get_events(int(c["execution_id"]), 0, 1000))


def test_failed_child_fails_parent(sqlite_url: str) -> None:
    with LocalRunner(sqlite_url) as runner:
        runner.engine.register(textwrap.dedent(CHILD), "child.yaml")
        desc = runner.run(parse_playbook(PARENT), args={"values": [1, -1]}, timeout=30)
        assert desc["status"] == "FAILED"
        assert desc["steps"]["many"]["status"] == "FAILED"
        assert "negative" in desc["error"]["message"]


def test_unknown_child_playbook_fails_step(sqlite_url: str) -> None:
    desc, _ = run_yaml(PARENT, sqlite_url)
    assert desc["status"] == "FAILED"
    assert "tests/child" in desc["error"]["message"]
    assert "not in the catalog" in desc["error"]["message"]


def test_cancel_cascades_to_children(sqlite_url: str) -> None:
    slow_child = CHILD.replace("return {\"doubled\": x * 2}",
                               "import time\n          time.sleep(30)\n          return 1")
    slow_child = slow_child.replace("    type: python\n    args: {x:",
                                    "    type: python\n    timeout: 60\n    args: {x:", 1)
    assert "timeout: 60" in slow_child
    with LocalRunner(sqlite_url, concurrency=4, lease_seconds=0.6) as runner:
        runner.engine.register(textwrap.dedent(slow_child), "child.yaml")
        ex = runner.engine.start(parse_playbook(PARENT))
        eid = ex.execution_id
        import time

        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # until a child's slow step is running
            with runner.store.read() as tx:
                if tx.list_jobs(status="leased"):
                    break
            time.sleep(0.02)
        runner.engine.cancel(eid)
        d = runner.engine.describe(eid)
        assert d["status"] == "CANCELLED"
        assert d["children"] and all(c["status"] == "CANCELLED" for c in d["children"])
        assert d["steps"]["one"]["status"] == "CANCELLED"  # was waiting on its child
        child = runner.engine.describe(int(d["children"][0]["execution_id"]))
        assert child["steps"]["double"]["status"] == "CANCELLED"  # was running
        assert all(s["status"] != "RUNNING" for s in child["steps"].values())
        with runner.store.read() as tx:
            assert_one_terminal(tx.get_events(eid, 0, 1000))
            assert tx.queue_size("queued") == 0
        # the running child step learns of the cancel at its next heartbeat and is killed;
        # its outcome is still recorded in the child's log
        child_id = int(d["children"][0]["execution_id"])
        deadline = time.monotonic() + 10
        late: list = []
        while time.monotonic() < deadline and not late:
            with runner.store.read() as tx:
                late = [e for e in tx.get_events(child_id, 0, 1000)
                        if e.event_type == "action_failed"]
            time.sleep(0.05)
        assert late and late[0].error_type == "Cancelled" and late[0].meta["late"] is True


def test_inline_child_templates_render_in_the_child(sqlite_url: str) -> None:
    desc, _ = run_yaml("""
        apiVersion: noetl.io/v1
        kind: Playbook
        metadata: {name: inline_parent}
        workload: {who: parent}
        workflow:
          - step: start
            type: playbook
            args: {who: child}
            content:
              apiVersion: noetl.io/v1
              kind: Playbook
              metadata: {name: inline_child}
              workload: {who: nobody}
              workflow:
                - step: start
                  type: python
                  args: {w: "{{ workload.who }}"}
                  code: |
                    def main(w):
                        return w
    """, sqlite_url)
    assert desc["status"] == "COMPLETED", desc["error"]
    assert desc["result"] == "child"
