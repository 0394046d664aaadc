"""One constructor per event type (noetl.engine.events), and no event built anywhere else in
the engine: a typo can no longer make a new event type."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

from noetl.domain.lifecycle import EventType
from noetl.domain.records import Job
from noetl.engine import events

ENGINE = Path(__file__).resolve().parents[2] / "src" / "noetl" / "engine"


def _types_built_by(fn: object) -> set[str]:
    tree = ast.parse(inspect.getsource(fn))  # type: ignore[arg-type]
    return {n.attr for n in ast.walk(tree)
            if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id == "T"}


def test_one_constructor_per_event_type() -> None:
    public = {name: fn for name, fn in vars(events).items()
              if inspect.isfunction(fn) and fn.__module__ == events.__name__
              and not name.startswith("_")}
    assert set(public) == {str(t) for t in EventType}, "a constructor named after each type"
    for name, fn in public.items():
        assert _types_built_by(fn) == {EventType(name).name}, name
    assert set(events.STATUS) == set(EventType)


def test_constructors_fill_type_status_and_ids() -> None:
    job = Job(queue_id=5, execution_id=9, step="fetch", run=1, index=3, attempts=2,
              worker_id="w1")
    ev = events.action_started(9, job, "http", "w1")
    assert (ev.event_type, ev.status, ev.node_name, ev.attempt, ev.current_index,
            ev.context) == ("action_started", "RUNNING", "fetch", 2, 3,
                            {"attempt": 2, "worker_id": "w1"})
    failed = events.action_failed(9, job, "http", {"error": {"type": "HTTPError"},
                                                   "duration": 0.5}, None)
    assert (failed.status, failed.error, failed.error_type, failed.duration) == (
        "FAILED", "step failed", "HTTPError", 0.5)
    a, b = events.workflow_completed(9), events.workflow_completed(9)
    assert a.event_id != b.event_id and a.execution_id == 9


def test_no_event_is_built_outside_the_constructors() -> None:
    found = []
    for p in sorted(ENGINE.glob("*.py")):
        if p.name == "events.py":
            continue
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Event":
                found.append(f"{p.name}:{node.lineno}")
    assert not found, found
