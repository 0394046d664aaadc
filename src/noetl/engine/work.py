"""The work package a worker receives with a leased job: everything needed to run it.

Built at lease time from the job row, the plan and only the step results the step's templates
reference, so a worker needs no further round trip (and no database) to render and run it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from noetl.domain.records import ExecutionRow, Job
from noetl.domain.wire import Work
from noetl.engine.prefetch import first_reads
from noetl.engine.scope import item_context
from noetl.plan import Plan

if TYPE_CHECKING:
    from noetl.store.base import Tx


def build_work(tx: Tx, ex: ExecutionRow, plan: Plan, job: Job,
               results_of: Callable[[frozenset[str]], dict[str, Any]] | None = None
               ) -> Work:
    """``results_of``: where to read step results (a session's rows); default the store."""
    ps = plan.step(job.step)
    refs = ps.item_refs if job.kind == "item" else ps.refs
    if not refs:
        results: dict[str, Any] = {}
    elif results_of is not None:
        results = results_of(refs)
    else:
        results = tx.step_results(ex.execution_id, refs)
    extra: dict[str, Any] = {}
    save = ps.save
    timeout = ps.timeout
    if job.kind == "item":
        action = dict(ps.task or {})
        args = dict(action.get("args") or {})  # with/input/payload/data: merged by the plan
        save = action.get("save") if isinstance(action.get("save"), dict) else None
        timeout = action.get("timeout") or timeout
        info = job.payload.get("loop")
        if info is None:  # queued before items carried it
            row = tx.get_steps(ex.execution_id, [ps.name]).get(ps.name)
            info = row.loop if row else None
        # the loop step's own args are bare names in its task's templates, under the loop's
        extra = {**(job.payload.get("args") or {}),
                 **item_context(ps, job.index, job.payload.get("item"), info)}
        edge_args: dict[str, Any] = {}
    else:
        action = dict(ps.action)
        args = dict(ps.args)
        edge_args = dict(job.payload.get("args") or {})
    work: Work = {
        "job_id": str(job.queue_id), "execution_id": str(ex.execution_id), "step": job.step,
        "run": job.run, "kind": job.kind, "index": job.index, "attempt": job.attempts,
        "lease_until": job.lease_until, "action": action, "args": args,
        "edge_args": edge_args, "save": save, "timeout": timeout,
        "ctx": {"workload": ex.workload, "execution_id": str(ex.execution_id),
                "results": results, "extra": extra},
        "path": ex.path,
    }
    work["reads"] = sorted(first_reads(plan, job.step))
    code_line = ps.item_code_line if job.kind == "item" else ps.code_line
    if code_line:  # a python traceback then names the YAML file's lines
        work["code_at"] = [plan.source, code_line]
    if job.payload.get("expiries"):  # a worker was lost running it: tools may isolate it
        work["lease_expiries"] = job.payload["expiries"]
    if "preset" in job.payload:  # a loop's save, or a sub-playbook step's save: no tool runs
        work["preset"] = job.payload.get("preset")
        work["preset_meta"] = job.payload.get("preset_meta")
        work["action"] = {"type": "noop"}
        if ps.type == "iterator" and job.kind == "save":
            work["loop_save"] = True
    return work
