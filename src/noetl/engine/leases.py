"""The engine's queue half, on behalf of workers: lease jobs, extend a lease (heartbeat), give
one back (release), take back the leases that ran out, and when the next delayed job is due."""

from __future__ import annotations

from noetl.domain.lifecycle import JobKind, JobStatus, move
from noetl.domain.records import ExecutionRow, now
from noetl.domain.wire import HeartbeatResult, LogRecord, Work
from noetl.engine import events
from noetl.engine.base import EngineBase
from noetl.engine.expiry import fail_expired, leave_expired, note_expiry, reap
from noetl.engine.logs import record_logs
from noetl.engine.plans import plan_for
from noetl.engine.retry import decide, policy_of
from noetl.engine.session import Session
from noetl.engine.work import build_work
from noetl.errors import Conflict, LeaseLost, NotFound
from noetl.store.base import Tx


class Leases(EngineBase):
    """The queue half of :class:`noetl.engine.core.Engine`."""

    def lease(self, worker_id: str, limit: int = 1,
              lease_seconds: float | None = None) -> list[Work]:
        """Lease up to ``limit`` ready jobs (or jobs whose lease expired); return their work."""
        expired: list[Session] = []
        works = self._tx(lambda tx: self._lease_in(tx, worker_id, limit,
                                                   lease_seconds or self.lease_seconds, expired))
        if expired:
            self._after(expired)
        return works

    def _lease_in(self, tx: Tx, worker_id: str, limit: int, ttl: float,
                  expired: list[Session]) -> list[Work]:
        t = now()
        works: list[Work] = []
        execs: dict[int, ExecutionRow | None] = {}
        roots = self.lease_roots
        if roots is not None and not roots:
            return works  # an embedded runner before its execution starts: nothing of its own
        mine = sorted(roots) if roots is not None else None
        for job, prev, lost_worker in tx.lease_jobs(worker_id, ttl, limit, t, mine):
            if job.execution_id not in execs:
                execs[job.execution_id] = tx.get_execution(job.execution_id)
            ex = execs[job.execution_id]
            if ex is None or ex.terminal:
                move(job, JobStatus.CANCELLED)
                tx.update_job(job)
                continue
            plan = plan_for(tx, ex)
            ps = plan.step(job.step)
            s = self.session(tx, ex, plan)
            if prev == JobStatus.LEASED:  # expired before the reaper saw it
                n = note_expiry(s, job, ps.type, job.attempts - 1, lost_worker)
                d = decide(policy_of(ps, job), job.attempts - 1, now=t, lease_expired=True, expiries=n,
                           max_expiries=self.settings.max_lease_expiries)
                # failing the step needs the execution's row: take it only if free at once
                # (this transaction holds queue rows and event locks; waiting here could close
                # a cycle with a report of this very job), else leave the job expired, unrun
                lock = None if d.retry else tx.try_lock_execution(job.execution_id)
                if not d.retry and lock is None:
                    leave_expired(job, t)
                    tx.update_job(job)
                    continue
                if lock is not None:
                    retry_events = s.events
                    s = self.session(tx, lock, plan)
                    s.events = retry_events
                    fail_expired(s, job, n)
                    s.flush()
                    execs.pop(job.execution_id, None)
                    expired.append(s)
                    continue
                tx.update_job(job)
            s.emit(events.action_started(s.eid, job, ps.type, worker_id))
            works.append(build_work(tx, ex, plan, job))
            self.hints.note(job, plan)
            with tx.batch():
                tx.add_events(s.events)
                if job.kind != JobKind.SAVE:  # a loop is RUNNING once its first item is
                    tx.mark_step_running(job.execution_id, job.step)
        return works

    def heartbeat(self, job_id: int, worker_id: str, extend_seconds: float | None = None,
                  logs: list[LogRecord] | None = None) -> HeartbeatResult:
        """Extend a running job's lease; ``logs``: what the job wrote since the last
        heartbeat (stored now, so a long step's output can be followed while it runs)."""
        def go(tx: Tx) -> HeartbeatResult:
            job = tx.get_job(job_id, lock=True)
            if job is None:
                raise NotFound(f"job {job_id} not found")
            if job.status == JobStatus.CANCELLED:
                record_logs(tx, job, worker_id, logs)
                return {"status": "cancelled", "cancelled": True}
            if job.status != JobStatus.LEASED or job.worker_id != worker_id:
                raise LeaseLost(f"job {job_id} is not leased by {worker_id}")
            t = now()
            job.last_heartbeat = t
            job.lease_until = t + (extend_seconds or self.lease_seconds)
            tx.update_job(job)
            record_logs(tx, job, worker_id, logs)
            return {"status": "ok", "cancelled": False, "lease_until": job.lease_until}

        out = self._tx(go)
        if logs:
            self.logs.notify()
        return out

    def release(self, job_id: int, worker_id: str) -> None:
        """Give a leased job back unrun (graceful shutdown); the attempt is not counted."""
        def go(tx: Tx) -> None:
            job = tx.get_job(job_id, lock=True)
            if job is None or job.status != JobStatus.LEASED or job.worker_id != worker_id:
                raise Conflict(f"job {job_id} is not leased by {worker_id}")
            move(job, JobStatus.QUEUED)
            job.attempts = max(0, job.attempts - 1)
            job.worker_id = None
            job.lease_until = None
            job.available_at = now()
            tx.update_job(job)

        self._tx(go)
        self.store.notify_work()

    def reap_expired(self) -> int:
        """Re-queue the jobs whose lease ran out (their worker stopped heartbeating); the API
        server runs this in a loop (:class:`noetl.engine.expiry.Reaper`)."""
        return reap(self)

    def next_wakeup(self) -> float | None:
        with self.store.read() as tx:
            return tx.next_available_at()
