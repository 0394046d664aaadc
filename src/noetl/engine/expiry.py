"""Lease expiry: a job whose worker stopped heartbeating goes back to the queue.

Two paths record an expiry the same way (one ``action_retry`` event with ``reason:
lease_expired``; after ``NOETL_MAX_LEASE_EXPIRIES`` expiries the step fails with
``LeaseExpired``; the decision is :func:`noetl.engine.retry.decide`'s):

- the **reaper** (:class:`Reaper`, a thread every API server runs): it finds leases that ran
  out and re-queues their jobs, whether or not any worker is polling. The job row keeps the
  lost worker's id and the time its lease ran out, so the status explainer can say so;
- a **lease** that picks up a job whose lease ran out before any reaper saw it (embedded mode,
  or no server running): polling is the always-correct baseline.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from noetl.domain.lifecycle import JobStatus, move
from noetl.domain.records import ExecutionRow, Job, now
from noetl.engine import events
from noetl.engine.retry import decide, policy_of
from noetl.engine.workers import prune

if TYPE_CHECKING:
    from noetl.engine.unit import Unit
    from noetl.settings import Settings
    from noetl.store.base import Store, Tx

T = TypeVar("T")

log = logging.getLogger("noetl.engine.reaper")
REAP_BATCH = 100


class Reaps(Protocol):
    """What the reaper needs of :class:`noetl.engine.core.Engine`."""

    store: Store
    settings: Settings

    def _tx(self, fn: Callable[[Tx], T]) -> T: ...
    def _after(self, sessions: Sequence[Unit]) -> None: ...
    def session(self, tx: Tx, ex: ExecutionRow) -> Unit: ...


def note_expiry(s: Unit, job: Job, node_type: str | None, lost_attempt: int,
                lost_worker: str | None = None) -> int:
    """Record that ``job``'s lease expired during attempt ``lost_attempt``; return how many
    times its lease has expired so far. ``lost_worker``, the worker whose lease ran out, is
    in the event's context (``worker_id``) and meta (``lost_worker_id``)."""
    n = int(job.payload.get("expiries", 0)) + 1
    job.payload["expiries"] = n
    ctx: dict[str, Any] = {"reason": "lease_expired", "next_attempt": lost_attempt + 1,
                           "lease_expiries": n}
    if lost_worker:
        ctx["worker_id"] = lost_worker
    s.emit(events.action_retry(s.eid, job, node_type, lost_attempt, ctx,
                               meta={"lost_worker_id": lost_worker} if lost_worker else None))
    return n


def fail_expired(s: Unit, job: Job, n: int) -> None:
    s.job_failed(job, {"final": True, "error": {
        "message": f"worker died while running this step (its lease expired {n} times)",
        "type": "LeaseExpired"}})


def leave_expired(job: Job, t: float) -> None:
    """Undo a lease of a job past its expiry limit whose execution row another transaction
    holds (failing the step needs it, and the lease must not wait for it): the job is not
    run; it stays leased with its lease run out and this attempt and expiry uncounted, for
    the reaper (or a later lease) to fail the step once the row is free. The lost worker's
    id is not known here (the lease replaced it): it is cleared, not misreported."""
    job.attempts = max(0, job.attempts - 1)
    job.payload["expiries"] = max(0, int(job.payload.get("expiries", 1)) - 1)
    job.worker_id = None
    job.lease_until = t


def reap(engine: Reaps, limit: int = REAP_BATCH) -> int:
    """Re-queue (or, past the limit, fail) every job whose lease has run out; one transaction
    per job, each locking the execution row, then the job row (the order everywhere), and
    checking again under the lock. Returns how many jobs it took back."""
    with engine.store.read() as tx:
        ids = tx.expired_leases(now(), limit)
    done = 0
    for qid in ids:
        holder: list[Unit] = []
        if engine._tx(functools.partial(_reap_one, engine=engine, queue_id=qid, holder=holder)):
            done += 1
            engine._after(holder)  # wake workers: the job is ready again
    return done


def _reap_one(tx: Tx, engine: Reaps, queue_id: int, holder: list[Unit]) -> bool:
    holder.clear()
    got = tx.lock_job(queue_id)
    if got is None:
        return False
    job, ex = got
    t = now()
    if job.status != JobStatus.LEASED or job.lease_until is None or job.lease_until >= t:
        return False  # reported, extended or re-leased meanwhile
    if ex is None or ex.terminal:
        move(job, JobStatus.CANCELLED)
        job.lease_until = None
        tx.update_job(job)
        return True
    s = engine.session(tx, ex)
    ps = s.plan.step(job.step)
    n = note_expiry(s, job, ps.type, job.attempts, job.worker_id)
    d = decide(policy_of(ps, job), job.attempts, now=t, lease_expired=True, expiries=n,
               max_expiries=engine.settings.max_lease_expiries)
    if not d.retry:
        fail_expired(s, job, n)
    else:
        # ready at once; worker_id and lease_until stay: who lost it, and when
        move(job, JobStatus.QUEUED)
        job.available_at = d.at
        s.update_job(job)
    s.flush()
    holder.append(s)
    log.info("job %s (%s step %s): lease of %s expired; %s", queue_id, ex.execution_id,
             job.step, job.worker_id, "re-queued" if d.retry else "step failed")
    return True


class Reaper:
    """A daemon thread: reap expired leases as they fall due (it sleeps until the earliest
    lease ends, at most ``max_wait`` seconds), and forget long-gone workers now and then."""

    def __init__(self, engine: Reaps, max_wait: float = 1.0, prune_every: float = 300.0):
        self.engine = engine
        self.max_wait = max_wait
        self.prune_every = prune_every
        self.reaped = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> Reaper:
        self._thread = threading.Thread(target=self._loop, name="noetl-reaper", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _loop(self) -> None:
        pruned = time.monotonic()
        while not self._stop.is_set():
            wait = self.max_wait
            try:
                n = reap(self.engine)
                self.reaped += n
                if time.monotonic() - pruned > self.prune_every:
                    pruned = time.monotonic()
                    prune(self.engine.store)
                with self.engine.store.read() as tx:
                    nxt = tx.next_lease_expiry()
                if n >= REAP_BATCH:
                    wait = 0.0
                elif nxt is not None:
                    wait = min(wait, max(0.02, nxt - now() + 0.005))
            except Exception as exc:  # the database away: keep trying
                log.warning("lease reaper: %s", exc)
            self._stop.wait(wait)
