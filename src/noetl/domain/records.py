"""Row types shared by the engine and every store backend (statuses: :mod:`noetl.domain.lifecycle`)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from noetl.domain.lifecycle import (
    EXECUTION_ENDED,
    ExecutionStatus,
    JobKind,
    JobStatus,
    StepStatus,
)
from noetl.errors import user_details


def now() -> float:
    return time.time()


@dataclass
class Event:
    """One entry of an execution's event log (``seq``: the store's order of all events)."""

    execution_id: int
    event_id: int
    event_type: str
    status: str
    node_name: str | None = None
    node_type: str | None = None
    parent_event_id: int | None = None
    context: Any = None
    result: Any = None
    error: str | None = None
    error_type: str | None = None
    stack_trace: str | None = None
    meta: Any = None
    attempt: int | None = None
    current_index: int | None = None
    duration: float | None = None
    worker_id: str | None = None
    created_at: float = field(default_factory=now)
    seq: int | None = None  # store-assigned global order

    def to_dict(self) -> dict[str, Any]:
        return {
            "event_id": str(self.event_id), "execution_id": str(self.execution_id),
            "seq": self.seq, "event_type": self.event_type, "status": self.status,
            "node_name": self.node_name, "node_type": self.node_type,
            "parent_event_id": None if self.parent_event_id is None else str(self.parent_event_id),
            "context": self.context, "result": self.result, "error": self.error,
            "error_type": self.error_type, "stack_trace": self.stack_trace, "meta": self.meta,
            "attempt": self.attempt, "current_index": self.current_index,
            "duration": self.duration, "worker_id": self.worker_id, "created_at": self.created_at,
        }


@dataclass
class Job:
    """A row of the job queue: one run of a step, one loop item, or a loop's save."""

    queue_id: int
    execution_id: int
    step: str
    run: int  # which activation of the step (loops back make several)
    kind: JobKind = JobKind.STEP
    index: int | None = None  # loop item index
    payload: dict[str, Any] = field(default_factory=dict)
    status: JobStatus = JobStatus.QUEUED
    priority: int = 50
    attempts: int = 0
    max_attempts: int = 1
    available_at: float = 0.0
    lease_until: float | None = None
    worker_id: str | None = None
    last_heartbeat: float | None = None
    result: Any = None
    created_at: float = field(default_factory=now)
    updated_at: float = field(default_factory=now)

    def to_dict(self) -> dict[str, Any]:
        return {
            "queue_id": str(self.queue_id), "execution_id": str(self.execution_id),
            "step": self.step, "run": self.run, "kind": self.kind, "index": self.index,
            "status": str(self.status), "priority": self.priority, "attempts": self.attempts,
            "max_attempts": self.max_attempts, "available_at": self.available_at,
            "lease_until": self.lease_until, "worker_id": self.worker_id,
            "last_heartbeat": self.last_heartbeat, "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


@dataclass
class StepRow:
    """Current state of one step of one execution, kept beside the event log."""

    execution_id: int
    step: str
    status: StepStatus = StepStatus.PENDING
    result: Any = None
    error: Any = None
    attempts: int = 0
    runs: int = 0
    active: int = 0
    started_at: float | None = None
    ended_at: float | None = None
    loop: dict[str, Any] | None = None  # {run, total, done, next, concurrency, failed}
    arrivals: list[Any] | None = None  # pending join arrivals (edge args)
    input: Any = None
    has_result: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "step": self.step, "status": str(self.status), "result": self.result,
            "error": self.error, "attempts": self.attempts, "runs": self.runs,
            "active": self.active, "started_at": self.started_at, "ended_at": self.ended_at,
            "loop": self.loop, "input": self.input,
            "duration": (self.ended_at - self.started_at)
            if self.started_at is not None and self.ended_at is not None else None,
        }


@dataclass
class ExecutionRow:
    """One execution: its playbook snapshot, workload, status, state and result."""

    execution_id: int
    path: str
    version: str | None
    status: ExecutionStatus
    playbook: dict[str, Any]
    workload: dict[str, Any]
    catalog_id: int | None = None
    parent_execution_id: int | None = None
    parent_job_id: int | None = None
    result: Any = None
    error: Any = None
    state: dict[str, Any] = field(default_factory=dict)  # {active: {step: n}, joins: [..], last}
    created_at: float = field(default_factory=now)
    ended_at: float | None = None
    updated_at: float = field(default_factory=now)

    @property
    def terminal(self) -> bool:
        return self.status in EXECUTION_ENDED

    def to_dict(self) -> dict[str, Any]:
        return {
            "execution_id": str(self.execution_id), "path": self.path, "version": self.version,
            "catalog_id": None if self.catalog_id is None else str(self.catalog_id),
            "status": str(self.status), "result": self.result, "error": self.error,
            "parent_execution_id": None if self.parent_execution_id is None
            else str(self.parent_execution_id),
            "start_time": self.created_at, "end_time": self.ended_at,
            "duration": (self.ended_at - self.created_at) if self.ended_at else None,
        }


@dataclass
class CatalogEntry:
    """One registered version of a playbook in the catalog."""

    catalog_id: int
    path: str
    version: int
    kind: str
    content: str
    payload: dict[str, Any]
    created_at: float = field(default_factory=now)
    meta: dict[str, Any] = field(default_factory=dict)

    def to_dict(self, with_content: bool = True) -> dict[str, Any]:
        d: dict[str, Any] = {
            "catalog_id": str(self.catalog_id), "path": self.path, "version": self.version,
            "kind": self.kind, "created_at": self.created_at, "meta": self.meta,
        }
        if with_content:
            d["content"] = self.content
            d["payload"] = self.payload
        return d


@dataclass
class Credential:
    """A stored credential (``data``: its secret fields, empty where only listed)."""

    name: str
    type: str
    data: dict[str, Any]
    description: str | None = None
    tags: list[str] = field(default_factory=list)
    created_at: float = field(default_factory=now)
    updated_at: float = field(default_factory=now)

    def public(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "description": self.description,
                "tags": self.tags, "created_at": self.created_at, "updated_at": self.updated_at}


def error_info(message: str, type_: str = "Error", traceback: str | None = None,
               step: str | None = None) -> dict[str, Any]:
    """The error a step or execution row records (and an execution's result carries)."""
    return {"message": message, "type": type_, "traceback": traceback, "step": step}


def exc_info(exc: BaseException, step: str | None = None) -> dict[str, Any]:
    """The error record of an engine-side error (a template in an edge, a loop's collection):
    with the field and template of a template error (:func:`noetl.errors.user_details`)."""
    return {**error_info(str(exc), type(exc).__name__, step=step), **user_details(exc)}
