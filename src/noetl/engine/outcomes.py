"""Outcomes: a job's report recorded, and what it does to its step.

A job that succeeded completes its step (or its loop item) and fires the step's edges; one that
failed runs again if its retry policy says so (:mod:`noetl.engine.retry`), else fails its step,
which fires the step's failure edges or fails the execution.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from noetl.domain.lifecycle import JobKind, JobStatus, StepStatus, move
from noetl.domain.records import Job, error_info, exc_info, now
from noetl.domain.wire import Outcome
from noetl.engine import events, loops
from noetl.engine.endings import fail_execution
from noetl.engine.flow import route, settle
from noetl.engine.retry import decide, policy_of, should_retry
from noetl.errors import USER_KEYS, NoetlError
from noetl.plan import PlanStep

if TYPE_CHECKING:
    from noetl.engine.unit import Unit


def job_succeeded(s: Unit, job: Job, outcome: Outcome) -> None:
    data = outcome.get("data")
    move(job, JobStatus.DONE)
    job.lease_until = None
    job.result = data if job.kind == JobKind.ITEM else None
    s.update_job(job)
    ps = s.plan.step(job.step)
    s.prefetch({ps.name} | {e.target for e in ps.edges})
    s.emit(events.action_completed(s.eid, job, ps.type, outcome,
                                   outcome.get("envelope", data), outcome.get("meta")))
    if job.kind == JobKind.ITEM:
        loops.item_done(s, ps, job)
        return
    if outcome.get("input") is not None:
        s.row(ps.name).input = outcome["input"]
    step_done(s, ps, job.run, data, outcome.get("envelope", data), job.attempts)


def step_done(s: Unit, ps: PlanStep, run: int, data: Any, envelope: Any, attempts: int) -> None:
    r = s.row(ps.name)
    move(r, StepStatus.COMPLETED)
    r.result = data
    r.has_result = True
    r.error = None
    r.attempts = attempts
    r.active = max(0, r.active - 1)
    r.ended_at = now()
    s.touch(r)
    s.active_inc(ps.name, -1)
    s.emit(events.step_result(s.eid, ps.name, ps.type, data))
    s.emit(events.step_completed(s.eid, ps.name, ps.type,
                                 (r.ended_at - r.started_at) if r.started_at else None))
    if s.ex.terminal:
        return
    if data is not None:
        s.ex.state["last"] = ps.name  # the execution's result: the last step with one
    try:
        route(s, ps, data, envelope)
    except NoetlError as exc:
        fail_execution(s, exc_info(exc, step=ps.name))
        return
    settle(s)


def job_failed(s: Unit, job: Job, outcome: Outcome) -> None:
    ps = s.plan.step(job.step)
    err = outcome.get("error") or {}
    message = str(err.get("message") or "step failed")
    s.emit(events.action_failed(s.eid, job, ps.type, outcome, outcome.get("meta")))
    policy = policy_of(ps, job)
    d = decide(policy, job.attempts, outcome, now=now(), ended=s.ex.terminal,
               wanted=lambda p: should_retry(s, ps, p, job, outcome, message))
    if d.note:
        message += d.note
        err = {**err, "message": message}
    if d.retry and policy is not None:  # (an error is retried only under a policy)
        move(job, JobStatus.QUEUED)
        job.available_at = d.at
        job.lease_until = None
        job.worker_id = None
        s.update_job(job)
        s.emit(events.action_retry(s.eid, job, ps.type, job.attempts, {
            "attempt": job.attempts, "next_attempt": job.attempts + 1,
            "max_attempts": policy.max_attempts, "delay": d.delay, "error": message}))
        return
    move(job, JobStatus.DEAD)
    job.lease_until = None
    s.update_job(job)
    if job.kind == JobKind.STEP and outcome.get("input") is not None:
        s.row(ps.name).input = outcome["input"]
    info = error_info(message, str(err.get("type") or "Error"), err.get("traceback"), job.step)
    details: dict[str, Any] = dict(err)
    info.update({k: details[k] for k in USER_KEYS if details.get(k)})  # field, template, …
    if job.index is not None:
        info["index"] = job.index
    step_failed(s, ps, info, job.attempts, outcome.get("envelope"))


def record_late(s: Unit, job: Job, outcome: Outcome) -> None:
    """The outcome of a job that ran on after its execution ended: recorded, nothing more."""
    ps = s.plan.step(job.step)
    meta = {**(outcome.get("meta") or {}), "late": True, "execution_status": str(s.ex.status)}
    if outcome.get("status") == "ok":
        s.emit(events.action_completed(s.eid, job, ps.type, outcome,
                                       outcome.get("envelope"), meta))
    else:
        s.emit(events.action_failed(s.eid, job, ps.type, outcome, meta))


def step_failed(s: Unit, ps: PlanStep, info: dict[str, Any], attempts: int,
                envelope: Any = None) -> None:
    r = s.row(ps.name)
    was_active = r.active > 0
    move(r, StepStatus.FAILED)
    r.error = info
    r.attempts = attempts
    r.active = max(0, r.active - 1)
    r.ended_at = now()
    s.touch(r)
    if was_active:
        s.active_inc(ps.name, -1)
    s.emit(events.step_failed(s.eid, ps.name, ps.type, info))
    if s.ex.terminal:
        return
    if ps.type == "iterator":
        loops.abort_loop(s, ps, r)
    if ps.error_edges:
        try:
            fired = route(s, ps, envelope, envelope, error=info)
        except NoetlError as exc:
            fail_execution(s, exc_info(exc, step=ps.name))
            return
        if fired:
            settle(s)
            return
    fail_execution(s, info)
