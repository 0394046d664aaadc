"""The one status derivation every surface (API, CLI, UI) uses."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from noetl.domain.lifecycle import StepStatus
from noetl.errors import NotFound

if TYPE_CHECKING:
    from noetl.store.base import Tx


def describe(tx: Tx, execution_id: int, with_steps: bool = True) -> dict[str, Any]:
    """Status, result, error and per-step state of one execution.

    The execution row's status is maintained in the same transaction as every event, so this is
    a read, not a replay. Steps that never ran are reported PENDING (or SKIPPED once the
    execution has ended). While it runs, a step that waits for something carries ``waiting``
    (:func:`noetl.engine.explain.explain`: a lost worker, no live worker, a retry delay, its
    lease, a join's branches, ...)."""
    ex = tx.get_execution(execution_id)
    if ex is None:
        raise NotFound(f"execution {execution_id} not found")
    out = ex.to_dict()
    if with_steps:
        from noetl.engine.plans import plan_for

        rows = tx.get_steps(execution_id)
        steps: dict[str, Any] = {}
        plan = plan_for(tx, ex)
        for name in plan.order:
            r = rows.get(name)
            if r is None:
                steps[name] = {"step": name, "status": _never_ran(ex.terminal),
                               "result": None, "error": None, "attempts": 0, "runs": 0,
                               "type": plan.steps[name].type}
            else:
                d = r.to_dict()
                d["type"] = plan.steps[name].type
                steps[name] = d
        kids = tx.children(execution_id)
        if not ex.terminal:  # why each unfinished step waits (one explainer for every surface)
            from noetl.engine.explain import explain

            for name, why in explain(tx, ex, plan, kids).items():
                if name in steps:
                    steps[name]["waiting"] = why
        out["steps"] = steps
        out["children"] = [c.to_dict() for c in kids]
    return out


def graph(tx: Tx, execution_id: int) -> dict[str, Any]:
    """The execution's step graph: nodes (with type and live status) and edges (with conditions)."""
    from noetl.engine.plans import plan_for

    ex = tx.get_execution(execution_id)
    if ex is None:
        raise NotFound(f"execution {execution_id} not found")
    plan = plan_for(tx, ex)
    rows = tx.get_steps(execution_id)
    nodes = []
    for name in plan.order:
        ps = plan.steps[name]
        r = rows.get(name)
        status = r.status if r else _never_ran(ex.terminal)
        node: dict[str, Any] = {"name": name, "type": ps.type or "router", "status": str(status),
                                "is_join": ps.is_join}
        if r is not None and r.loop:
            node["loop"] = {"done": r.loop.get("done", 0), "total": r.loop.get("total", 0)}
        if ps.type == "iterator" and ps.task:
            node["task_type"] = ps.task.get("type")
        nodes.append(node)
    edges = [{"from": name, "to": e.target, "when": e.when, "else": e.is_else}
             for name in plan.order for e in plan.steps[name].edges]
    return {"execution_id": str(execution_id), "status": str(ex.status), "start": plan.start,
            "nodes": nodes, "edges": edges}


def _never_ran(ended: bool) -> str:
    """A step with no row: SKIPPED once its execution has ended, else PENDING."""
    return str(StepStatus.SKIPPED if ended else StepStatus.PENDING)
