"""Re-run and resume: a new execution made from an old one, linked to it (``execution_lineage``).

**Re-run** starts the old execution's playbook (the same snapshot: the same catalog version)
with the same inputs (the args it was started with, as its ``execution_started`` event records
them), overrides on top. Nothing of the old execution is reused.

**Resume** (as dagster's re-execute-from-failure, Temporal's reset) is for a FAILED or
CANCELLED execution. The new execution has the old one's workload (overrides on top) and:

- every step the old one finished (COMPLETED, or FAILED with its failure handled by an error
  edge) keeps its state and result; each is recorded as a ``step_reused`` event carrying its
  result, so the new execution's own log shows every result it builds on; nothing runs again;
- joins waiting for branches keep the arrivals they held;
- from there it runs again the steps that were in flight when the old execution ended
  (CANCELLED) and the step whose failure ended it, each with the arguments it was last reached
  with, and everything that follows them as usual;
- a loop runs again only its items that did not complete: the items keep the old run's
  collection, completed items keep their results (a loop whose task is a sub-playbook, or
  that completed no item, runs again whole, its collection rendered anew);
- a sub-playbook step runs its child again as a new child execution.

Both are top-level executions (a re-run of a child execution has no parent).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from noetl.domain.lifecycle import (
    EXECUTION_ENDED,
    ExecutionStatus,
    JobKind,
    JobStatus,
    StepStatus,
    move,
)
from noetl.domain.records import ExecutionRow, Job, StepRow, now
from noetl.engine import events
from noetl.engine.executions import create_execution, deep_merge
from noetl.engine.plans import plan_for
from noetl.engine.scope import step_args
from noetl.engine.session import Session
from noetl.errors import Conflict, NotFound
from noetl.ids import new_id
from noetl.plan import PlanStep

if TYPE_CHECKING:
    from noetl.engine.core import Engine
    from noetl.store.base import Tx

RESUMABLE = frozenset({ExecutionStatus.FAILED, ExecutionStatus.CANCELLED})


def _combine(base: dict[str, Any] | None, overrides: dict[str, Any] | None,
             merge: bool) -> dict[str, Any]:
    base = copy.deepcopy(base or {})
    if not overrides:
        return base
    return deep_merge(base, overrides) if merge else {**base, **copy.deepcopy(overrides)}


def inputs_of(tx: Tx, ex: ExecutionRow) -> dict[str, Any]:
    """What the execution was started with: ``args`` (the caller's, None when it gave none),
    ``merge`` and the resulting ``workload``."""
    first = tx.get_events(ex.execution_id, 0, 1, "execution_started")
    ctx = first[0].context if first and isinstance(first[0].context, dict) else {}
    out = {"args": ctx.get("args"), "merge": bool(ctx.get("merge")), "workload": ex.workload,
           "recorded": "args" in ctx}  # older executions did not record their args
    for k in ("rerun_of", "resumed_from", "overrides"):
        if k in ctx:
            out[k] = ctx[k]
    return out


def _source(tx: Tx, execution_id: int) -> ExecutionRow:
    old = tx.get_execution(execution_id)
    if old is None:
        raise NotFound(f"execution {execution_id} not found")
    return old


def rerun(engine: Engine, execution_id: int, overrides: dict[str, Any] | None = None,
          merge: bool = False) -> ExecutionRow:
    """A new execution of the same playbook version with the same inputs (``overrides`` on
    top: replacing top-level keys, or deep-merged with ``merge``)."""
    def go(tx: Tx, holder: list[Session]) -> ExecutionRow:
        old = _source(tx, execution_id)
        plan = plan_for(tx, old)
        inputs = inputs_of(tx, old)
        args = _combine(inputs["args"] if inputs["recorded"] else old.workload, overrides, merge)
        ex = create_execution(tx, plan, args or None, merge=inputs["merge"],
                              catalog_id=old.catalog_id, version=old.version,
                              env_names=engine.settings.template_env)
        s = engine.session(tx, ex, plan)
        s.fresh = True
        s.begin({"args": args or None, "merge": inputs["merge"], "rerun_of": str(execution_id),
                 "overrides": overrides or None})
        s.flush()
        tx.add_lineage(ex.execution_id, execution_id, "rerun", overrides, [], ex.created_at)
        holder.append(s)
        return ex

    return _run(engine, go)


def resume(engine: Engine, execution_id: int, overrides: dict[str, Any] | None = None,
           merge: bool = False) -> ExecutionRow:
    """A new execution that reuses what a FAILED or CANCELLED one completed and runs on from
    where it stopped (module docstring); ``overrides`` go over its workload."""
    def go(tx: Tx, holder: list[Session]) -> ExecutionRow:
        old = _source(tx, execution_id)
        if old.status not in RESUMABLE:
            what = "is still " + str(old.status) if old.status not in EXECUTION_ENDED \
                else "completed: there is nothing to resume (re-run it instead)"
            raise Conflict(f"execution {execution_id} {what}; only a FAILED or CANCELLED "
                           "execution can be resumed")
        plan = plan_for(tx, old)
        rows = tx.get_steps(execution_id)
        frontier = _frontier(old, rows, plan.steps)
        kept = {n: r for n, r in rows.items() if n not in frontier
                and (r.status == StepStatus.COMPLETED or r.status == StepStatus.FAILED)}
        if not frontier and kept:
            raise Conflict(f"execution {execution_id}: no step to resume from (none failed or "
                           "was cancelled); re-run it instead")
        args = _combine(old.workload, overrides, merge)
        ex = create_execution(tx, plan, args, catalog_id=old.catalog_id, version=old.version,
                              env_names=engine.settings.template_env)
        ex.state.pop("start_error", None)  # every workload key is given: nothing is rendered
        s = engine.session(tx, ex, plan)
        s.fresh = True
        reused = [n for n in plan.order if n in kept and kept[n].status == StepStatus.COMPLETED]
        inputs = {"args": args, "merge": False, "resumed_from": str(execution_id),
                  "overrides": overrides or None, "reused": reused}
        if not kept:  # nothing finished: start from the beginning
            s.begin(inputs)
        else:
            edge_args = _last_args(tx, execution_id, frontier)
            s.begin(inputs, lambda s: _resume_in(s, old, rows, kept, frontier, edge_args))
        s.flush()
        tx.add_lineage(ex.execution_id, execution_id, "resume", overrides, reused,
                       ex.created_at)
        holder.append(s)
        return ex

    return _run(engine, go)


def _run(engine: Engine, go: Callable[[Tx, list[Session]], ExecutionRow]) -> ExecutionRow:
    holder: list[Session] = []

    def attempt(tx: Tx) -> ExecutionRow:
        holder.clear()
        return go(tx, holder)

    ex = engine._tx(attempt)
    engine._after(holder)
    return ex


def _frontier(old: ExecutionRow, rows: dict[str, StepRow], steps: dict[str, Any]) -> list[str]:
    """The steps to run again: those in flight when it ended, and the one whose failure ended
    it (in plan order)."""
    names = {n for n, r in rows.items() if r.status == StepStatus.CANCELLED}
    err = old.error if isinstance(old.error, dict) else {}
    if err.get("step") in steps:
        names.add(str(err["step"]))
    return [n for n in steps if n in names]


def _last_args(tx: Tx, execution_id: int, names: list[str]) -> dict[str, dict[str, Any]]:
    """The args each step was last activated with (its last ``step_started`` event)."""
    want = set(names)
    out: dict[str, dict[str, Any]] = {}
    since = 0
    while True:
        page = tx.get_events(execution_id, since, 5000, "step_started")
        for e in page:
            if e.node_name in want:
                ctx = e.context if isinstance(e.context, dict) else {}
                out[str(e.node_name)] = dict(ctx.get("args") or {})
        if len(page) < 5000:
            return out
        since = int(page[-1].seq or since)


def _resume_in(s: Session, old: ExecutionRow, rows: dict[str, StepRow],
               kept: dict[str, StepRow], frontier: list[str],
               edge_args: dict[str, dict[str, Any]]) -> None:
    src = str(old.execution_id)
    for name in s.plan.order:
        r = kept.get(name)
        if r is None:
            continue
        new = copy.copy(r)
        new.execution_id = s.eid
        new.active = 0
        new.arrivals = None
        s.rows[name] = new
        s.touch(new)
        s.emit(events.step_reused(s.eid, s.plan.step(name).type, r, src))
    st = s.ex.state
    if old.state.get("last") in kept:
        st["last"] = old.state["last"]
    for j in old.state.get("joins") or []:  # joins holding arrivals keep them
        held = rows.get(j)
        if held is not None and held.arrivals and j not in frontier:
            r = s.row(j)
            r.arrivals = copy.deepcopy(held.arrivals)
            s.touch(r)
            st["joins"].append(j)
    for name in frontier:
        ps = s.plan.step(name)
        args = edge_args.get(name, {})
        if ps.type == "iterator" and _resume_loop(s, ps, rows.get(name), args):
            continue
        s.activate(name, args)


def _resume_loop(s: Session, ps: PlanStep, old_row: StepRow | None,
                 edge_args: dict[str, Any]) -> bool:
    """Queue again only the items of the old loop run that did not complete; False when the
    loop should run again whole."""
    if old_row is None or not old_row.loop or (ps.task or {}).get("type") == "playbook":
        return False
    jobs = [j for j in s.tx.run_jobs(int(old_row.execution_id), ps.name, old_row.runs)
            if j.kind == JobKind.ITEM]
    done = {j.index: j for j in jobs if j.status == JobStatus.DONE}
    if not done:
        return False
    loop = old_row.loop
    r = s.row(ps.name)
    r.runs += 1
    r.input = edge_args or None
    r.started_at = now()
    move(r, StepStatus.QUEUED)
    r.active += 1
    s.active_inc(ps.name)
    s.touch(r)
    s.emit(events.step_started(s.eid, ps.name, ps.type, edge_args or None, r.runs,
                               reused_items=len(done)))
    args = step_args(s, ps, edge_args)
    conc = int(loop.get("concurrency") or 1)
    element = loop.get("element") or "item"
    r.loop = {"run": r.runs, "total": len(jobs), "done": len(done), "concurrency": conc,
              "element": element, "failed": False, "mode": loop.get("mode") or "sequential"}
    info = {"element": element, "total": len(jobs)}
    max_attempts = ps.item_retry.max_attempts if ps.item_retry else 1
    t = now()
    queued = 0
    for old in sorted(jobs, key=lambda j: j.index or 0):
        item = old.payload.get("item")
        reused_job = old.index in done
        job = Job(queue_id=new_id(), execution_id=s.eid, step=ps.name, run=r.runs,
                  kind=JobKind.ITEM, index=old.index,
                  payload={"item": item, "args": args, "loop": info},
                  status=JobStatus.DONE if reused_job
                  else JobStatus.QUEUED if queued < conc else JobStatus.WAITING,
                  max_attempts=max_attempts, available_at=t)
        if reused_job:  # created done: the old run's item, its result kept
            job.result = old.result
            job.attempts = old.attempts
            job.payload["reused_from"] = str(old.execution_id)
        else:
            queued += 1
        s.jobs.append(job)
    if queued == 0:  # every item had completed (the loop's save failed): finish it now
        results = [done[i].result for i in sorted(done, key=lambda x: x or 0)]
        if ps.save:
            s.jobs.append(Job(queue_id=new_id(), execution_id=s.eid, step=ps.name, run=r.runs,
                              kind=JobKind.SAVE, payload={"preset": results}, available_at=t))
        else:
            s.step_done(ps, r.runs, results, {"status": "success", "data": results}, 1)
    return True
