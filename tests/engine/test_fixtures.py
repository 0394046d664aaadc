"""NoETL's own control-flow fixtures run to COMPLETED on the embedded store."""

from __future__ import annotations

from pathlib import Path

from noetl.dsl import load_playbook
from noetl.local import LocalRunner
from tests.helpers import assert_one_terminal

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "noetl"


def _run(rel: str, url: str, args: dict | None = None):
    with LocalRunner(url) as runner:
        desc = runner.run(load_playbook(FIX / rel), args=args, timeout=30)
        with runner.store.read() as tx:
            events = tx.get_events(int(desc["execution_id"]), 0, 10000)
    assert_one_terminal(events)
    return desc, events


def test_hello_world(sqlite_url: str) -> None:
    desc, events = _run("hello_world/hello_world.yaml", sqlite_url)
    assert desc["status"] == "COMPLETED", desc["error"]
    assert desc["steps"]["test_step"]["result"] == {"message": "Hello World"}
    # the end step's event-log save ran once with the rendered message
    end_done = [e for e in events if e.node_name == "end" and e.event_type == "action_completed"]
    assert len(end_done) == 1
    assert end_done[0].result["meta"]["save"] == {
        "storage": "event_log", "saved": "event",
        "data": {"status": "success", "message": "Hello World"}}
    # print output of the python step is kept
    test_done = [e for e in events
                 if e.node_name == "test_step" and e.event_type == "action_completed"]
    assert "HELLO_WORLD: Hello World" in test_done[0].result["meta"]["stdout"]


def test_control_flow_hot_branch(sqlite_url: str) -> None:
    desc, events = _run("control_flow_workbook/control_flow_workbook.yaml", sqlite_url)
    steps = desc["steps"]
    assert desc["status"] == "COMPLETED"
    assert steps["eval_flag"]["result"] == {"is_hot": True, "message": "hot"}
    assert steps["hot_task_a"]["result"] == {"who": "A"}
    assert steps["hot_task_b"]["result"] == {"who": "B"}
    assert steps["cold_task"]["status"] == "SKIPPED"
    assert steps["cold_path"]["status"] == "SKIPPED"
    # the fan-in `end` was reached once, after both branches
    assert [e.event_type for e in events if e.node_name == "end"] == ["step_completed"]


def test_control_flow_cold_branch(sqlite_url: str) -> None:
    desc, _ = _run("control_flow_workbook/control_flow_workbook.yaml", sqlite_url,
                   {"temperature_c": 10})
    steps = desc["steps"]
    assert desc["status"] == "COMPLETED"
    assert steps["eval_flag"]["result"] == {"is_hot": False, "message": "cold"}
    assert steps["cold_task"]["result"] == {"who": "C"}
    assert steps["hot_task_a"]["status"] == "SKIPPED"
    assert desc["result"] == {"who": "C"}


def test_start_with_action(sqlite_url: str) -> None:
    desc, events = _run("test_start_with_action.yaml", sqlite_url)
    assert desc["status"] == "COMPLETED"
    assert desc["steps"]["start"]["result"]["executed"] is True
    assert desc["steps"]["process"]["result"] == {"from_start": True, "processed": True}
    assert events[2].event_type == "step_started" and events[2].node_name == "start"


def test_end_with_action(sqlite_url: str) -> None:
    desc, _ = _run("test_end_with_action.yaml", sqlite_url)
    assert desc["status"] == "COMPLETED"
    assert desc["steps"]["end"]["result"] == {"cleaned_up": True, "table": "temp_session_12345"}
    assert desc["result"] == {"cleaned_up": True, "table": "temp_session_12345"}
