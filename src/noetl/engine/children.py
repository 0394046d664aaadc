"""Sub-playbooks: the parent step waits, without a worker slot, for its child execution."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from noetl.domain.lifecycle import ExecutionStatus, JobKind, JobStatus, move
from noetl.domain.records import Job, StepRow, exc_info, now
from noetl.domain.wire import Outcome
from noetl.dsl.loader import build_playbook, parse_playbook
from noetl.engine.executions import create_execution
from noetl.engine.plans import catalog_plan
from noetl.engine.scope import item_context, step_args
from noetl.errors import NoetlError
from noetl.ids import new_id
from noetl.plan import PlanStep, compile_plan
from noetl.templates import render, tool_context

if TYPE_CHECKING:
    from noetl.engine.unit import Unit


def _target(session: Unit, ps: PlanStep, args: dict[str, Any], index: int | None,
            item_ctx: dict[str, Any] | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """The child's config and workload args. ``args``: the step's incoming edge args, or for a
    loop item the loop step's rendered args (bare names in the item's templates)."""
    where = f"step '{ps.name}'" + (f" item {index}" if index is not None else "")
    if index is None:
        action = ps.action
        ctx = session.ctx(ps.refs)
        child_args = step_args(session, ps, args)
    else:
        action = ps.task or ps.action
        extra = dict(args)
        if item_ctx is not None:
            extra.update(item_context(ps, index, item_ctx.get("item"), session.row(ps.name).loop))
        ctx = session.ctx(ps.item_refs, extra)
        child_args = render(dict(action.get("args") or {}), ctx, where + " → args")
    # an inline child's `content` is the child's own playbook: its templates are the child's
    cfg = render({k: v for k, v in action.items()
                  if k not in ("next", "save", "retry", "content", "args")},
                 tool_context(ctx, child_args), where)
    return cfg, child_args


def start_child(session: Unit, ps: PlanStep, r: StepRow, args: dict[str, Any],
                index: int | None, item_ctx: dict[str, Any] | None,
                job: Job | None = None) -> None:
    kind = JobKind.ITEM if index is not None else JobKind.STEP
    if job is None:
        job = Job(queue_id=new_id(), execution_id=session.eid, step=ps.name, run=r.runs,
                  kind=kind, index=index, payload={"args": args, **(item_ctx or {})},
                  status=JobStatus.CHILD, available_at=now())
        session.jobs.append(job)
    else:
        move(job, JobStatus.CHILD)
        session.update_job(job)
    try:
        cfg, child_args = _target(session, ps, args, index, item_ctx)
        path = cfg.get("path") or cfg.get("resource_path") or cfg.get("playbook_path")
        version = cfg.get("version")
        if version in (None, "", "latest"):
            version = None
        tx = session.tx
        source = ps.task if index is not None and ps.task else ps.action
        if source.get("content"):
            content = source["content"]
            where_child = f"step '{ps.name}' → content"  # a YAML error is a PlaybookError
            plan = compile_plan(build_playbook(content, where_child) if isinstance(content, dict)
                                else parse_playbook(str(content), where_child))
            catalog_id, ver = None, None
        else:
            entry = tx.get_catalog(path=str(path), version=int(version) if version else None)
            if entry is None:
                raise NoetlError(f"step '{ps.name}': playbook '{path}'"
                                 + (f" version {version}" if version else "")
                                 + " is not in the catalog")
            plan = catalog_plan(entry)  # as a top-level run of it: tracebacks name its lines
            catalog_id, ver = entry.catalog_id, str(entry.version)
    except NoetlError as exc:
        move(job, JobStatus.DEAD)
        session.update_job(job)
        session.step_failed(ps, exc_info(exc, step=ps.name), 0)
        return
    child = create_execution(tx, plan, child_args, merge=True, catalog_id=catalog_id,
                             version=ver, parent_execution_id=session.eid,
                             parent_job_id=job.queue_id, return_step=cfg.get("return_step"),
                             env_names=session.settings.template_env)
    job.payload["child"] = str(child.execution_id)
    cs = session.open(child, plan)
    cs.fresh = True
    cs.parent_session = session
    cs.begin()
    session.after.append(cs)
    if child.terminal:
        _apply_child_outcome(session, job, cs)


def start_child_for_job(session: Unit, ps: PlanStep, r: StepRow, job: Job) -> None:
    start_child(session, ps, r, job.payload.get("args") or {}, job.index,
                {"item": job.payload.get("item")}, job=job)


def child_outcome(cs: Unit) -> Outcome:
    ex = cs.ex
    if ex.status == ExecutionStatus.COMPLETED:
        rs = ex.state.get("return_step")
        data = cs.results({rs}).get(rs) if rs else ex.result
        return {"data": data, "envelope": {"status": "success", "data": data,
                                           "meta": {"child_execution_id": str(ex.execution_id)}}}
    err = ex.error or {}
    return {"final": True, "error": {
        "message": f"child execution {ex.execution_id} {str(ex.status).lower()}: "
                   f"{err.get('message', '')}",
        "type": err.get("type") or "ChildFailed", "traceback": err.get("traceback")},
        "envelope": {"status": "error", "meta": {"child_execution_id": str(ex.execution_id)}}}


def _save_of(parent: Unit, job: Job) -> dict[str, Any] | None:
    ps = parent.plan.step(job.step)
    if job.kind == JobKind.ITEM:
        save = (ps.task or {}).get("save")
        return save if isinstance(save, dict) else None
    return ps.save


def _apply_child_outcome(parent: Unit, job: Job, cs: Unit) -> None:
    outcome = child_outcome(cs)
    job.attempts = max(job.attempts, 1)
    if cs.ex.status != ExecutionStatus.COMPLETED:
        parent.job_failed(job, outcome)
        return
    if _save_of(parent, job) is not None:
        # the step's save runs on a worker like any other: queue the job with the child's
        # result as its output; its report completes the step (or the loop item)
        move(job, JobStatus.QUEUED)
        job.available_at = now()
        job.attempts = 0
        job.payload["preset"] = outcome["data"]
        job.payload["preset_meta"] = outcome["envelope"].get("meta")
        parent.update_job(job)
        return
    parent.job_succeeded(job, outcome)


def notify_parent(cs: Unit) -> None:
    ex = cs.ex
    if ex.parent_job_id is None or ex.parent_execution_id is None:
        return
    if cs.parent_session is not None:
        return  # the parent session started (or is cancelling) this child and handles it
    tx = cs.tx
    pex = tx.get_execution(ex.parent_execution_id, lock=True)
    job = tx.get_job(ex.parent_job_id, lock=True)
    if pex is None or job is None or job.status != JobStatus.CHILD:
        return
    parent = cs.open(pex)
    _apply_child_outcome(parent, job, cs)
    cs.after.append(parent)
