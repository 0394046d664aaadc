"""What a report will read first, known before its transaction starts.

A report names only its job. When this process handed the job out (a lease, or a report's
hand-off), it knows the job's execution and step, and so the step rows the report reads first:
the step's own and those of its edges' targets (:func:`noetl.engine.outcomes.job_succeeded`
prefetches the same). The store can then read them with the report's locks
(:meth:`noetl.store.base.Tx.lock_job_reading`, one statement on PostgreSQL). A job this process
did not hand out (another server process's lease) is read as its work package said: the
package carries those names (``reads``) and the worker sends them back with the report
(:func:`sent_reads`); a report without them is simply read as before.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from noetl.domain.records import Job
from noetl.plan import Plan

SIZE = 8192  # jobs remembered (the oldest go first)
MAX_SENT = 64  # step names a report may send back (more: not used)


def first_reads(plan: Plan, step: str) -> frozenset[str]:
    """The step rows a report of a job of ``step`` reads first."""
    ps = plan.step(step)
    return frozenset([ps.name, *(e.target for e in ps.edges)])


def next_reads(plan: Plan, step: str) -> frozenset[str]:
    """The step rows a report of a job of ``step`` may read as it decides: :func:`first_reads`,
    what its edges' conditions and args name, and what the steps they lead to render when
    handed out (their action's, args' and items' references). Others are read if needed."""
    ps = plan.step(step)
    out = set(first_reads(plan, step)) | ps.edge_refs
    for e in ps.edges:
        t = plan.steps.get(e.target)
        if t is not None:
            out |= t.refs | t.item_refs
    return frozenset(out)


def sent_reads(outcome: Mapping[str, Any]) -> frozenset[str]:
    """The ``reads`` a report sent back from its work package (:func:`first_reads`, put there
    at lease time), for a job this process did not hand out: a server process other than the
    one that leased it. Only a hint: any names read with the report's locks are rows of the
    job's own execution as they are; names that are no step are read as absent and never
    written. Empty when missing or malformed."""
    names = outcome.get("reads")
    if not isinstance(names, list) or len(names) > MAX_SENT \
            or not all(isinstance(n, str) for n in names):
        return frozenset()
    return frozenset(names)


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
