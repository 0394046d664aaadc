"""NoETL corpus: control flow, iterators and sub-playbooks, embedded mode (the fixtures are
loaded from tests/fixtures/noetl unchanged unless the test says ``copy:``)."""

from __future__ import annotations

import pytest

from noetl.dsl import parse_playbook
from tests.compat.conftest import Compat, events_of

pytestmark = pytest.mark.postgres

# user_profile_scorer by hand: experience*0.4 + performance*0.35 + department*0.15 + age*0.1
# (the fixture's weights cap a score at 24, so every user is "Junior" by its own rules)
EXPECTED_SCORES = {
    "Alice": 16.2,    # 5 y -> 15.0; 4.2 -> 20.0; Engineering 15; 28 -> 10
    "Bob": 16.7,      # 8 y -> 21.0; 3.8 -> 17.5; Marketing 8; 34 -> 10
    "Charlie": 15.6,  # 3 y -> 11.7; 4.5 -> 21.9; Engineering 15; 29 -> 10
    "Diana": 21.2,    # 15 y -> 30.0; 4.0 -> 18.8; Management 12; 42 -> 8
}


def test_hello_world(compat: Compat) -> None:
    desc, events = compat.run("hello_world/hello_world.yaml")
    assert desc["status"] == "COMPLETED", desc["error"]
    assert desc["steps"]["test_step"]["result"] == {"message": "Hello World"}
    done = events_of(events, "test_step", "action_completed")[0]
    assert done.result["meta"]["stdout"] == "HELLO_WORLD: Hello World\n"
    # the `type: end` step's event-log save ran, with the template rendered
    end = events_of(events, "end", "action_completed")[0]
    assert end.result["meta"]["save"]["data"] == {"status": "success", "message": "Hello World"}
    # the edge arg overrides the workload value
    desc, _ = compat.run("hello_world/hello_world.yaml", args={"message": "Hi"})
    assert desc["steps"]["test_step"]["result"] == {"message": "Hi"}


def test_control_flow_workbook_hot_and_cold(compat: Compat) -> None:
    hot_id = compat.start("control_flow_workbook/control_flow_workbook.yaml")
    cold_id = compat.start("control_flow_workbook/control_flow_workbook.yaml",
                           args={"temperature_c": 10})
    hot, hot_events = compat.finish(hot_id)
    cold, cold_events = compat.finish(cold_id)
    assert hot["status"] == "COMPLETED", hot["error"]
    assert cold["status"] == "COMPLETED", cold["error"]
    assert hot["steps"]["hot_task_a"]["result"] == {"who": "A"}
    assert hot["steps"]["hot_task_b"]["result"] == {"who": "B"}
    assert hot["steps"]["cold_task"]["status"] == "SKIPPED"
    assert not events_of(hot_events, "cold_task", "action_started")
    assert cold["steps"]["cold_task"]["result"] == {"who": "C"}
    assert cold["result"] == {"who": "C"}
    assert not events_of(cold_events, "hot_task_a", "action_started")
    # fan-in: the router `end` completes once, after both hot branches
    order = [e.node_name for e in hot_events if e.event_type == "step_completed"]
    assert order.count("end") == 1
    assert order.index("end") > max(order.index("hot_task_a"), order.index("hot_task_b"))


def test_start_with_action(compat: Compat) -> None:
    desc, _ = compat.run("test_start_with_action.yaml")
    assert desc["status"] == "COMPLETED", desc["error"]
    assert desc["steps"]["start"]["result"] == {"executed": True, "input": {}}
    assert desc["steps"]["process"]["result"] == {"from_start": True, "processed": True}
    assert desc["result"] == {"from_start": True, "processed": True}


def test_end_with_action(compat: Compat) -> None:
    desc, _ = compat.run("test_end_with_action.yaml")
    assert desc["status"] == "COMPLETED", desc["error"]
    assert desc["steps"]["process_data"]["result"] == {"records_processed": 100,
                                                       "temp_table": "temp_session_12345"}
    assert desc["result"] == {"cleaned_up": True, "table": "temp_session_12345"}


