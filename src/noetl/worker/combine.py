"""Reports from a pool's threads, combined into batches (flat combining).

A thread that finishes a job submits its outcome. When no batch is on its way, that thread sends
one at once itself: a lone report costs no extra hand-off between threads. Outcomes submitted
while a batch is on its way wait; when it returns, the first of them sends all that have
gathered in one call. So under load a worker posts one request (and the server commits one
transaction) for several steps, and an idle worker is as quick as with single reports.

``send(reports, lease_next)`` is the backend's ``report_batch``: it returns one
``{status[, error]}`` per report and the jobs leased for the worker; each submitter asked for
one next job, and the jobs are dealt out in the order the reports were submitted.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from noetl.domain.wire import Outcome, ReportResult, Work
from noetl.errors import LeaseLost

Send = Callable[[list[tuple[int, Outcome]], int], tuple[list[ReportResult], list[Work]]]


class Refused(LeaseLost):
    """The server will never record this report (lease lost, job unknown). ``jobs``: work it
    leased for this thread all the same, to be run."""

    def __init__(self, message: str, jobs: list[Work]):
        super().__init__(message)
        self.jobs = jobs


class _Slot:
    __slots__ = ("done", "error", "job_id", "jobs", "lead", "message", "outcome", "status",
                 "want")

    def __init__(self, job_id: int, outcome: Outcome, want: int):
        self.job_id = job_id
        self.outcome = outcome
        self.want = want
        # what a waiting submitter waits on; a submitter that sends itself (the common case)
        # waits for nothing and makes none (an Event costs a Condition and a lock)
        self.done: threading.Event | None = None
        self.lead = False
        self.status: str | None = None
        self.message = ""
        self.jobs: list[Work] = []
        self.error: BaseException | None = None


class ReportCombiner:
    def __init__(self, send: Send, max_batch: int = 64,
                 give_back: Callable[[Work], None] | None = None):
        self.send = send
        self.give_back = give_back  # for leased jobs no thread can take (never expected)
        self.max_batch = max(1, max_batch)
        self._lock = threading.Lock()
        self._pending: list[_Slot] = []
        self._busy = False
        self.batches = 0  # batches sent (for tests and metrics)
        self.reports = 0  # reports sent in them

    def submit(self, job_id: int, outcome: Outcome, want: int = 1
               ) -> tuple[str, list[Work]]:
        """Report one outcome (and ask for up to ``want`` next jobs); block until the batch it
        went in has been answered; return its status and the jobs for this thread. Raises
        :class:`LeaseLost` (after the jobs it got were handed back, see below) when the server
        refused the report for good, and the transport's error when the batch could not be
        sent (the caller retries with the same ``report_id``)."""
        slot = _Slot(job_id, outcome, want)
        with self._lock:
            lead = not self._busy
            if not lead:
                slot.done = done = threading.Event()
            self._pending.append(slot)
            self._busy = True
        if not lead:
            done.wait()
            if slot.lead:  # the previous sender handed over: send what has gathered
                self._send_pending()
                done.wait()
        else:
            self._send_pending()
        if slot.error is not None:
            raise slot.error
        assert slot.status is not None
        if slot.status in ("lease_lost", "not_found"):
            raise Refused(slot.message, slot.jobs)
        return slot.status, slot.jobs

    def _hand_back(self, jobs: list[Work]) -> None:
        for job in jobs:
            if self.give_back is not None:
                self.give_back(job)

    def _send_pending(self) -> None:
        with self._lock:
            batch = self._pending[: self.max_batch]
            del self._pending[: self.max_batch]
        try:
            results, jobs = self.send([(s.job_id, s.outcome) for s in batch],
                                      sum(s.want for s in batch))
            self.batches += 1
            self.reports += len(batch)
            jobs = list(jobs)
            if len(results) != len(batch):
                self._hand_back(jobs)
                raise RuntimeError(f"{len(results)} answers for a batch of {len(batch)} reports")
            for s, r in zip(batch, results, strict=True):
                status = str(r.get("status"))
                if status == "error":  # not recorded: this thread retries its report
                    s.error = RuntimeError(str(r.get("error") or "the server could not record it"))
                    continue
                s.status = status
                if status in ("lease_lost", "not_found"):
                    s.message = str(r.get("error") or status)
                s.jobs, jobs = jobs[: s.want], jobs[s.want:]
            if jobs:  # more than asked for, or meant for a thread that retries: never dropped
                keep = next((s for s in batch if s.error is None), None)
                if keep is None:
                    self._hand_back(jobs)
                else:
                    keep.jobs.extend(jobs)
        except BaseException as exc:  # every report in the batch is retried by its thread
            for s in batch:
                s.error = exc
        with self._lock:
            if self._pending:
                nxt = self._pending[0]
                nxt.lead = True
            else:
                nxt = None
                self._busy = False
        for s in batch:
            if s.done is not None:
                s.done.set()
        if nxt is not None and nxt.done is not None:
            nxt.done.set()
