"""Every status change the store makes in SQL, declared once.

An :class:`SqlMove` says which rows move (``sources``) and where to (``to``); it is checked
against the lifecycle tables (:mod:`noetl.domain.lifecycle`) when declared, so a store cannot
write a move the tables lack, and the SQL takes its ``set`` and ``where`` fragments from it.
``tests/contract/test_lifecycle_moves.py`` runs each on both backends and refuses a literal
``SET status`` anywhere in a store. (Writes of a row's own status, ``SET status = :status``,
carry what :func:`noetl.domain.lifecycle.move` set.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic

from noetl.domain.lifecycle import (
    JOB_UNFINISHED,
    JobStatus,
    Status,
    StepStatus,
    WorkerStatus,
    check,
)


@dataclass(frozen=True)
class SqlMove(Generic[Status]):
    """Rows in one of ``sources`` go to ``to``."""

    sources: tuple[Status, ...]
    to: Status

    def __post_init__(self) -> None:
        check(self.sources, self.to)
        STORE_MOVES.append(self)

    @property
    def set(self) -> str:
        return f"status = '{self.to}'"

    @property
    def where(self) -> str:
        """``status = 'x'`` for one source (as the partial indexes are written), else
        ``status IN (...)``."""
        if len(self.sources) == 1:
            return f"status = '{self.sources[0]}'"
        return "status IN (" + ", ".join(f"'{s}'" for s in self.sources) + ")"


STORE_MOVES: list[SqlMove[Any]] = []
J, W = JobStatus, WorkerStatus
LEASE_READY = SqlMove((J.QUEUED,), J.LEASED)  # available_at has come
LEASE_EXPIRED = SqlMove((J.LEASED,), J.LEASED)  # lease_until has passed: a new attempt
RELEASE_WAITING = SqlMove((J.WAITING,), J.QUEUED)  # the next loop items
CANCEL_JOBS = SqlMove(tuple(sorted(JOB_UNFINISHED)), J.CANCELLED)  # an execution ends
CANCEL_STEP_JOBS = SqlMove((J.QUEUED, J.WAITING), J.CANCELLED)  # a loop is aborted
MARK_STEP_RUNNING = SqlMove((StepStatus.QUEUED,), StepStatus.RUNNING)  # its first job leased
WORKER_BEAT = SqlMove((W.RUNNING, W.STOPPED), W.RUNNING)  # a heartbeat (re)registers it
WORKER_STOP = SqlMove((W.RUNNING, W.STOPPED), W.STOPPED)  # it stopped cleanly
