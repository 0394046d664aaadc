"""Endings: an execution completes, fails or is cancelled.

Failing or cancelling stops its work (steps in flight end ``CANCELLED``, its queued, waiting
and child jobs are cancelled, its running children are cancelled too); any ending puts its
notifications in the outbox and tells its parent (:func:`noetl.engine.children.notify_parent`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from noetl.domain.lifecycle import JOB_UNFINISHED, ExecutionStatus, JobStatus, StepStatus, move
from noetl.domain.records import error_info, now
from noetl.engine import children, events
from noetl.engine.triggers import enqueue_notifications

if TYPE_CHECKING:
    from noetl.engine.unit import Unit


def final_result(s: Unit) -> Any:
    last = s.ex.state.get("last")
    if not last:
        return None
    return s.results({last}).get(last)


def complete_execution(s: Unit) -> None:
    result = final_result(s)
    s.emit(events.workflow_completed(s.eid))
    s.emit(events.execution_completed(s.eid, s.plan.path, result))
    move(s.ex, ExecutionStatus.COMPLETED)
    s.ex.result = result
    s.ex.ended_at = now()
    _notify_parent(s)


def fail_execution(s: Unit, info: dict[str, Any]) -> None:
    if s.ex.terminal:
        return
    _stop_work(s)
    s.emit(events.workflow_failed(s.eid, info["message"]))
    s.emit(events.execution_failed(s.eid, s.plan.path, info))
    move(s.ex, ExecutionStatus.FAILED)
    s.ex.error = info
    s.ex.ended_at = now()
    _notify_parent(s)


def cancel_execution(s: Unit, reason: str = "cancelled on request") -> None:
    if s.ex.terminal:
        return
    _stop_work(s)
    s.emit(events.execution_cancelled(s.eid, s.plan.path, reason))
    move(s.ex, ExecutionStatus.CANCELLED)
    s.ex.error = error_info(reason, "Cancelled")
    s.ex.ended_at = now()
    _notify_parent(s)


def _stop_work(s: Unit) -> None:
    active = s.ex.state.get("active") or {}
    if active:  # steps with work in flight end CANCELLED, not RUNNING forever
        s.prefetch(set(active))
        t = now()
        for name in list(active):
            r = s.rows[name]
            if r.status not in (StepStatus.COMPLETED, StepStatus.FAILED):
                move(r, StepStatus.CANCELLED)
                r.ended_at = t
            r.active = 0
            s.touch(r)
        active.clear()
    for job in s.tx.cancel_jobs(s.eid):
        pending = s.job_updates.get(job.queue_id)
        if pending is not None and pending.status in (JobStatus.DONE, JobStatus.DEAD):
            continue  # the job whose outcome ends the execution keeps it (written below)
        s.job_updates.pop(job.queue_id, None)
    for j in s.jobs:  # not written yet; one that already ended keeps its end
        if j.status in JOB_UNFINISHED:
            move(j, JobStatus.CANCELLED)
    for pending in list(s.job_updates.values()):
        if pending.status in (JobStatus.QUEUED, JobStatus.WAITING, JobStatus.CHILD):
            move(pending, JobStatus.CANCELLED)
    for child in s.tx.children(s.eid):
        if child.terminal:
            continue
        full = s.tx.get_execution(child.execution_id, lock=True)
        if full is None or full.terminal:
            continue
        cs = s.open(full)
        cs.parent_session = s
        cancel_execution(cs, "parent execution ended")
        s.after.append(cs)


def _notify_parent(s: Unit) -> None:
    """The execution has just ended: its notifications to the outbox, then its parent."""
    enqueue_notifications(s)
    children.notify_parent(s)
