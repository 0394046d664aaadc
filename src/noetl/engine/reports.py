"""The engine's report half: a job's outcome recorded (one report, a report that leases the
worker's next job in the same transaction, a batch of reports in one transaction)."""

from __future__ import annotations

from noetl.domain.lifecycle import JobStatus
from noetl.domain.records import ExecutionRow, Job, StepRow
from noetl.domain.wire import Outcome, ReportResult, Work
from noetl.engine.leases import Leases
from noetl.engine.logs import record_logs
from noetl.engine.prefetch import sent_reads
from noetl.engine.session import Session
from noetl.engine.speculation import Kept
from noetl.engine.unit import session_tree
from noetl.engine.unprocessable import fail_unprocessable, processing_error
from noetl.engine.work import build_work
from noetl.errors import LeaseLost, NoetlError, NotFound
from noetl.store.base import Read, Tx


class Reports(Leases):
    """The report half of :class:`noetl.engine.core.Engine` (a report may lease the next job:
    it builds on the queue half)."""

    def report(self, job_id: int, worker_id: str | None, outcome: Outcome) -> str:
        """Record a job's outcome (``outcome['status']`` is ``ok`` or ``error``) and react.

        Idempotent: a report repeated with the same ``report_id`` is acknowledged once."""
        return self.report_and_lease(job_id, worker_id, outcome, 0)[0]

    def report_and_lease(self, job_id: int, worker_id: str | None, outcome: Outcome,
                         limit: int = 1, lease_seconds: float | None = None
                         ) -> tuple[str, list[Work]]:
        """:meth:`report`, then lease up to ``limit`` ready jobs for the same worker in the
        same transaction: a worker running a sequence needs one round trip per step."""
        holder: list[Session] = []
        works: list[Work] = []

        ttl = lease_seconds or self.lease_seconds
        kept = self._kept(job_id, worker_id, outcome)
        txs: list[Tx] = []

        def go(tx: Tx) -> str:
            works.clear()
            holder.clear()
            txs[:] = [tx]
            handoff = (worker_id, ttl, limit) if limit > 0 and worker_id else None
            try:
                status = self._report_in(tx, job_id, worker_id, outcome, holder, handoff, works,
                                         spec=kept.pop() if kept else None)
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
        self.kept.keep(txs[-1], holder, len(works))
        if outcome.get("logs"):
            self.logs.notify()
        return res, works

    def report_batch(self, reports: list[tuple[int, Outcome]], worker_id: str | None,
                     limit: int = 0, lease_seconds: float | None = None
                     ) -> tuple[list[ReportResult], list[Work]]:
        """Record several outcomes in one transaction, then lease up to ``limit`` jobs for the
        worker (the steps the reports made ready first). Returns one ``{status[, error]}`` per
        report, in order: ``ok``, ``duplicate``, ``cancelled``, ``lease_lost`` or
        ``not_found``, and the leased work.

        Every lock the batch can need is taken first, before any report writes (see
        :meth:`noetl.store.pg_tx.PgTx.lock_jobs`): execution rows of the jobs and their
        ancestors newest first, job rows, then event locks in ascending order; so batches,
        single reports and leases take each kind of lock in one order. Should the batch fail
        for any reason other than a refused report, each report is retried in a transaction of
        its own, so one bad report never holds the others back (and what it wrote is rolled
        back, as with a single report). The database unavailable (the store says so) fails
        the whole call: every report is sent again, never turned into a refused one."""
        if not reports:
            return [], (self.lease(worker_id, limit, lease_seconds) if worker_id and limit else [])
        ttl = lease_seconds or self.lease_seconds
        holder: list[Session] = []
        works: list[Work] = []
        kept = self._kept(reports[0][0], worker_id, reports[0][1]) if len(reports) == 1 else []
        txs: list[Tx] = []

        def go(tx: Tx) -> list[ReportResult]:
            works.clear()
            holder.clear()
            txs[:] = [tx]
            pre: dict[int, Read] = {}
            if len(reports) > 1:  # every lock it needs, up front, and what each reads first
                pre = tx.lock_jobs_reading({j: self._first_reads(j, o) for j, o in reports})
            out: list[ReportResult] = []
            touched: set[int] = set()  # executions a report of this batch may have written
            for job_id, outcome in reports:
                left = limit - len(works)
                handoff = (worker_id, ttl, left) if left > 0 and worker_id else None
                got = pre.get(job_id)
                eid = got.execution.execution_id if got is not None else None
                # read before an earlier report of the batch wrote it: read it again
                read = got if eid not in touched else None
                try:
                    out.append({"status": self._report_in(
                        tx, job_id, worker_id, outcome, holder, handoff, works, read,
                        kept.pop() if kept else None)})
                except _Refused as r:  # refused before the report wrote anything
                    out.append({"status": r.status, "error": str(r.error)})
                if eid is not None:
                    touched.add(eid)
                touched.update(s.eid for s in session_tree(holder, pending=False))
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
        self.kept.keep(txs[-1], holder, len(works))
        if any(o.get("logs") for _, o in reports):
            self.logs.notify()
        return res, works

    def _report_each(self, reports: list[tuple[int, Outcome]], worker_id: str | None,
                     limit: int, ttl: float) -> tuple[list[ReportResult], list[Work]]:
        out: list[ReportResult] = []
        works: list[Work] = []
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
                if self.store.unavailable(exc):  # the whole batch is, for now: send it again
                    raise  # (the reports recorded before it are duplicates then)
                out.append({"status": "error", "error": f"{type(exc).__name__}: {exc}"})
        return out, works

    def _report_in(self, tx: Tx, job_id: int, worker_id: str | None, outcome: Outcome,
                   holder: list[Session], handoff: tuple[str, float, int] | None = None,
                   works: list[Work] | None = None, pre: Read | None = None,
                   spec: Kept | None = None) -> str:
        """``pre``: what :meth:`noetl.store.base.Tx.lock_jobs_reading` read for this job in
        this transaction, still as it is; ``spec``: the rows kept since this process handed
        the job out (:mod:`noetl.engine.speculation`); else it is locked and read here."""
        hint = self.hints.get(job_id)
        names = self._first_reads(job_id, outcome)
        got: tuple[Job, ExecutionRow | None, dict[str, StepRow] | None] | None
        if spec is not None:
            tx.speculate(spec.execution.execution_id, job_id, spec.xid)
            got = spec.job, spec.execution, None
        else:
            got = pre or tx.lock_job_reading(job_id, names)
        if got is None:
            raise _Refused("not_found", NotFound(f"job {job_id} not found"))
        job, ex, read = got
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
        if spec is not None:
            s.rows.update(spec.steps)
        if read is not None and names and (hint is None or hint[0] == job.execution_id):
            s.take(names, read)  # (rows of the job's own execution, whatever the names)
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
            for j in handed:
                self.hints.note(j, s.plan)
        return "ok"


    def _kept(self, job_id: int, worker_id: str | None, outcome: Outcome) -> list[Kept]:
        """The rows kept for a speculative report of this job (a list of one, or empty):
        only when they pass the report's checks (a refusal is never made on kept rows)."""
        k = self.kept.take(job_id)
        if k is None or k.job.status != JobStatus.LEASED or not worker_id \
                or k.job.worker_id != worker_id:
            return []
        rid = outcome.get("report_id")
        return [] if rid and k.job.payload.get("report_id") == rid else [k]

    def _first_reads(self, job_id: int, outcome: Outcome) -> frozenset[str]:
        """The step rows a report reads first, when this process knows (it handed the job
        out), or as the work package said."""
        hint = self.hints.get(job_id)
        return hint[1] if hint else sent_reads(outcome)


class _Refused(Exception):
    """A report refused in its checks, before it wrote anything (``status``: ``lease_lost`` or
    ``not_found``; ``error``: what a single report raises)."""

    def __init__(self, status: str, error: NoetlError):
        super().__init__(str(error))
        self.status = status
        self.error = error
