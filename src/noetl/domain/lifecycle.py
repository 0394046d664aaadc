"""The lifecycle of executions, steps and jobs, in one place: their statuses, the moves between
them, and the kinds of job and event.

Every status change goes through :func:`move`, which refuses a move its table lacks (an
engine bug: :class:`IllegalMove`). The store's SQL moves rows too (leasing, releasing waiting
loop items, cancelling); it declares each of those as a :func:`check`-ed set of moves, and a
contract test (``tests/contract/test_lifecycle_moves.py``) runs them on both backends against
these tables.

Execution::

    PENDING ──▶ RUNNING ──▶ COMPLETED | FAILED | CANCELLED

Step (a row per step of an execution; a step may run several times: loops back, several
arrivals, error routing)::

    PENDING ──▶ QUEUED ──▶ RUNNING ──▶ COMPLETED | FAILED        (an action step)
    PENDING ──▶ COMPLETED                                        (a router: no action)
    QUEUED | RUNNING ──▶ CANCELLED                               (its execution ended)
    COMPLETED | FAILED ──▶ QUEUED                                (activated again)

Job (a queue row: one run of a step, one loop item, or a loop's save)::

    new ──▶ queued ──▶ leased ──▶ done | dead      (new ──▶ done: an item a resume reuses)
    new ──▶ waiting ──▶ queued                (a loop item beyond the concurrency limit)
    new | queued ──▶ child ──▶ done | dead | queued   (a sub-playbook runs for it)
    leased ──▶ queued                         (a retry, or given back unrun)
    leased ──▶ leased                         (its lease expired: leased again)
    queued | waiting | leased | child ──▶ cancelled

Notification (an outbox row: one message to one target about an ended execution)::

    pending ──▶ delivered | failed            (pending ──▶ pending: an attempt to retry)

Worker (a row of the worker registry)::

    running ──▶ stopped ──▶ running           (the same id started again)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Any, Protocol, TypeVar


class ExecutionStatus(StrEnum):
    PENDING = "PENDING"  # the row is written; only inside the transaction that starts it
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


class StepStatus(StrEnum):
    PENDING = "PENDING"  # not activated yet (no row is stored for it)
    QUEUED = "QUEUED"  # activated: its job, loop items or child execution wait
    RUNNING = "RUNNING"  # a worker holds its job (a loop: one of its items)
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"  # work was in flight when its execution ended
    SKIPPED = "SKIPPED"  # never stored: how a step that never ran shows once its execution ended


class JobStatus(StrEnum):
    QUEUED = "queued"  # ready (or delayed by available_at)
    WAITING = "waiting"  # held back (sequential loop items, concurrency gates)
    LEASED = "leased"  # a worker holds it until lease_until
    CHILD = "child"  # a sub-playbook is running for it; not leasable
    DONE = "done"
    DEAD = "dead"  # failed with no retry left
    CANCELLED = "cancelled"


class NotificationStatus(StrEnum):
    PENDING = "pending"  # due at next_attempt_at
    DELIVERED = "delivered"
    FAILED = "failed"  # no attempt left


class WorkerStatus(StrEnum):
    RUNNING = "running"  # heartbeating (or silent: the registry tells by last_seen)
    STOPPED = "stopped"  # stopped cleanly


class JobKind(StrEnum):
    STEP = "step"  # one run of an action step
    ITEM = "item"  # one loop item
    SAVE = "save"  # a loop's save, run once on the list of item results


class EventType(StrEnum):
    EXECUTION_STARTED = "execution_started"
    WORKFLOW_INITIALIZED = "workflow_initialized"
    STEP_STARTED = "step_started"
    ACTION_STARTED = "action_started"
    ACTION_COMPLETED = "action_completed"
    ACTION_FAILED = "action_failed"
    ACTION_RETRY = "action_retry"
    STEP_RESULT = "step_result"
    STEP_COMPLETED = "step_completed"
    STEP_FAILED = "step_failed"
    STEP_REUSED = "step_reused"  # a resume keeps a step the old execution finished
    WARNING = "warning"
    WORKFLOW_COMPLETED = "workflow_completed"
    WORKFLOW_FAILED = "workflow_failed"
    EXECUTION_COMPLETED = "execution_completed"
    EXECUTION_FAILED = "execution_failed"
    EXECUTION_CANCELLED = "execution_cancelled"
    NOTIFICATION_SENT = "notification_sent"  # the server's notifier, after the end
    NOTIFICATION_FAILED = "notification_failed"


E, S, J = ExecutionStatus, StepStatus, JobStatus

EXECUTION_MOVES: Mapping[ExecutionStatus, frozenset[ExecutionStatus]] = {
    E.PENDING: frozenset({E.RUNNING}),
    E.RUNNING: frozenset({E.COMPLETED, E.FAILED, E.CANCELLED}),
    E.COMPLETED: frozenset(),
    E.FAILED: frozenset(),
    E.CANCELLED: frozenset(),
}

_RUN_AGAIN = frozenset({S.QUEUED, S.COMPLETED, S.FAILED})  # activated again, or another run ends
STEP_MOVES: Mapping[StepStatus, frozenset[StepStatus]] = {
    S.PENDING: frozenset({S.QUEUED, S.COMPLETED}),  # COMPLETED: a router
    S.QUEUED: _RUN_AGAIN | {S.RUNNING, S.CANCELLED},
    S.RUNNING: _RUN_AGAIN | {S.CANCELLED},
    S.COMPLETED: _RUN_AGAIN,
    S.FAILED: _RUN_AGAIN,
    S.CANCELLED: frozenset(),
    S.SKIPPED: frozenset(),
}

# the statuses a job is created with (done: a loop item a resume reuses from the old run)
JOB_NEW = frozenset({J.QUEUED, J.WAITING, J.CHILD, J.DONE})
JOB_MOVES: Mapping[JobStatus, frozenset[JobStatus]] = {
    J.QUEUED: frozenset({J.LEASED, J.CHILD, J.CANCELLED}),
    J.WAITING: frozenset({J.QUEUED, J.CANCELLED}),
    J.LEASED: frozenset({J.LEASED, J.QUEUED, J.DONE, J.DEAD, J.CANCELLED}),
    J.CHILD: frozenset({J.QUEUED, J.DONE, J.DEAD, J.CANCELLED}),
    J.DONE: frozenset(),
    J.DEAD: frozenset(),
    J.CANCELLED: frozenset(),
}

N, W = NotificationStatus, WorkerStatus
NOTIFICATION_MOVES: Mapping[NotificationStatus, frozenset[NotificationStatus]] = {
    N.PENDING: frozenset({N.PENDING, N.DELIVERED, N.FAILED}),
    N.DELIVERED: frozenset(),
    N.FAILED: frozenset(),
}
WORKER_MOVES: Mapping[WorkerStatus, frozenset[WorkerStatus]] = {
    W.RUNNING: frozenset({W.RUNNING, W.STOPPED}),  # a heartbeat; a clean stop
    W.STOPPED: frozenset({W.STOPPED, W.RUNNING}),  # stopped twice; started again
}

EXECUTION_ENDED = frozenset({E.COMPLETED, E.FAILED, E.CANCELLED})
JOB_UNFINISHED = frozenset({J.QUEUED, J.WAITING, J.LEASED, J.CHILD})

Status = TypeVar("Status", ExecutionStatus, StepStatus, JobStatus, NotificationStatus,
                 WorkerStatus)
_TABLES: dict[type, Mapping[Any, frozenset[Any]]] = {
    ExecutionStatus: EXECUTION_MOVES, StepStatus: STEP_MOVES, JobStatus: JOB_MOVES,
    NotificationStatus: NOTIFICATION_MOVES, WorkerStatus: WORKER_MOVES}


class IllegalMove(RuntimeError):
    """A status change its lifecycle table does not allow: a bug in the engine or a store."""


class HasStatus(Protocol[Status]):
    """An execution row, a step row, a job or a notification."""

    status: Status


def table(kind: type[Status]) -> Mapping[Status, frozenset[Status]]:
    """The moves table of a status enum."""
    return _TABLES[kind]


def allowed(current: str, to: Status) -> bool:
    """Whether a row in ``current`` (a member, or its stored string) may move to ``to``."""
    moves = _TABLES[type(to)].get(current)  # a StrEnum member hashes as its value
    return moves is not None and to in moves


def move(row: HasStatus[Status], to: Status) -> None:
    """Set ``row.status`` to ``to`` if its table allows the move; raise :class:`IllegalMove`
    otherwise. ``row``: an execution row, a step row or a job."""
    moves = _TABLES[type(to)].get(row.status)  # allowed(), inlined: every status change
    if moves is None or to not in moves:
        raise IllegalMove(f"{type(row).__name__} {_name(row)}: {row.status} → {to} is not a "
                          f"move of the {type(to).__name__} table")
    row.status = to


class Leasable(Protocol):
    status: JobStatus
    available_at: float
    lease_until: float | None


def leasable(job: Leasable, now: float) -> bool:
    """Whether a worker may lease ``job`` at time ``now``: queued and due, or leased with its
    lease run out (the store's lease query picks exactly these, expired leases first)."""
    if job.status == J.QUEUED:
        return job.available_at <= now
    return job.status == J.LEASED and job.lease_until is not None and job.lease_until < now


def check(sources: Iterable[Status], to: Status) -> None:
    """Raise :class:`IllegalMove` unless every ``source → to`` is in the table (for the moves
    a store makes in SQL, checked once where it declares them)."""
    for s in sources:
        if to not in _TABLES[type(to)][s]:
            raise IllegalMove(f"{s} → {to} is not a move of the {type(to).__name__} table")


def _name(row: object) -> str:
    for attr in ("queue_id", "step", "execution_id"):
        v = getattr(row, attr, None)
        if v is not None:
            return str(v)
    return "?"
