"""A pool of worker threads leasing from a backend: the engine in-process, or a server over
HTTP. Each thread runs a job and reports it, getting its next job in the same call, with no
idle wait between jobs; reports of threads finishing together travel in one batch
(:mod:`noetl.worker.combine`). One idle thread at a time asks the backend for work, for itself
and for the threads waiting (a wake-up, or polling as the always-correct baseline). A heartbeat
thread extends the leases of running jobs, and of jobs waiting for a thread, until the pool
has stopped.
"""

from __future__ import annotations

import logging
import os
import platform
import threading
import time
import uuid
from collections import deque
from typing import Any, Protocol

from noetl.domain.wire import HeartbeatResult, LogRecord, Outcome, Work
from noetl.errors import LeaseLost, NoetlError
from noetl.tools.base import Services
from noetl.tools.output import StepLog
from noetl.worker.combine import ReportCombiner
from noetl.worker.runner import job_secrets, run_work, storable_logs

log = logging.getLogger("noetl.worker")
MAX_LEASE = 100  # jobs one lease call may ask for (the API's limit)


REFUSALS_BEFORE_ERROR = 5


def _unreachable(exc: Exception) -> bool:
    """The backend is down or busy (retry for as long as it takes), not refusing the report."""
    code = getattr(exc, "status_code", None)
    if code in (0, 502, 503, 504):
        return True
    return any(c.__name__ in ("OperationalError", "InterfaceError", "PoolTimeout",
                              "ConnectionError", "TimeoutError") for c in type(exc).__mro__)


def _refused_outcome(outcome: Outcome, exc: Exception) -> Outcome:
    message = f"{type(exc).__name__}: {exc}".encode("utf-8", "backslashreplace").decode()[:2000]
    return {"status": "error", "report_id": uuid.uuid4().hex, "final": True,
            "duration": outcome.get("duration"),
            "error": {"message": f"the engine refused this step's outcome: {message}",
                      "type": "UnprocessableOutcome"}}


class Backend(Protocol):
    lease_seconds: float

    def lease(self, worker_id: str, limit: int = 1) -> list[Work]: ...
    def report(self, job_id: int, worker_id: str | None, outcome: Outcome) -> str: ...
    # optional: report_batch(reports, worker_id, limit) -> (statuses, jobs), see ReportCombiner
    def heartbeat(self, job_id: int, worker_id: str,
                  logs: list[LogRecord] | None = None) -> HeartbeatResult: ...
    # (``logs``: what a long job wrote since the last heartbeat, stored with it)
    def release(self, job_id: int, worker_id: str) -> None: ...
    def wait_for_work(self, seen: int, timeout: float) -> None: ...
    def work_version(self) -> int: ...


