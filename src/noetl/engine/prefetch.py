"""What a report will read first, known before its transaction starts.

A report names only its job. When this process handed the job out (a lease, or a report's
hand-off), it knows the job's execution and step, and so the step rows the report reads first:
the step's own and those of its edges' targets (:func:`noetl.engine.outcomes.job_succeeded`
prefetches the same). The store can then read them with the report's locks
(:meth:`noetl.store.base.Tx.lock_job_reading`, one statement on PostgreSQL). A job this process
did not hand out (another server's lease) is simply read as before.
"""

from __future__ import annotations

import threading

from noetl.domain.records import Job
from noetl.plan import Plan

SIZE = 8192  # jobs remembered (the oldest go first)


def first_reads(plan: Plan, step: str) -> frozenset[str]:
    """The step rows a report of a job of ``step`` reads first."""
    ps = plan.step(step)
    return frozenset([ps.name, *(e.target for e in ps.edges)])


class Hints:
    """job id → (execution id, :func:`first_reads`), for the jobs this process handed out."""

    def __init__(self, size: int = SIZE):
        self.size = size
        self._items: dict[int, tuple[int, frozenset[str]]] = {}
        self._lock = threading.Lock()

    def note(self, job: Job, plan: Plan) -> None:
        hint = (job.execution_id, first_reads(plan, job.step))
        with self._lock:
            self._items[job.queue_id] = hint
            if len(self._items) > self.size:  # dicts keep insertion order: drop the oldest
                del self._items[next(iter(self._items))]

    def get(self, job_id: int) -> tuple[int, frozenset[str]] | None:
        return self._items.get(job_id)
