"""One constructor per event type: every event the engine writes is built here.

Each function builds the :class:`~noetl.domain.records.Event` of one
:class:`~noetl.domain.lifecycle.EventType`, with the status that type always carries and the
fields it fills, so a new kind of event is a new member of ``EventType`` and a new function
here (``tests/rules/test_events.py`` holds them to one each). ``eid`` is the execution's id.
"""

from __future__ import annotations

from typing import Any

from noetl.domain.lifecycle import EventType as T
from noetl.domain.records import Event, Job, StepRow
from noetl.domain.wire import Outcome
from noetl.ids import new_id

# the status each event type carries
STATUS: dict[T, str] = {
    T.EXECUTION_STARTED: "STARTED", T.WORKFLOW_INITIALIZED: "COMPLETED",
    T.STEP_STARTED: "RUNNING", T.ACTION_STARTED: "RUNNING", T.ACTION_COMPLETED: "COMPLETED",
    T.ACTION_FAILED: "FAILED", T.ACTION_RETRY: "RUNNING", T.STEP_RESULT: "COMPLETED",
    T.STEP_COMPLETED: "COMPLETED", T.STEP_FAILED: "FAILED", T.WARNING: "FAILED",
    T.STEP_REUSED: "COMPLETED",  # (the reused step's own status, see step_reused)
    T.WORKFLOW_COMPLETED: "COMPLETED", T.WORKFLOW_FAILED: "FAILED",
    T.EXECUTION_COMPLETED: "COMPLETED", T.EXECUTION_FAILED: "FAILED",
    T.EXECUTION_CANCELLED: "CANCELLED", T.NOTIFICATION_SENT: "COMPLETED",
    T.NOTIFICATION_FAILED: "FAILED",
}


def _event(eid: int, type_: T, node: str | None, node_type: str | None,
           status: str | None = None, **kw: Any) -> Event:
    return Event(execution_id=eid, event_id=new_id(), event_type=type_,
                 status=status or STATUS[type_], node_name=node, node_type=node_type, **kw)


# -- the execution ---------------------------------------------------------------------------
def execution_started(eid: int, path: str, version: str | None, workload: dict[str, Any],
                      parent_execution_id: int | None,
                      inputs: dict[str, Any] | None = None) -> Event:
    """``inputs``: more it records (the caller's args, lineage, what triggered it)."""
    return _event(eid, T.EXECUTION_STARTED, path, "execution", context={
        "path": path, "version": version, "workload": workload,
        "parent_execution_id": None if parent_execution_id is None else str(parent_execution_id),
        **(inputs or {})})


def workflow_initialized(eid: int, step_count: int, transition_count: int) -> Event:
    return _event(eid, T.WORKFLOW_INITIALIZED, "workflow", "workflow",
                  context={"step_count": step_count, "transition_count": transition_count})


def workflow_completed(eid: int) -> Event:
    return _event(eid, T.WORKFLOW_COMPLETED, "workflow", "workflow")


def workflow_failed(eid: int, message: str) -> Event:
    return _event(eid, T.WORKFLOW_FAILED, "workflow", "workflow", error=message)


def execution_completed(eid: int, path: str, result: Any) -> Event:
    return _event(eid, T.EXECUTION_COMPLETED, path, "execution", result=result)


def execution_failed(eid: int, path: str, info: dict[str, Any]) -> Event:
    return _event(eid, T.EXECUTION_FAILED, path, "execution", error=info["message"],
                  error_type=info.get("type"), stack_trace=info.get("traceback"),
                  result={"error": info})


def execution_cancelled(eid: int, path: str, reason: str) -> Event:
    return _event(eid, T.EXECUTION_CANCELLED, path, "execution", error=reason)


# -- steps -----------------------------------------------------------------------------------
def step_started(eid: int, step: str, node_type: str | None, args: dict[str, Any] | None,
                 run: int, reused_items: int | None = None) -> Event:
    """``reused_items``: a resumed loop's items kept from the old run."""
    context: dict[str, Any] = {"args": args, "run": run}
    if reused_items is not None:
        context["reused_items"] = reused_items
    return _event(eid, T.STEP_STARTED, step, node_type, context=context)


def step_result(eid: int, step: str, node_type: str | None, result: Any) -> Event:
    return _event(eid, T.STEP_RESULT, step, node_type, result=result)


def step_completed(eid: int, step: str, node_type: str | None,
                   duration: float | None = None) -> Event:
    return _event(eid, T.STEP_COMPLETED, step, node_type, duration=duration)


def step_failed(eid: int, step: str, node_type: str | None, info: dict[str, Any]) -> Event:
    return _event(eid, T.STEP_FAILED, step, node_type, error=info["message"],
                  error_type=info.get("type"), stack_trace=info.get("traceback"))


def step_reused(eid: int, node_type: str | None, row: StepRow, from_execution_id: str) -> Event:
    """A resume keeps the step ``row`` of execution ``from_execution_id``: with its status
    and result."""
    return _event(eid, T.STEP_REUSED, row.step, node_type, status=str(row.status),
                  result=row.result if row.has_result else None, attempt=row.attempts or None,
                  context={"from_execution_id": from_execution_id, "status": str(row.status),
                           "runs": row.runs, "attempts": row.attempts, "error": row.error})


def warning(eid: int, step: str, node_type: str | None, error: str, error_type: str) -> Event:
    return _event(eid, T.WARNING, step, node_type, error=error, error_type=error_type)


# -- jobs (a step's action, a loop item, a save) ---------------------------------------------
def action_started(eid: int, job: Job, node_type: str | None, worker_id: str) -> Event:
    return _event(eid, T.ACTION_STARTED, job.step, node_type, attempt=job.attempts,
                  current_index=job.index, worker_id=worker_id,
                  context={"attempt": job.attempts, "worker_id": worker_id})


def action_completed(eid: int, job: Job, node_type: str | None, outcome: Outcome,
                     result: Any, meta: Any) -> Event:
    return _event(eid, T.ACTION_COMPLETED, job.step, node_type, result=result,
                  attempt=job.attempts, current_index=job.index,
                  duration=outcome.get("duration"), worker_id=job.worker_id, meta=meta)


def action_failed(eid: int, job: Job, node_type: str | None, outcome: Outcome,
                  meta: Any) -> Event:
    err = outcome.get("error") or {}
    return _event(eid, T.ACTION_FAILED, job.step, node_type,
                  error=str(err.get("message") or "step failed"), error_type=err.get("type"),
                  stack_trace=err.get("traceback"), result=outcome.get("envelope"),
                  attempt=job.attempts, current_index=job.index,
                  duration=outcome.get("duration"), worker_id=job.worker_id, meta=meta)


def action_retry(eid: int, job: Job, node_type: str | None, attempt: int,
                 context: dict[str, Any], meta: dict[str, Any] | None = None) -> Event:
    """``attempt``: the attempt that ended; ``context`` says why and what comes next;
    ``meta``: after a lease expiry, the worker that lost the job (``lost_worker_id``)."""
    return _event(eid, T.ACTION_RETRY, job.step, node_type, attempt=attempt,
                  current_index=job.index, context=context, meta=meta)


# -- after the end: the server's notifier (noetl.triggers.notify) -----------------------------
def notification_sent(eid: int, context: dict[str, Any], attempt: int) -> Event:
    return _event(eid, T.NOTIFICATION_SENT, "notify", "notification", context=context,
                  attempt=attempt)


def notification_failed(eid: int, context: dict[str, Any], error: str | None,
                        attempt: int) -> Event:
    return _event(eid, T.NOTIFICATION_FAILED, "notify", "notification", context=context,
                  error=error, attempt=attempt)
