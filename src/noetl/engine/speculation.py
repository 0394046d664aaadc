"""Speculative reports: a sequence's next report in one statement (PostgreSQL).

A report locks and reads the execution row, the job row and the step rows it needs, decides,
and writes: two round trips and two statements before its COMMIT. When this process handed
the job out (a report's hand-off) it still has those rows as that transaction wrote them: the
session's execution row, the job and the step rows, and that transaction's id (every writer
of an execution's step rows also updates its execution row, so that row's ``xmin`` names the
last change of any of them). The next report of that job then decides on those rows without
reading them and writes with a guard: the execution row and the job row are updated only if
their ``xmin`` is still that id, or the statement fails (:meth:`noetl.store.base.Tx.speculate`)
and the report runs again, reading, as any report (:meth:`noetl.store.base.Store.stale`).

Kept only where nothing else is expected to change those rows before the job's report: the
session handed out exactly one job, a step's (not a loop item's), which is then the only work
of its execution in flight (no other branch, loop or sub-playbook to report meanwhile), and
step rows a lease could mark running (``QUEUED``) are left out (read when needed). A cancel,
a heartbeat, an expired lease or anything else that changes them costs one failed statement
and the usual reads. Each kept entry is used once.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from noetl.domain.lifecycle import JobKind, StepStatus
from noetl.domain.records import ExecutionRow, Job, StepRow
from noetl.store.rows import jd, jl

if TYPE_CHECKING:
    from noetl.engine.unit import Unit
    from noetl.store.base import Tx

SIZE = 2048  # jobs kept (the oldest go first; as many as plans kept per execution)


@dataclass
class Kept:
    """The rows a job's report starts from, as transaction ``xid`` wrote them."""

    job: Job
    execution: ExecutionRow
    steps: dict[str, StepRow]
    xid: str


class KeptRows:
    """job id → :class:`Kept`, for the jobs this process handed out (thread-safe)."""

    def __init__(self, size: int = SIZE):
        self.size = size
        self._items: OrderedDict[int, Kept] = OrderedDict()
        self._lock = threading.Lock()

    def keep(self, tx: Tx, sessions: Sequence[Unit], handed: int) -> None:
        """After ``tx`` committed (its ``xid``; None: not speculative) running ``sessions``
        and handing out ``handed`` jobs in all: keep the one job's rows when it qualifies,
        with the rows its write read back (:meth:`noetl.store.base.Tx.write_unit`)."""
        xid = tx.xid
        if xid is None or len(sessions) != 1 or handed != 1:
            return
        s = sessions[0]
        if len(s.handed) != 1 or s.flushed or s.after or s.ex.terminal:
            return
        job = s.handed[0]
        active = s.ex.state.get("active") or {}
        if job.kind != JobKind.STEP or active != {job.step: 1}:
            return
        steps = {n: r for n, r in s.rows.items() if r.status != StepStatus.QUEUED}
        for n, r in (tx.read_back or {}).items():
            if n not in steps and (r is None or r.status != StepStatus.QUEUED):
                steps[n] = r or StepRow(s.eid, n)  # None: no row (as a read finds none)
        kept = Kept(_job(job), _execution(s.ex), {n: _step(r) for n, r in steps.items()}, xid)
        with self._lock:
            self._items[job.queue_id] = kept
            if len(self._items) > self.size:
                self._items.popitem(last=False)

    def take(self, job_id: int) -> Kept | None:
        with self._lock:
            return self._items.pop(job_id, None)


# The kept rows are copies, as a read would return them (each JSON column through its stored
# text): the session's own objects are shared with what the commit handed on (the work
# package's results, workload and edge args, which an in-process worker's step may change),
# and an in-process outcome may hold values JSON stores otherwise (a number key, a tuple).
def _stored(value: Any) -> Any:
    return jl(jd(value))


def _job(j: Job) -> Job:
    return replace(j, payload=_stored(j.payload) or {}, result=_stored(j.result))


def _execution(ex: ExecutionRow) -> ExecutionRow:
    return replace(ex, workload=_stored(ex.workload) or {}, result=_stored(ex.result),
                   error=_stored(ex.error), state=_stored(ex.state) or {})


def _step(r: StepRow) -> StepRow:
    return replace(r, result=_stored(r.result), error=_stored(r.error), loop=_stored(r.loop),
                   arrivals=_stored(r.arrivals), input=_stored(r.input))
