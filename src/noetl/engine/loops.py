"""Iterator loops: every item is its own job; results are kept in input order.

The loop counts as one unit of active work until its last item finishes; then its result (the
list of item results, read once in index order) is recorded and its edges fire.
"""

from __future__ import annotations

import ast
import json
from typing import TYPE_CHECKING, Any

from noetl.domain.lifecycle import JobKind, JobStatus
from noetl.domain.records import Job, StepRow, now
from noetl.engine.children import start_child, start_child_for_job
from noetl.engine.scope import step_args
from noetl.errors import NoetlError
from noetl.ids import new_id
from noetl.plan import PlanStep
from noetl.templates import evaluate, render, tool_context

if TYPE_CHECKING:
    from noetl.engine.unit import Unit

DEFAULT_ASYNC_CONCURRENCY = 16


def _as_list(value: Any, element: str) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, str):
        text = value.strip()
        try:
            value = json.loads(text)
        except ValueError:
            try:
                value = ast.literal_eval(text)
            except (ValueError, SyntaxError):
                return [value]
    if isinstance(value, dict):
        for key in (element, f"{element}s", f"{element}_list", f"{element}_items", "items",
                    "values", "collection", "data", "result"):
            if isinstance(value.get(key), list):
                return list(value[key])
        if len(value) == 1:
            only = next(iter(value.values()))
            if isinstance(only, list):
                return list(only)
        return [value]
    if isinstance(value, list | tuple):
        return list(value)
    return [value]


def collection(session: Unit, ps: PlanStep, args: dict[str, Any]) -> tuple[list[Any], str]:
    action = ps.action
    element = str(action.get("element") or action.get("iterator") or "item")
    where = f"step '{ps.name}'"
    ctx = tool_context(session.ctx(ps.refs), args)
    raw = action.get("collection", action.get("data"))
    items = _as_list(render(raw, ctx, f"{where} → collection"), element)
    if action.get("where"):
        items = [x for x in items
                 if evaluate(action["where"], {**ctx, element: x}, f"{where} → where")]
    if action.get("order_by"):
        key = action["order_by"]
        items = sorted(items, key=lambda x: _sort_key(render(
            key if "{{" in str(key) else "{{ " + str(key) + " }}", {**ctx, element: x},
            f"{where} → order_by")))
    if action.get("limit") is not None:
        items = items[: whole(render(action["limit"], ctx, f"{where} → limit"),
                              f"{where} → limit", 0)]
    chunk = action.get("chunk")
    if chunk:
        size = whole(render(chunk, ctx, f"{where} → chunk"), f"{where} → chunk", 1)
        items = [items[i:i + size] for i in range(0, len(items), size)]
    return items, element


def whole(value: Any, where: str, minimum: int) -> int:
    """``value`` as a whole number of at least ``minimum``, else an error naming the field."""
    try:
        n = int(value) if not isinstance(value, bool) and float(value) == int(value) else None
    except (TypeError, ValueError, OverflowError):
        n = None
    if n is None or n < minimum:
        raise NoetlError(f"{where}: must be a whole number of at least {minimum}, "
                         f"got {str(value)[:60]!r}")
    return n


def _sort_key(v: Any) -> tuple[int, Any]:
    if v is None:
        return (0, 0)
    if isinstance(v, int | float):
        return (1, v)
    return (2, str(v))


def start_loop(session: Unit, ps: PlanStep, r: StepRow, args: dict[str, Any]) -> None:
    args = step_args(session, ps, args)
    items, element = collection(session, ps, args)
    mode = str(ps.action.get("mode") or "sequential").lower()
    if mode in ("async", "parallel"):
        conc = whole(ps.action.get("concurrency") or DEFAULT_ASYNC_CONCURRENCY,
                     f"step '{ps.name}' → concurrency", 1)
    else:
        conc = 1
    conc = max(1, conc)
    r.loop = {"run": r.runs, "total": len(items), "done": 0, "concurrency": conc,
              "element": element, "failed": False, "mode": mode}
    session.touch(r)
    if not items:
        session.step_done(ps, r.runs, [], {"status": "success", "data": []}, 0)
        return
    t = now()
    max_attempts = ps.item_retry.max_attempts if ps.item_retry else 1
    task = ps.task or {}
    if task.get("type") == "playbook":
        for i, item in enumerate(items[:conc]):
            start_child(session, ps, r, args, index=i, item_ctx={"item": item})
        if len(items) > conc:
            session.jobs.extend(
                Job(queue_id=new_id(), execution_id=session.eid, step=ps.name, run=r.runs,
                    kind=JobKind.ITEM, index=i,
                    payload={"item": item, "args": args, "child": True},
                    status=JobStatus.WAITING, max_attempts=max_attempts, available_at=t)
                for i, item in enumerate(items) if i >= conc)
        return
    info = {"element": element, "total": len(items)}  # what item_context needs
    session.jobs.extend(
        Job(queue_id=new_id(), execution_id=session.eid, step=ps.name, run=r.runs,
            kind=JobKind.ITEM,
            index=i, payload={"item": item, "args": args, "loop": info},
            status=JobStatus.QUEUED if i < conc else JobStatus.WAITING,
            max_attempts=max_attempts, available_at=t)
        for i, item in enumerate(items))


def item_done(session: Unit, ps: PlanStep, job: Job) -> None:
    r = session.row(ps.name)
    loop = r.loop
    # the job's own update (its result) goes with the unit's write, unless this is the last
    # item: item_results reads every item's result below
    if loop is None or loop.get("run") != job.run or loop.get("failed"):
        return  # a late item of a loop that already failed or was re-entered
    loop["done"] += 1
    session.touch(r)
    if loop["done"] >= loop["total"]:
        session.tx.update_job(job)
        session.job_updates.pop(job.queue_id, None)
    else:
        for nxt in session.tx.release_waiting(session.eid, ps.name, job.run, 1):
            if nxt.payload.get("child"):
                session.wake = True
                session.ready += 1
                start_child_for_job(session, ps, r, nxt)
            else:  # queued now; the reporter may take it at once (Session.hand_off)
                session.released.append(nxt)
        return
    results = session.tx.item_results(session.eid, ps.name, job.run)
    if ps.save:
        session.jobs.append(Job(queue_id=new_id(), execution_id=session.eid, step=ps.name,
                                run=job.run, kind=JobKind.SAVE, payload={"preset": results},
                                available_at=now()))
        return
    session.step_done(ps, job.run, results, {"status": "success", "data": results}, job.attempts)


def abort_loop(session: Unit, ps: PlanStep, r: StepRow) -> None:
    if r.loop is not None:
        r.loop["failed"] = True
        session.touch(r)
    session.tx.cancel_step_jobs(session.eid, ps.name, r.runs)
