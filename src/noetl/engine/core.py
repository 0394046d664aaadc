"""The engine's public operations. Each runs in one store transaction.

Used in-process by the embedded runner and by the API server on behalf of remote workers.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from noetl.domain.lifecycle import JobKind, JobStatus, move
from noetl.domain.records import CatalogEntry, ExecutionRow, error_info, now
from noetl.dsl.loader import parse_playbook
from noetl.dsl.model import Playbook
from noetl.dsl.yamlsrc import plain
from noetl.engine import events
from noetl.engine.executions import create_execution
from noetl.engine.expiry import fail_expired, note_expiry, reap
from noetl.engine.logs import LogWaiters, record_logs
from noetl.engine.plans import catalog_plan, plan_for
from noetl.engine.session import Session
from noetl.engine.status import describe
from noetl.engine.unit import Unit, session_tree
from noetl.engine.unprocessable import describe_error, fail_unprocessable, processing_error
from noetl.engine.work import build_work
from noetl.errors import Conflict, LeaseLost, NoetlError, NotFound, PlaybookError, Problem
from noetl.plan import Plan, compile_plan
from noetl.settings import Settings
from noetl.store.base import Store, Tx

T = TypeVar("T")


class Engine:
    def __init__(self, store: Store, lease_seconds: float | None = None,
                 settings: Settings | None = None):
        self.store = store
        self.settings = settings or store.settings
        self.lease_seconds = lease_seconds or self.settings.lease_seconds
        self.listeners: list[Callable[[set[int]], None]] = []
        self.logs = LogWaiters()  # readers following step logs (GET .../logs?wait=)

    # -- plumbing ----------------------------------------------------------------------------
    def session(self, tx: Tx, ex: ExecutionRow, plan: Plan | None = None) -> Session:
        """The rules applied to ``ex`` inside ``tx``, with this engine's settings."""
        return Session(tx, ex, plan, self.settings)

    def _tx(self, fn: Callable[[Tx], T]) -> T:
        for attempt in range(20):
            try:
                with self.store.transaction() as tx:
                    return fn(tx)
            except Exception as exc:
                if not self.store.retryable(exc) or attempt == 19:
                    raise
                time.sleep(random.uniform(0, 0.002 * 2 ** min(attempt, 6)))  # jittered backoff
        raise AssertionError("unreachable")

    def _after(self, sessions: Sequence[Unit]) -> None:
        """After a commit: wake idle workers if jobs became ready; tell listeners which
        executions just ended."""
        if any(s.wake for s in sessions):
            self.store.notify_work()
        if not self.listeners:
            return
        ended = {s.eid for s in session_tree(sessions, pending=False) if s.ex.terminal}
        for cb in self.listeners:
            cb(ended)

    # -- catalog -----------------------------------------------------------------------------
    def register(self, content: str, source: str = "<playbook>") -> CatalogEntry:
        """A new version of the playbook; its ``schedule:`` and ``hooks:`` replace those the
        path declared before, in the same transaction."""
        from noetl.engine.triggers import sync_triggers

        pb = parse_playbook(content, source)

        def go(tx: Tx) -> CatalogEntry:
            entry = tx.register(pb.path, content, pb.raw)
            sync_triggers(tx, entry, pb.raw)
            return entry

        return self._tx(go)

    # -- executions ---------------------------------------------------------------------------
    def start(self, playbook: Playbook | None = None, *, path: str | None = None,
              version: int | str | None = None, catalog_id: int | None = None,
              args: dict[str, Any] | None = None, merge: bool = False) -> ExecutionRow:
        """Validate, plan, persist and begin an execution; return its row."""
        holder: list[Session] = []

        def go(tx: Tx) -> ExecutionRow:
            holder.clear()
            return self._start_in(tx, holder, playbook, path, version, catalog_id, args, merge)

        try:
            ex = self._tx(go)
        except Exception as exc:
            if not processing_error(exc) or isinstance(exc, NoetlError):
                raise
            raise PlaybookError(path or (playbook.path if playbook else "<playbook>"), [
                Problem("start", f"cannot start the execution: {describe_error(exc)}")]) from exc
        self._after(holder)
        return ex

    def start_in(self, tx: Tx, *, path: str | None = None, version: int | str | None = None,
                 args: dict[str, Any] | None = None, trigger: dict[str, Any] | None = None
                 ) -> tuple[ExecutionRow, Callable[[], None]]:
        """:meth:`start` inside the caller's transaction (a schedule's fire commits with the
        claim of its row). ``trigger`` (what started it) goes into ``execution_started``.
        Returns the row and a function to call once the transaction has committed (it wakes
        the workers)."""
        holder: list[Session] = []
        ex = self._start_in(tx, holder, None, path, version, None, args, False, trigger)
        return ex, lambda: self._after(holder)

    def _start_in(self, tx: Tx, holder: list[Session], playbook: Playbook | None,
                  path: str | None, version: int | str | None, catalog_id: int | None,
                  args: dict[str, Any] | None, merge: bool,
                  trigger: dict[str, Any] | None = None) -> ExecutionRow:
        cat_id, ver = None, None
        if playbook is not None:
            plan = compile_plan(playbook)
        else:
            v = None if version in (None, "", "latest") else int(version)
            entry = tx.get_catalog(path=path, version=v, catalog_id=catalog_id)
            if entry is None:
                what = f"catalog id {catalog_id}" if catalog_id else f"playbook '{path}'"
                raise NotFound(f"{what}" + (f" version {v}" if v else "") + " not found")
            cat_id, ver = entry.catalog_id, str(entry.version)
            plan = catalog_plan(entry)
        ex = create_execution(tx, plan, plain(args) if args else None, merge=merge,
                              catalog_id=cat_id, version=ver,
                              env_names=self.settings.template_env)
        s = self.session(tx, ex, plan)
        s.fresh = True
        inputs: dict[str, Any] = {"args": plain(args) if args else None, "merge": merge}
        if trigger:
            inputs["trigger"] = trigger
        s.begin(inputs)  # execution_started records them
        s.flush()
        holder.append(s)
        return ex

    def cancel(self, execution_id: int) -> ExecutionRow:
        holder: list[Session] = []

        def go(tx: Tx) -> ExecutionRow:
            ex = tx.get_execution(execution_id, lock=True)
            if ex is None:
                raise NotFound(f"execution {execution_id} not found")
            s = self.session(tx, ex)
            s.cancel_execution()
            s.flush()
            holder.append(s)
            return ex

        ex = self._tx(go)
        self._after(holder)
        return ex

    # -- the queue, on behalf of workers ----------------------------------------------------
    def lease(self, worker_id: str, limit: int = 1,
              lease_seconds: float | None = None) -> list[dict[str, Any]]:
        """Lease up to ``limit`` ready jobs (or jobs whose lease expired); return their work."""
        expired: list[Session] = []
        works = self._tx(lambda tx: self._lease_in(tx, worker_id, limit,
                                                   lease_seconds or self.lease_seconds, expired))
        if expired:
            self._after(expired)
        return works

    def _lease_in(self, tx: Tx, worker_id: str, limit: int, ttl: float,
                  expired: list[Session]) -> list[dict[str, Any]]:
        t = now()
        works: list[dict[str, Any]] = []
        execs: dict[int, ExecutionRow | None] = {}
        for job, prev in tx.lease_jobs(worker_id, ttl, limit, t):
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
                n = note_expiry(s, job, ps.type, job.attempts - 1)
                # failing the step needs the execution's row: take it only if free at once
                # (this transaction holds queue rows and event locks; waiting here could close
                # a cycle with a report of this very job), else run the job once more
                lock = tx.try_lock_execution(job.execution_id) \
                    if n > self.settings.max_lease_expiries else None
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
            with tx.batch():
                tx.add_events(s.events)
                if job.kind != JobKind.SAVE:  # a loop is RUNNING once its first item is
                    tx.mark_step_running(job.execution_id, job.step)
        return works

    def report(self, job_id: int, worker_id: str | None, outcome: dict[str, Any]) -> str:
        """Record a job's outcome (``outcome['status']`` is ``ok`` or ``error``) and react.

        Idempotent: a report repeated with the same ``report_id`` is acknowledged once."""
        return self.report_and_lease(job_id, worker_id, outcome, 0)[0]

    def report_and_lease(self, job_id: int, worker_id: str | None, outcome: dict[str, Any],
                         limit: int = 1, lease_seconds: float | None = None
                         ) -> tuple[str, list[dict[str, Any]]]:
        """:meth:`report`, then lease up to ``limit`` ready jobs for the same worker in the
        same transaction: a worker running a sequence needs one round trip per step."""
        holder: list[Session] = []
        works: list[dict[str, Any]] = []

        ttl = lease_seconds or self.lease_seconds

        def go(tx: Tx) -> str:
            works.clear()
            holder.clear()
            handoff = (worker_id, ttl, limit) if limit > 0 and worker_id else None
            try:
                status = self._report_in(tx, job_id, worker_id, outcome, holder, handoff, works)
            except _Refused as r:
                raise r.error from None
            if worker_id and len(works) < limit:
                works.extend(self._lease_in(tx, worker_id, limit - len(works), ttl, holder))
            return status

        try:
            res = self._tx(go)
        except Exception as exc:
            if not processing_error(exc):
                raise
            return fail_unprocessable(self, job_id, worker_id, outcome, exc), []
        # jobs handed to the reporter are not counted as ready: only what is left wakes others
        self._after(holder)
        if outcome.get("logs"):
            self.logs.notify()
        return res, works

    def report_batch(self, reports: list[tuple[int, dict[str, Any]]], worker_id: str | None,
                     limit: int = 0, lease_seconds: float | None = None
                     ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Record several outcomes in one transaction, then lease up to ``limit`` jobs for the
        worker (the steps the reports made ready first). Returns one ``{status[, error]}`` per
        report, in order: ``ok``, ``duplicate``, ``cancelled``, ``lease_lost`` or
        ``not_found``, and the leased work.

        Every lock the batch can need is taken first, before any report writes (see
        :meth:`noetl.store.postgres.PgTx.lock_jobs`): execution rows of the jobs and their
        ancestors newest first, job rows, then event locks in ascending order; so batches,
        single reports and leases take each kind of lock in one order. Should the batch fail
        for any reason other than a refused report, each report is retried in a transaction of
        its own, so one bad report never holds the others back (and what it wrote is rolled
        back, as with a single report)."""
        if not reports:
            return [], (self.lease(worker_id, limit, lease_seconds) if worker_id and limit else [])
        ttl = lease_seconds or self.lease_seconds
        holder: list[Session] = []
        works: list[dict[str, Any]] = []

        def go(tx: Tx) -> list[dict[str, Any]]:
            works.clear()
            holder.clear()
            if len(reports) > 1:
                tx.lock_jobs([j for j, _ in reports])  # every lock it needs, up front
            out: list[dict[str, Any]] = []
            for job_id, outcome in reports:
                left = limit - len(works)
                handoff = (worker_id, ttl, left) if left > 0 and worker_id else None
                try:
                    out.append({"status": self._report_in(tx, job_id, worker_id, outcome,
                                                          holder, handoff, works)})
                except _Refused as r:  # refused before the report wrote anything
                    out.append({"status": r.status, "error": str(r.error)})
            if worker_id and len(works) < limit:
                works.extend(self._lease_in(tx, worker_id, limit - len(works), ttl, holder))
            return out

        try:
            res = self._tx(go)
        except Exception:
            if len(reports) == 1:
                raise
            return self._report_each(reports, worker_id, limit, ttl)
        self._after(holder)
        if any(o.get("logs") for _, o in reports):
            self.logs.notify()
        return res, works

    def _report_each(self, reports: list[tuple[int, dict[str, Any]]], worker_id: str | None,
                     limit: int, ttl: float) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        out: list[dict[str, Any]] = []
        works: list[dict[str, Any]] = []
        for job_id, outcome in reports:
            try:
                status, got = self.report_and_lease(job_id, worker_id, outcome,
                                                    max(0, limit - len(works)), ttl)
                out.append({"status": status})
                works.extend(got)
            except LeaseLost as exc:
                out.append({"status": "lease_lost", "error": str(exc)})
            except NotFound as exc:
                out.append({"status": "not_found", "error": str(exc)})
            except Exception as exc:
                out.append({"status": "error", "error": f"{type(exc).__name__}: {exc}"})
        return out, works

    def _report_in(self, tx: Tx, job_id: int, worker_id: str | None, outcome: dict[str, Any],
                   holder: list[Session], handoff: tuple[str, float, int] | None = None,
                   works: list[dict[str, Any]] | None = None) -> str:
        got = tx.lock_job(job_id)
        if got is None:
            raise _Refused("not_found", NotFound(f"job {job_id} not found"))
        job, ex = got
        rid = outcome.get("report_id")
        if rid and job.payload.get("report_id") == rid:
            return "duplicate"
        if job.status != JobStatus.LEASED or (worker_id and job.worker_id != worker_id):
            if job.status == JobStatus.CANCELLED and job.worker_id == worker_id \
                    and not job.payload.get("late_report"):
                # the execution ended while this job ran: record what happened, change nothing
                if ex is not None:
                    job.payload["late_report"] = rid or True
                    tx.update_job(job)
                    s = self.session(tx, ex)
                    s.record_late(job, outcome)
                    tx.add_events(s.events)
                    record_logs(tx, job, worker_id, outcome.get("logs"))
                return "cancelled"
            raise _Refused("lease_lost", LeaseLost(
                f"job {job_id} is {job.status}"
                + (f" (leased by {job.worker_id})" if job.worker_id else "")))
        if ex is None:
            raise _Refused("not_found", NotFound(f"execution {job.execution_id} not found"))
        if rid:
            job.payload["report_id"] = rid
        s = self.session(tx, ex)
        if outcome.get("status") == "ok":
            s.job_succeeded(job, outcome)
        else:
            s.job_failed(job, outcome)
        handed = s.hand_off(*handoff) if handoff else []
        s.flush()
        record_logs(tx, job, worker_id, outcome.get("logs"))  # after the events: their lock
        holder.append(s)
        if works is not None:
            works.extend(build_work(tx, s.ex, s.plan, j, s.results) for j in handed)
        return "ok"


    def heartbeat(self, job_id: int, worker_id: str, extend_seconds: float | None = None,
                  logs: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """Extend a running job's lease; ``logs``: what the job wrote since the last
        heartbeat (stored now, so a long step's output can be followed while it runs)."""
        def go(tx: Tx) -> dict[str, Any]:
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

    # -- reading -----------------------------------------------------------------------------
    def describe(self, execution_id: int, with_steps: bool = True) -> dict[str, Any]:
        with self.store.read() as tx:
            return describe(tx, execution_id, with_steps)

    def is_terminal(self, execution_id: int) -> bool:
        with self.store.read() as tx:
            ex = tx.get_execution(execution_id)
            if ex is None:
                raise NotFound(f"execution {execution_id} not found")
            return ex.terminal

    def next_wakeup(self) -> float | None:
        with self.store.read() as tx:
            return tx.next_available_at()


__all__ = ["Engine", "error_info"]


class _Refused(Exception):
    """A report refused in its checks, before it wrote anything (``status``: ``lease_lost`` or
    ``not_found``; ``error``: what a single report raises)."""

    def __init__(self, status: str, error: NoetlError):
        super().__init__(str(error))
        self.status = status
        self.error = error
