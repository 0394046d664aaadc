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

import copy
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from noetl.domain.lifecycle import JobKind, StepStatus
from noetl.domain.records import ExecutionRow, Job, StepRow
from noetl.engine.prefetch import next_reads
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
        # the rows its report may read (not every row the session has: a long sequence's
        # would grow with each step), copied as a read returns them; those the write read
        # back are the database's own, shared with nothing
        steps: dict[str, StepRow] = {}
        back = tx.read_back or {}
        for n in next_reads(s.plan, job.step):
            r = s.rows.get(n)
            if r is not None:
                if r.status != StepStatus.QUEUED:
                    steps[n] = _step(r)
            elif n in back:
                b = back[n]
                if b is None or b.status != StepStatus.QUEUED:
                    steps[n] = b or StepRow(s.eid, n)  # None: no row (as a read finds none)
        kept = Kept(_job(job), _execution(s.ex), steps, xid)
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
    c = copy.copy(j)  # (a third of dataclasses.replace's time)
    c.payload, c.result = _stored(j.payload) or {}, _stored(j.result)
    return c


def _execution(ex: ExecutionRow) -> ExecutionRow:
    c = copy.copy(ex)
    c.workload, c.state = _stored(ex.workload) or {}, _stored(ex.state) or {}
    c.result, c.error = _stored(ex.result), _stored(ex.error)
    return c


def _step(r: StepRow) -> StepRow:
    c = copy.copy(r)
    c.result, c.error, c.loop = _stored(r.result), _stored(r.error), _stored(r.loop)
    c.arrivals, c.input = _stored(r.arrivals), _stored(r.input)
    return c
