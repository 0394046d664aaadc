"""Transitions: event order, joins, loops back, else/defaults, edge args, completion."""

from __future__ import annotations

from tests.helpers import run_yaml, types_for

NOETL_ORDER = ["execution_started", "workflow_initialized",
               "step_started", "action_started", "action_completed", "step_result",
               "step_completed",
               "step_started", "action_started", "action_completed", "step_result",
               "step_completed",
               "workflow_completed", "execution_completed"]


def test_event_sequence_matches_noetl(sqlite_url: str) -> None:
    _, events = run_yaml("""
        apiVersion: noetl.io/v1
        kind: Playbook
        metadata: {name: simple}
        workflow:
          - step: start
            type: python
            code: |
              def main():
                  return 1
            next: [{step: second}]
          - step: second
            type: python
            code: |
              def main():
                  return 2
    """, sqlite_url)
    assert [e.event_type for e in events] == NOETL_ORDER
    assert [e.node_name for e in events[2:7]] == ["start"] * 5
    assert [e.node_name for e in events[7:12]] == ["second"] * 5
    assert [e.seq for e in events] == sorted(e.seq for e in events)


def test_join_after_fan_out_runs_once_and_sees_both(sqlite_url: str) -> None:
    desc, events = run_yaml("""
        apiVersion: noetl.io/v1
        kind: Playbook
        metadata: {name: diamond}
        workflow:
          - step: start
            next: [{step: left}, {step: right}]
          - step: left
            type: python
            code: |
              def main():
                  import time
                  time.sleep(0.05)
                  return {"side": "L"}
            next: [{step: join}]
          - step: right
            type: python
            code: |
              def main():
                  return {"side": "R"}
            next: [{step: join}]
          - step: join
            type: python
            args:
              l: "{{ left.side }}"
              r: "{{ right.side }}"
            code: |
              def main(l, r):
                  return l + r
    """, sqlite_url)
    assert desc["status"] == "COMPLETED"
    assert types_for(events, "join").count("step_started") == 1
    assert desc["steps"]["join"]["result"] == "LR"
    assert desc["steps"]["join"]["runs"] == 1


def test_join_not_blocked_by_branch_not_taken(sqlite_url: str) -> None:
    desc, _ = run_yaml("""
        apiVersion: noetl.io/v1
        kind: Playbook
        metadata: {name: branchy}
        workload: {go_left: true}
        workflow:
          - step: start
            next:
              - when: "{{ workload.go_left }}"
                step: left
              - else: [right]
          - step: left
            type: python
            code: |
              def main():
                  return "L"
            next: [{step: join}]
          - step: right
            type: python
            code: |
              def main():
                  return "R"
            next: [{step: join}]
          - step: join
            type: python
            code: |
              def main():
                  return "joined"
    """, sqlite_url)
    assert desc["status"] == "COMPLETED"
    assert desc["steps"]["right"]["status"] == "SKIPPED"
    assert desc["steps"]["join"]["result"] == "joined"


def test_loop_back_until_counter_reaches_three(sqlite_url: str) -> None:
    desc, events = run_yaml("""
        apiVersion: noetl.io/v1
        kind: Playbook
        metadata: {name: poll}
        workflow:
          - step: start
            next: [{step: tick, args: {n: 0}}]
          - step: tick
            type: python
            code: |
              def main(n):
                  return {"count": n + 1}
            next:
              - when: "{{ result.count < 3 }}"
                step: tick
                args: {n: "{{ result.count }}"}
              - else: [done]
          - step: done
            type: python
            args: {final: "{{ tick.count }}"}
            code: |
              def main(final):
                  return final
    """, sqlite_url)
    assert desc["status"] == "COMPLETED"
    assert desc["result"] == 3
    assert types_for(events, "tick").count("step_started") == 3
    assert desc["steps"]["tick"]["runs"] == 3


def test_conditional_edges_all_true_fire_and_default_skipped(sqlite_url: str) -> None:
    desc, _ = run_yaml("""
        apiVersion: noetl.io/v1
        kind: Playbook
        metadata: {name: multi}
        workload: {x: 5}
        workflow:
          - step: start
            next:
              - when: "{{ workload.x > 1 }}"
                step: a
              - when: "{{ workload.x > 2 }}"
                step: b
              - step: fallback
          - step: a
            type: python
            code: "def main():\\n    return 'a'"
          - step: b
            type: python
            code: "def main():\\n    return 'b'"
          - step: fallback
            type: python
            code: "def main():\\n    return 'f'"
    """, sqlite_url)
    s = desc["steps"]
    assert (s["a"]["status"], s["b"]["status"], s["fallback"]["status"]) == \
        ("COMPLETED", "COMPLETED", "SKIPPED")


def test_all_edges_false_ends_branch_without_failure(sqlite_url: str) -> None:
    desc, _ = run_yaml("""
        apiVersion: noetl.io/v1
        kind: Playbook
        metadata: {name: deadend}
        workflow:
          - step: start
            type: python
            code: "def main():\\n    return 0"
            next:
              - when: "{{ result > 1 }}"
                step: never
          - step: never
            type: python
            code: "def main():\\n    return 1"
    """, sqlite_url)
    assert desc["status"] == "COMPLETED"
    assert desc["steps"]["never"]["status"] == "SKIPPED"


def test_whole_args_template_and_native_values(sqlite_url: str) -> None:
    desc, _ = run_yaml("""
        apiVersion: noetl.io/v1
        kind: Playbook
        metadata: {name: natives}
        workload: {cfg: {a: 1, b: [1, 2]}}
        workflow:
          - step: start
            type: python
            args: "{{ workload.cfg }}"
            code: |
              def main(a, b):
                  return {"a": a, "b": b, "types": [type(a).__name__, type(b).__name__]}
    """, sqlite_url)
    assert desc["status"] == "COMPLETED", desc["error"]
    assert desc["result"] == {"a": 1, "b": [1, 2], "types": ["int", "list"]}


def test_rendered_input_is_kept_on_the_step(sqlite_url: str) -> None:
    desc, _ = run_yaml("""
        apiVersion: noetl.io/v1
        kind: Playbook
        metadata: {name: inputs}
        workload: {n: 4}
        workflow:
          - step: start
            next: [{step: sq, args: {extra: "{{ workload.n + 1 }}"}}]
          - step: sq
            type: python
            args: {n: "{{ workload.n }}"}
            code: |
              def main(n, extra):
                  return n * extra
    """, sqlite_url)
    assert desc["steps"]["sq"]["input"] == {"n": 4, "extra": 5}
    assert desc["result"] == 20
