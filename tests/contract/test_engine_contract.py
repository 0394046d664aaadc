"""Engine-level contract: NoETL's own fixtures run to the same outcome on every backend."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from noetl.domain.records import Event
from noetl.dsl import load_playbook
from noetl.local import LocalRunner

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "noetl"
TERMINAL = ("execution_completed", "execution_failed", "execution_cancelled")


def run_fixture(rel: str, url: str, args: dict[str, Any] | None = None
                ) -> tuple[dict[str, Any], list[Event]]:
    with LocalRunner(url, concurrency=3) as runner:
        desc = runner.run(load_playbook(FIX / rel), args=args, timeout=60)
        with runner.store.read() as tx:
            events = tx.get_events(int(desc["execution_id"]), 0, 100000)
    terminal = [e.event_type for e in events if e.event_type in TERMINAL]
    assert terminal == ["execution_completed"], (terminal, desc.get("error"))
    assert events[-1].event_type == "execution_completed"  # nothing after the end
    seqs = [e.seq for e in events]
    assert seqs == sorted(seqs)
    return desc, events


def test_hello_world(store_url: str) -> None:
    desc, _ = run_fixture("hello_world/hello_world.yaml", store_url)
    assert desc["status"] == "COMPLETED", desc["error"]
    assert desc["steps"]["test_step"]["result"] == {"message": "Hello World"}


def test_control_flow_hot(store_url: str) -> None:
    desc, events = run_fixture("control_flow_workbook/control_flow_workbook.yaml", store_url)
    steps = desc["steps"]
    assert desc["status"] == "COMPLETED"
    assert steps["eval_flag"]["result"] == {"is_hot": True, "message": "hot"}
    assert steps["hot_task_a"]["status"] == steps["hot_task_b"]["status"] == "COMPLETED"
    assert (steps["hot_task_a"]["result"], steps["hot_task_b"]["result"]) == ({"who": "A"},
                                                                              {"who": "B"})
    assert steps["cold_task"]["status"] == "SKIPPED"
    assert [e.event_type for e in events if e.node_name == "end"] == ["step_completed"]


def test_control_flow_cold(store_url: str) -> None:
    desc, _ = run_fixture("control_flow_workbook/control_flow_workbook.yaml", store_url,
                          {"temperature_c": 10})
    steps = desc["steps"]
    assert desc["status"] == "COMPLETED"
    assert steps["cold_task"]["result"] == {"who": "C"}
    assert steps["hot_task_a"]["status"] == steps["hot_task_b"]["status"] == "SKIPPED"
    assert desc["result"] == {"who": "C"}


def test_start_with_action(store_url: str) -> None:
    desc, _ = run_fixture("test_start_with_action.yaml", store_url)
    assert desc["status"] == "COMPLETED"
    assert desc["steps"]["start"]["result"]["executed"] is True
    assert desc["steps"]["process"]["result"] == {"from_start": True, "processed": True}


def test_end_with_action(store_url: str) -> None:
    desc, _ = run_fixture("test_end_with_action.yaml", store_url)
    assert desc["status"] == "COMPLETED"
    assert desc["steps"]["end"]["result"] == {"cleaned_up": True, "table": "temp_session_12345"}
    assert desc["result"] == {"cleaned_up": True, "table": "temp_session_12345"}