def default_worker_id() -> str:
    """``host-pid-random`` (NOETL_WORKER_ID, when set, is passed in as ``worker_id``)."""
    return f"{platform.node()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class WorkerPool:
    def __init__(self, backend: Backend, concurrency: int = 4, services: Services | None = None,
                 worker_id: str | None = None, poll_interval: float = 1.0,
                 mode: str | None = None, meta: dict[str, Any] | None = None):
        self.backend = backend
        # the worker registry: "remote" (noetl worker start), "server" (inside noetl server
        # start) or "local" (noetl run; its row is deleted when it stops)
        self.mode = mode or getattr(backend, "worker_mode", "local")
        self.meta = meta or {}
        self.session = uuid.uuid4().hex
        self._registry = callable(getattr(backend, "worker_beat", None))
        self._busy = 0  # threads running a job now
        self.concurrency = max(1, concurrency)
        self.services_template = services or Services()
        self.worker_id = worker_id or default_worker_id()
        self.poll_interval = poll_interval
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._running: dict[int, float] = {}  # job id -> started
        self._cancel: dict[int, threading.Event] = {}
        self._logs: dict[int, Services] = {}  # running jobs' services (their logs, secrets)
        self._lock = threading.Lock()
        # held by a heartbeat while it sends a job's logs (and puts them back if that fails), and
        # by the job's end before its final drain: no record put back after that drain is lost
        self._sending = threading.Lock()
        self._hb_stop = threading.Event()
        self._hb_thread: threading.Thread | None = None
        self._cv = threading.Condition()
        self._inbox: deque[Work] = deque()  # leased jobs for idle threads
        self._polling = False  # a thread is asking the backend for work
        self._waiting = 0  # idle threads waiting for it
        self.jobs_done = 0
        # jobs whose outcome is being reported (id -> the last error, if an attempt failed):
        # those left when stop() gives up waiting were not recorded (``unrecorded``), nor
        # were the reports the backend refused for good (``_dropped``)
        self._unreported: dict[int, str] = {}
        self._dropped = 0
        self.unrecorded = 0
        batch = getattr(backend, "report_batch", None)
        self.combiner = None if batch is None else ReportCombiner(
            lambda reports, n: batch(reports, self.worker_id, n), give_back=self._give_back)

    def start(self) -> WorkerPool:
        self._beat()  # registered before its first lease
        for i in range(self.concurrency):
            t = threading.Thread(target=self._loop, name=f"noetl-worker-{i}", daemon=True)
            t.start()
            self._threads.append(t)
        hb = threading.Thread(target=self._heartbeats, name="noetl-heartbeat", daemon=True)
        hb.start()
        self._hb_thread = hb
        self._threads.append(hb)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        with self._cv:
            self._cv.notify_all()
        wake = getattr(self.backend, "wake", None)
        if wake is not None:
            wake()
        say = log.info if self.mode != "local" else log.debug  # (noetl run: not its output)
        if self._busy:
            say("waiting up to %g s for %d running job(s)", timeout, self._busy)
        deadline = time.monotonic() + timeout
        for t in self._threads:
            if t is not self._hb_thread:
                t.join(max(0.0, deadline - time.monotonic()))
        with self._cv:  # leased for threads that have stopped: give them back
            left = list(self._inbox)
            self._inbox.clear()
        for work in left:
            self._give_back(work)
        say("stopped: %d job(s) run, %d given back unrun", self.jobs_done, len(left))
        with self._lock:
            lost = dict(self._unreported)
        for job_id, why in lost.items():  # (their threads are still trying: given up here)
            log.error("job %s: its result was not recorded before the worker stopped (%s); "
                      "the job runs again when its lease runs out", job_id, why)
        if self._dropped:
            log.error("%d result(s) refused by the backend and dropped while this worker ran "
                      "(logged as each happened)", self._dropped)
        self.unrecorded = len(lost) + self._dropped
        self._hb_stop.set()  # leases of jobs still finishing were kept alive until now
        if self._hb_thread is not None:
            self._hb_thread.join(max(0.0, deadline - time.monotonic()))
        if self._registry:
            try:
                self.backend.worker_stopped(  # type: ignore[attr-defined]
                    self.worker_id, forget=self.mode == "local")
            except Exception as exc:
                log.warning("could not deregister worker %s: %s", self.worker_id, exc)

    def info(self) -> dict[str, Any]:
        """This pool's entry in the worker registry (sent with every worker heartbeat)."""
        from noetl import __version__

        return {"worker_id": self.worker_id, "session": self.session, "mode": self.mode,
                "hostname": platform.node(), "pid": os.getpid(),
                "concurrency": self.concurrency, "running": self._busy,
                "jobs_done": self.jobs_done, "lease_seconds": self.backend.lease_seconds,
                "meta": {"version": __version__, **self.meta}}

    def _beat(self) -> None:
        """Register, or say this worker is alive (every third of the lease time)."""
        if not self._registry:
            return
        try:
            self.backend.worker_beat(self.info())  # type: ignore[attr-defined]
        except Exception as exc:
            if getattr(exc, "status_code", None) in (404, 405) or type(exc).__name__ == "NotFound":
                log.info("the server has no worker registry: not registering (%s)", exc)
                self._registry = False  # an older server
            else:
                log.warning("worker heartbeat failed: %s", exc)

    def __enter__(self) -> WorkerPool:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _services(self) -> Services:
        s = self.services_template
        return Services(credentials=s.credentials, data_dir=s.data_dir,
                        http_client=s.http_client, secrets=s.secrets, settings=s.settings)

    def _loop(self) -> None:
        services = self._services()
        while not self._stop.is_set():
            work = self._next_work()
            if work is None:
                continue
            works = [work]
            while works:
                work = works.pop(0)
                if self._stop.is_set():
                    self._give_back(work)
                    continue
                works.extend(self._share(self._run_one(work, services)))

    def _share(self, works: list[Work]) -> list[Work]:
        """Beyond the first, jobs go to threads waiting idle (never to an inbox no thread
        watches); return the ones this thread runs itself."""
        if len(works) <= 1:
            return works
        with self._cv:
            n = max(0, min(len(works) - 1, self._waiting - len(self._inbox)))
            if n:
                self._queue_locked(works[1:1 + n])
                self._cv.notify(n)
        kept = works[1 + n:]
        self._keep_alive(kept)  # run here after the first
        return [works[0], *kept]

    def _queue_locked(self, works: list[Work]) -> None:
        """Into the inbox (under ``_cv``)."""
        self._inbox.extend(works)
        self._keep_alive(works)

    def _keep_alive(self, works: list[Work]) -> None:
        """Leased jobs waiting for a thread: heartbeats keep their leases from now on."""
        t = time.monotonic()
        with self._lock:
            for w in works:
                self._running[int(w["job_id"])] = t

    def _next_work(self) -> Work | None:
        """A job shared by another thread, or one leased by this thread. One idle thread at a
        time asks the backend (for itself and every thread waiting), so idle threads do not
        all poll the server at once; the others wait here for what it brings."""
        with self._cv:
            if self._inbox:
                return self._inbox.popleft()
            if self._polling:
                self._waiting += 1
                try:
                    self._cv.wait(self.poll_interval)
                finally:
                    self._waiting -= 1
                return self._inbox.popleft() if self._inbox else None
            self._polling = True
            want = min(1 + self._waiting, MAX_LEASE)
        works: list[Work] = []
        try:
            seen = self.backend.work_version()
            works = self.backend.lease(self.worker_id, want)
            if not works:
                self.backend.wait_for_work(seen, self.poll_interval)
        except Exception as exc:
            log.warning("lease failed: %s", exc)
            self._stop.wait(min(self.poll_interval, 1.0))
        finally:
            late = self._stop.is_set()  # stop() may have emptied the inbox already
            with self._cv:
                self._polling = False
                if not late:
                    self._queue_locked(works[1:])
                self._cv.notify(len(works))  # the jobs, and one thread to poll next
            if late:
                for work in works[1:]:
                    self._give_back(work)
        return works[0] if works else None

    def _give_back(self, work: Work) -> None:
        with self._lock:
            self._running.pop(int(work["job_id"]), None)
        try:
            self.backend.release(int(work["job_id"]), self.worker_id)
        except NoetlError as exc:
            log.warning("could not release job %s: %s", work["job_id"], exc)

    def _run_one(self, work: Work, services: Services) -> list[Work]:
        """Run one job and report it; return the next jobs leased along with the report."""
        job_id = int(work["job_id"])
        services.cancelled = threading.Event()
        services.log = StepLog.configured(services.config)
        with self._lock:
            self._running[job_id] = time.monotonic()
            self._cancel[job_id] = services.cancelled
            self._logs[job_id] = services
            self._busy += 1
        try:
            outcome = run_work(work, services)
            outcome["report_id"] = uuid.uuid4().hex
            if work.get("reads"):  # what the report reads first: any server process reads it
                outcome["reads"] = work["reads"]  # with the report's locks (engine.prefetch)
            with self._sending, self._lock:  # no heartbeat is sending this job's logs now,
                self._logs.pop(job_id, None)  # and none takes them from here on
                self._unreported[job_id] = "its report was not answered"  # (until finally)
            late = services.log.drain(final=True)
            if late:
                outcome["logs"] = [*(outcome.get("logs") or []),
                                   *storable_logs(late, job_secrets(services))]
            return self._report(job_id, outcome)
        finally:
            with self._lock:
                self._running.pop(job_id, None)
                self._cancel.pop(job_id, None)
                self._logs.pop(job_id, None)
                self._unreported.pop(job_id, None)
                self._busy -= 1
            services.log = None
            self.jobs_done += 1

    def _beat_job(self, job_id: int) -> HeartbeatResult | None:
        """One heartbeat for a running job, with what it wrote so far; None when it failed
        (the records are put back for the next heartbeat or the job's final drain)."""
        with self._lock:
            services = self._logs.get(job_id)
        jl = services.log if services is not None else None
        records = jl.drain() if jl is not None else []
        try:
            if records and services is not None:  # what a long job wrote so far
                return self.backend.heartbeat(job_id, self.worker_id,
                                              logs=storable_logs(records, job_secrets(services)))
            return self.backend.heartbeat(job_id, self.worker_id)
        except Exception as exc:
            if records and jl is not None:
                jl.put_back(records)
            log.warning("heartbeat for job %s failed: %s", job_id, exc)
            return None

    def _report(self, job_id: int, outcome: Outcome) -> list[Work]:
        """Report until the backend has it (retried, never dropped; at shutdown too: stop()
        waits for it, up to its timeout, then says it gave up). With a backend that can,
        lease the next job in the same call (one round trip per step)."""
        delay = 0.05
        combined = getattr(self.backend, "report_and_lease", None)
        refused = 0  # failures that are not the backend being unreachable
        while True:
            try:
                if self.combiner is not None:
                    return self.combiner.submit(job_id, outcome, 0 if self._stop.is_set() else 1)[1]
                if combined is not None and not self._stop.is_set():
                    return list(combined(job_id, self.worker_id, outcome, 1)[1])
                self.backend.report(job_id, self.worker_id, outcome)
                return []
            except LeaseLost as exc:
                log.warning("job %s: result not recorded, lease lost: %s", job_id, exc)
                return list(getattr(exc, "jobs", []))
            except Exception as exc:
                with self._lock:
                    self._unreported[job_id] = f"{type(exc).__name__}: {exc}"
                log.warning("job %s: report failed (%s), retrying", job_id, exc)
                refused += not _unreachable(exc)
                if refused == REFUSALS_BEFORE_ERROR:  # its content: report that instead
                    outcome = _refused_outcome(outcome, exc)
                elif refused >= 2 * REFUSALS_BEFORE_ERROR:  # the lease expires; after a few
                    log.error("job %s: report refused, dropped: %s", job_id, exc)  # expiries
                    with self._lock:
                        self._dropped += 1
                    return []  # the step fails ("worker died while running this step")
                time.sleep(delay)
                delay = min(delay * 2, 5.0)

    def _heartbeats(self) -> None:
        interval = max(0.1, self.backend.lease_seconds / 3)
        while not self._hb_stop.wait(interval):  # past stop(): running jobs may finish
            self._beat()
            with self._lock:
                due = [j for j, t in self._running.items() if time.monotonic() - t > interval]
            for job_id in due:
                with self._sending:
                    beat = self._beat_job(job_id)
                if beat is None:
                    continue
                if beat.get("cancelled"):
                    with self._lock:
                        ev = self._cancel.get(job_id)
                    if ev is not None:
                        ev.set()  # tools that can stop (isolated python) stop now