def test_iterator_save(compat: Compat) -> None:
    desc, events = compat.run("iterator_save_test.yaml")
    assert desc["status"] == "COMPLETED", desc["error"]
    eid = desc["execution_id"]
    rows = compat.query("SELECT id, execution_id, item_name, item_value "
                        "FROM public.iterator_save_test WHERE execution_id = %s ORDER BY id",
                        (str(eid),))
    assert rows == [(f"{eid}:item{i}", str(eid), f"item{i}", i * 100) for i in (1, 2, 3)]
    # one job per item, in order (sequential mode); each item's save is on its own event
    items = events_of(events, "process_items", "action_completed")
    assert len(items) == 3
    assert [e.result["meta"]["save"] for e in items] == [
        {"storage": "postgres", "table": "public.iterator_save_test", "rows": 1,
         "mode": "upsert"}] * 3
    # The task's `main(input_data)` has no args: a loop task's input is then the item
    # (NoETL passed None and every item failed).
    assert desc["steps"]["process_items"]["result"] == [
        {"item_name": f"item{i}", "item_value": i * 100} for i in (1, 2, 3)]


def test_playbook_composition(compat: Compat) -> None:
    compat.register("playbook_composition/user_profile_scorer.yaml")
    desc, events = compat.run("playbook_composition/playbook_composition.yaml")
    assert desc["status"] == "COMPLETED", desc["error"]
    eid = str(desc["execution_id"])
    loop = desc["steps"]["process_users"]["result"]
    assert [u["user_name"] for u in loop] == list(EXPECTED_SCORES)
    for u in loop:
        assert u["profile_score"] == pytest.approx(EXPECTED_SCORES[u["user_name"]], abs=0.05)
        assert u["score_category"] == "Junior"
        assert u["processing_status"] == "completed" and u["execution_id"] == eid
    check = desc["steps"]["validate_results"]["result"]
    assert check["status"] == "success" and check["valid_users"] == 4, check
    assert desc["result"]["validation_passed"] is True
    assert desc["result"]["users_processed"] == 4
    # one child execution per user, each returning its `finalize_result`
    children = events_of(events, "process_users", "action_completed")
    assert len({e.result["meta"]["child_execution_id"] for e in children}) == 4


def test_playbook_composition_saves_scored_users(compat: Compat) -> None:
    """Issue 4 acceptance: the 4 scored users are written to PostgreSQL by the per-item save."""
    compat.register("playbook_composition/user_profile_scorer.yaml")
    desc, _ = compat.run("playbook_composition/playbook_composition.yaml")
    assert desc["status"] == "COMPLETED", desc["error"]
    eid = str(desc["execution_id"])
    rows = compat.query("SELECT user_name, profile_score, score_category, id "
                        "FROM public.user_profile_results WHERE execution_id = %s "
                        "ORDER BY user_name", (eid,))
    assert [r[0] for r in rows] == sorted(EXPECTED_SCORES)
    for name, score, category, key in rows:
        assert score == pytest.approx(EXPECTED_SCORES[name], abs=0.05), name
        assert category == "Junior" and key == f"{eid}:{name}"


REPRO_CHILD = """\
apiVersion: noetl.io/v1
kind: Playbook
metadata: {name: child, path: tests/compat/repro_child}
workflow:
  - step: start
    type: python
    code: |
      def main():
          return {"score": 7}
"""
REPRO_PARENT = """\
apiVersion: noetl.io/v1
kind: Playbook
metadata: {name: parent, path: tests/compat/repro_parent}
workflow:
  - step: start
    type: playbook
    path: tests/compat/repro_child
    return_step: start
    save: {storage: event_log, args: {score: "{{ this.score }}"}}
"""


def test_save_on_playbook_step_runs(compat: Compat) -> None:
    """The minimal reproduction of the bug behind the composition fixture's missing rows."""
    compat.runner.engine.register(REPRO_CHILD)
    desc = compat.runner.run(parse_playbook(REPRO_PARENT, "<repro>"), timeout=30)
    desc, events = compat.finish(int(desc["execution_id"]))
    assert desc["status"] == "COMPLETED", desc["error"]
    assert desc["steps"]["start"]["result"] == {"score": 7}  # the child's result arrives
    done = events_of(events, "start", "action_completed")[0]
    assert done.result["meta"]["save"]["data"] == {"score": 7}  # ... but its save never ran


def test_user_profile_scorer_unchanged(compat: Compat) -> None:
    """The child passes ``"{{ workload.user_data | tojson }}"`` as a whole value and expects a
    dict: a whole-value ``{{ x | tojson }}`` renders to x itself (docs/semantics.md)."""
    desc, _ = compat.run("playbook_composition/user_profile_scorer.yaml")
    assert desc["status"] == "COMPLETED", desc["error"]
    assert desc["result"]["user_name"] == "TestUser"
    assert desc["result"]["execution_id"] == "standalone_execution"
