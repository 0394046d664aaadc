"""The one status derivation every surface (API, CLI, UI) uses."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from noetl.domain.lifecycle import StepStatus
from noetl.errors import NotFound, PlaybookError

if TYPE_CHECKING:
    from noetl.domain.records import ExecutionRow, StepRow
    from noetl.plan import Plan
    from noetl.store.base import Tx


def describe(tx: Tx, execution_id: int, with_steps: bool = True) -> dict[str, Any]:
    """Status, result, error and per-step state of one execution.

    The execution row's status is maintained in the same transaction as every event, so this is
    a read, not a replay. Steps that never ran are reported PENDING (or SKIPPED once the
    execution has ended). While it runs, a step that waits for something carries ``waiting``
    (:func:`noetl.engine.explain.explain`: a lost worker, no live worker, a retry delay, its
    lease, a join's branches, ...). An execution whose stored playbook this version cannot
    compile (a rule added since it started) is described all the same, from its rows, with
    ``plan_error`` saying why (its step types and waits are then unknown)."""
    ex = tx.get_execution(execution_id)
    if ex is None:
        raise NotFound(f"execution {execution_id} not found")
    out = ex.to_dict()
    if with_steps:
        from noetl.engine.plans import plan_for

        rows = tx.get_steps(execution_id)
        kids = tx.children(execution_id)
        try:
            plan = plan_for(tx, ex)
        except PlaybookError as exc:  # a snapshot this version cannot read: the rows as stored
            out["plan_error"] = str(exc)
            steps = {n: {**r.to_dict(), "type": None} for n, r in rows.items()}
        else:
            steps = _planned_steps(tx, ex, plan, rows, kids)
        out["steps"] = steps
        out["children"] = [c.to_dict() for c in kids]
    return out


def _planned_steps(tx: Tx, ex: ExecutionRow, plan: Plan, rows: dict[str, StepRow],
                   kids: list[ExecutionRow]) -> dict[str, Any]:
    """Every step of the plan, in its order: its row (PENDING or SKIPPED if it never ran),
    its type and, while the execution runs, why it waits."""
    steps: dict[str, Any] = {}
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
    if not ex.terminal:  # why each unfinished step waits (one explainer for every surface)
        from noetl.engine.explain import explain

        for name, why in explain(tx, ex, plan, kids).items():
            if name in steps:
                steps[name]["waiting"] = why
    return steps


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


# A loop item's state, from its job's queue status (retries go back to "queued").
ITEM_STATUS = {"queued": "QUEUED", "waiting": "PENDING", "leased": "RUNNING",
               "child": "RUNNING", "done": "COMPLETED", "dead": "FAILED",
               "cancelled": "CANCELLED"}
ITEM_FILTER = {v: k for k, v in ITEM_STATUS.items() if k != "child"}


def loop_items(tx: Tx, execution_id: int, step: str, offset: int = 0, limit: int = 100,
               status: str | None = None) -> dict[str, Any]:
    """One page of a loop step's items (its latest run), in index order: status, attempts,
    start, end, duration, item, result, error, worker and, for a sub-playbook task, the child
    execution. ``status`` filters on an item status (COMPLETED, FAILED, RUNNING, ...)."""
    from noetl.engine.plans import plan_for

    ex = tx.get_execution(execution_id)
    if ex is None:
        raise NotFound(f"execution {execution_id} not found")
    plan = plan_for(tx, ex)
    if step not in plan.steps:
        raise NotFound(f"execution {execution_id} has no step '{step}'")
    row = tx.get_steps(execution_id, [step]).get(step)
    loop = (row.loop if row is not None else None) or {}
    out: dict[str, Any] = {"execution_id": str(execution_id), "step": step,
                           "run": loop.get("run"), "total": loop.get("total", 0),
                           "done": loop.get("done", 0), "failed": bool(loop.get("failed")),
                           "offset": offset, "limit": limit, "counts": {}, "matching": 0,
                           "items": []}
    if not loop:
        return out
    run = int(loop["run"])
    queue_status = None
    if status:
        queue_status = ITEM_FILTER.get(status.upper())
        if queue_status is None:
            raise ValueError(f"unknown item status {status!r} (one of "
                             f"{', '.join(sorted(ITEM_FILTER))})")
    counts: dict[str, int] = {}
    for st, n in tx.loop_item_counts(execution_id, step, run).items():
        key = ITEM_STATUS.get(st, st.upper())
        counts[key] = counts.get(key, 0) + n
    jobs, matching = tx.loop_items(execution_id, step, run, offset, limit, queue_status)
    events = tx.item_events(execution_id, step, [j.index for j in jobs if j.index is not None])
    children = {c.parent_job_id: c for c in tx.children(execution_id)} \
        if any(j.status == "child" or j.payload.get("child") for j in jobs) else {}
    out.update(counts=counts, matching=matching,
               items=[_item(j, events, children) for j in jobs])
    return out


def _item(job: Any, events: list[Any], children: dict[Any, Any]) -> dict[str, Any]:
    started = ended = duration = error = None
    for e in events:  # this run's events of this item: those after its job was made
        if e.current_index != job.index or e.created_at < job.created_at:
            continue
        if e.event_type == "action_started":
            started, ended, duration, error = e.created_at, None, None, None
        elif e.event_type in ("action_completed", "action_failed"):
            ended, duration = e.created_at, e.duration
            error = {"message": e.error, "type": e.error_type, "traceback": e.stack_trace} \
                if e.event_type == "action_failed" else None
    status = ITEM_STATUS.get(str(job.status), str(job.status).upper())
    if duration is None and started is not None and ended is not None:
        duration = ended - started
    child = children.get(job.queue_id)
    return {"index": job.index, "status": status, "attempts": job.attempts,
            "max_attempts": job.max_attempts, "started_at": started, "ended_at": ended,
            "duration": duration, "item": job.payload.get("item"),
            "result": job.result if status == "COMPLETED" else None,
            "error": error if status in ("FAILED", "QUEUED") else None,
            "retry_at": job.available_at if status == "QUEUED" and job.attempts else None,
            "worker_id": job.worker_id,
            "child_execution_id": None if child is None else str(child.execution_id)}
