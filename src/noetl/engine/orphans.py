"""An execution whose embedded ``noetl run`` stopped (killed, the machine rebooted): it stays
RUNNING in the store, its jobs as they were (a step leased by the dead process, the next
ones queued), since in embedded mode no server re-queues them and another ``noetl run``
leases only its own. ``noetl resume <id>`` carries it on in place (:func:`take_over`):
the same execution, its stale leases taken over (each counts as a lease expiry, so the step
runs again as after any lost worker), its queued jobs run; it ends once, as it would have."""

from __future__ import annotations

import os
import platform
from typing import TYPE_CHECKING

from noetl.domain.lifecycle import EXECUTION_ENDED, JobStatus
from noetl.domain.records import ExecutionRow, Job, now
from noetl.errors import Conflict, NotFound

if TYPE_CHECKING:
    from noetl.engine.core import Engine
    from noetl.store.base import Tx


def _alive(pid: int) -> bool:
    if pid == os.getpid():  # a dead process's pid, now this one's
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _tree(tx: Tx, top: ExecutionRow) -> list[ExecutionRow]:
    out, todo = [], [top]
    while todo:
        ex = todo.pop()
        out.append(ex)
        todo.extend(c for c in tx.children(ex.execution_id) if c.status not in EXECUTION_ENDED)
    return out


def top_of(tx: Tx, execution_id: int) -> ExecutionRow:
    ex = tx.get_execution(execution_id)
    if ex is None:
        raise NotFound(f"execution {execution_id} not found")
    while ex.parent_execution_id is not None:
        parent = tx.get_execution(ex.parent_execution_id)
        if parent is None:
            break
        ex = parent
    return ex


def take_over(engine: Engine, execution_id: int) -> ExecutionRow | None:
    """Prepare a running execution (or one of its sub-playbook children: its top-level
    execution is meant) to be carried on by this process; None when it has ended (a resume
    makes a new execution then).

    Leases held by a worker of this host whose process is gone are expired now (the next
    lease takes the job over at once); leases of another host's worker run out as leases do.
    Refused (:class:`Conflict`) while a live process of this host holds one: the execution
    is being run (a ``noetl run`` still going, a server)."""
    def go(tx: Tx) -> ExecutionRow | None:
        ex = tx.get_execution(execution_id)
        if ex is None:
            raise NotFound(f"execution {execution_id} not found")
        if ex.status in EXECUTION_ENDED:
            return None
        top = top_of(tx, execution_id)
        t = now()
        here = platform.node()
        workers = {w["worker_id"]: w for w in tx.list_workers()}
        stale: list[Job] = []
        for e in _tree(tx, top):
            for job in tx.list_jobs(status=JobStatus.LEASED, execution_id=e.execution_id,
                                    limit=100_000):
                if job.lease_until is not None and job.lease_until < t:
                    continue  # already expired: the next lease takes it
                w = workers.get(job.worker_id or "")
                if w is None or w.get("hostname") != here or w.get("pid") is None:
                    continue  # another host's: its lease runs out unless that worker lives
                if _alive(int(w["pid"])) and w.get("status") != "stopped":
                    raise Conflict(
                        f"execution {top.execution_id} is still being run: step {job.step!r} "
                        f"is leased by {job.worker_id} (process {w['pid']}, alive); resume "
                        "carries on an execution whose noetl run has stopped")
                stale.append(job)
        for job in stale:
            locked = tx.get_job(job.queue_id, lock=True)
            if locked is not None and locked.status == JobStatus.LEASED \
                    and locked.worker_id == job.worker_id:
                locked.lease_until = t
                tx.update_job(locked)
        return top

    top = engine._tx(go)
    if top is not None:
        engine.store.notify_work()
    return top
