"""Embedded mode: run an execution in this process on the embedded store, with a small pool
of worker threads. No server, no set-up.

``LocalBackend`` (the engine as a worker backend, in-process) lives here, above both the
worker and the engine, the only layer that may use both; so does :class:`DirectWorker`, the
pool of ``noetl worker start --store postgresql://...``: a worker process that runs the engine
over the shared store itself (no server in between)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from noetl.domain.records import ExecutionRow, now
from noetl.domain.wire import HeartbeatResult, LogRecord, Outcome, ReportResult, Work
from noetl.dsl.model import Playbook
from noetl.engine.core import Engine
from noetl.engine.workers import beat, stopped
from noetl.settings import Settings
from noetl.store import Store, open_store
from noetl.templates import configure
from noetl.tools.base import Services
from noetl.worker.pool import WorkerPool

IDLE_BACKOFF = 0.005  # s: the first wait after an empty lease while a job is past due


class LocalBackend:
    """The engine as a worker backend, in-process (embedded mode)."""

    def __init__(self, engine: Engine, worker_mode: str = "local"):
        self.engine = engine
        self.lease_seconds = engine.lease_seconds
        self.worker_mode = worker_mode  # how its pool shows in the worker registry
        self._backoff = IDLE_BACKOFF  # the next wait after an empty lease of a due job

    def lease(self, worker_id: str, limit: int = 1) -> list[Work]:
        works = self.engine.lease(worker_id, limit)
        if works:
            self._backoff = IDLE_BACKOFF
        return works

    def report(self, job_id: int, worker_id: str | None, outcome: Outcome) -> str:
        return self.engine.report(job_id, worker_id, outcome)

    def report_and_lease(self, job_id: int, worker_id: str | None, outcome: Outcome,
                         limit: int = 1) -> tuple[str, list[Work]]:
        return self.engine.report_and_lease(job_id, worker_id, outcome, limit)

    def report_batch(self, reports: list[tuple[int, Outcome]], worker_id: str | None,
                     limit: int = 0) -> tuple[list[ReportResult], list[Work]]:
        return self.engine.report_batch(reports, worker_id, limit)

    def heartbeat(self, job_id: int, worker_id: str,
                  logs: list[LogRecord] | None = None) -> HeartbeatResult:
        return self.engine.heartbeat(job_id, worker_id, logs=logs)

    def release(self, job_id: int, worker_id: str) -> None:
        self.engine.release(job_id, worker_id)

    def work_version(self) -> int:
        return self.engine.store.work_version()

    def worker_beat(self, info: dict[str, Any]) -> None:
        beat(self.engine.store, info)

    def worker_stopped(self, worker_id: str, forget: bool = False) -> None:
        stopped(self.engine.store, worker_id, forget)

    def wake(self) -> None:
        self.engine.store.notify_work()

    def wait_for_work(self, seen: int, timeout: float) -> None:
        """After an empty lease: until a notification, the next due time, or ``timeout``.

        A due time already past names a job this lease could not take: another
        transaction holds its row (another worker's lease not yet committed, the reaper) or
        its execution's (a poison job left expired), or, for a runner leasing only its own
        jobs, it is another execution's. Leasing again at once would spin until that ends;
        the wait backs off instead, from a few ms doubling up to ``timeout`` (reset once the
        queue has nothing past due, or a lease found work). A notification still wakes it
        at once: the back-off only spaces out the re-checks polling makes."""
        nxt, t = self.engine.next_wakeup(), now()
        if nxt is None or nxt > t:
            self._backoff = IDLE_BACKOFF
            if nxt is not None:
                timeout = min(timeout, nxt - t + 0.001)
        else:
            wait = min(timeout, self._backoff)
            self._backoff = min(self._backoff * 2, max(timeout, IDLE_BACKOFF))
            timeout = wait
        if timeout > 0:
            self.engine.store.wait_for_work(seen, timeout)


class NotShared(ValueError):
    """The store cannot be shared by several processes (a direct worker needs one that can)."""


def _where(url: str) -> str:
    """``host:port/db`` of a store URL (no user, no password) for the worker registry."""
    from urllib.parse import urlsplit

    p = urlsplit(url)
    return f"{p.hostname or 'localhost'}:{p.port or 5432}{p.path}"


class DirectWorker:
    """A worker pool whose backend is the engine itself over a shared store (PostgreSQL): it
    leases with ``SKIP LOCKED``, runs the job and reports it, leasing the next, in one
    transaction, the same engine code a server runs for an HTTP worker. It wakes on the
    store's notifications (PostgreSQL ``LISTEN/NOTIFY``) and re-checks the queue every
    ``poll_seconds`` the store declares. Credentials are read from the store (the key from
    ``NOETL_ENCRYPTION_KEY``); it runs a lease reaper too (safe beside the servers': each
    expiry is taken under the job's row lock and checked again). ``start``/``stop``."""

    def __init__(self, store_url: str, concurrency: int, settings: Settings,
                 worker_id: str | None = None, lease_seconds: float | None = None,
                 reaper: bool = True):
        from dataclasses import replace

        from noetl.credentials import check_credentials_key, store_credentials
        from noetl.engine.expiry import Reaper
        from noetl.store.factory import backend_for

        caps = backend_for(store_url).capabilities
        if not caps.multi_process:
            raise NotShared(
                f"a direct worker shares the store with the server and other workers, and a "
                f"{caps.name} store cannot be shared ({caps.note}): use a PostgreSQL store, or "
                "run `noetl server start` (its in-server workers) or HTTP workers "
                "(`noetl worker start --server URL`)")
        # one connection per thread, the heartbeat, the reaper and one to spare
        settings = replace(settings, pg_pool_size=max(settings.pg_pool_size, concurrency + 3))
        self.store = open_store(store_url, settings)
        try:
            check_credentials_key(self.store)
        except Exception:
            self.store.close()
            raise
        configure(settings)
        self.settings = settings
        self.engine = Engine(self.store, lease_seconds, settings)
        services = Services(credentials=store_credentials(self.store), settings=settings)
        self.pool = WorkerPool(LocalBackend(self.engine, "direct"), concurrency, services,
                               worker_id=worker_id or settings.worker_id,
                               poll_interval=caps.poll_seconds,
                               meta={"store": f"{caps.name} {_where(store_url)}"})
        self.reaper = Reaper(self.engine) if reaper else None

    def start(self) -> DirectWorker:
        self.pool.start()
        if self.reaper is not None:
            self.reaper.start()
        return self

    def stop(self, grace: float = 30.0) -> None:
        try:
            self.pool.stop(grace)
            if self.reaper is not None:
                self.reaper.stop()
        finally:
            self.store.close()


class LocalRunner:
    """An engine plus a worker pool over one store. Use as a context manager.

    With ``own_only`` (what ``noetl run``, ``execute``, ``rerun`` and ``resume`` use) its
    workers lease only the jobs of the executions it was given (:meth:`adopt`; :meth:`start`
    and :meth:`run` adopt theirs) and of their sub-playbook children: another execution in the
    store (one a killed ``noetl run`` left behind, one a server runs) is never run by it.
    Without, they lease any ready job in the store, as a worker does."""

    def __init__(self, store: Store | str | None = None, concurrency: int = 4,
                 services: Services | None = None, lease_seconds: float | None = None,
                 settings: Settings | None = None, own_only: bool = False):
        """``settings``: the process's (default: those the store was opened with; a store
        opened here reads them from the environment)."""
        self.store = store if isinstance(store, Store) else open_store(store, settings)
        self._own_store = not isinstance(store, Store)
        self.settings = settings or self.store.settings
        configure(self.settings)
        self.engine = Engine(self.store, lease_seconds, self.settings)
        if own_only:
            self.engine.lease_roots = frozenset()
        self._adopting = threading.Lock()
        if services is None:
            from noetl.credentials import store_credentials

            services = Services(credentials=store_credentials(self.store))
        if services.settings is None:
            services.settings = self.settings
        self.pool = WorkerPool(LocalBackend(self.engine), concurrency, services,
                               worker_id=self.settings.worker_id)
        self.grace = 10.0  # seconds running steps get to finish when the runner closes
        self._changed = threading.Condition()
        self._ended: set[int] = set()
        self.engine.listeners.append(self._notify)

    def _notify(self, ended: set[int]) -> None:
        if ended:
            with self._changed:
                self._ended.update(ended)
                self._changed.notify_all()

    def __enter__(self) -> LocalRunner:
        self.pool.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.pool.stop(self.grace)
        if self._own_store:
            self.store.close()

    def wait(self, execution_id: int, timeout: float | None = None,
             on_change: Callable[[], None] | None = None, tick: float = 0.5) -> dict[str, Any]:
        """Block until the execution ends (woken by the engine when it does; ``tick`` is the
        polling fallback and the refresh rate of ``on_change``)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if execution_id in self._ended or self.engine.is_terminal(execution_id):
                return self.engine.describe(execution_id)
            if on_change:
                on_change()
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"execution {execution_id} still running after {timeout} s")
            self.pause(execution_id, tick)

    def pause(self, execution_id: int, seconds: float) -> None:
        """Sleep up to ``seconds``; return as soon as the execution ends."""
        with self._changed:
            if execution_id not in self._ended:
                self._changed.wait(seconds)

    def adopt(self, execution_id: int) -> None:
        """Let an ``own_only`` runner's workers lease this execution's jobs (and its
        children's), and wake them (no-op on a runner that leases any job)."""
        with self._adopting:
            roots = self.engine.lease_roots
            if roots is None or execution_id in roots:
                return
            self.engine.lease_roots = roots | {execution_id}
        self.store.notify_work()

    def start(self, playbook: Playbook | None = None, *, path: str | None = None,
              version: int | str | None = None, args: dict[str, Any] | None = None,
              merge: bool = False) -> ExecutionRow:
        """Start an execution (see :meth:`noetl.engine.core.Engine.start`) for these workers."""
        ex = self.engine.start(playbook, path=path, version=version, args=args, merge=merge)
        self.adopt(ex.execution_id)
        return ex

    def run(self, playbook: Playbook | None = None, *, path: str | None = None,
            version: int | str | None = None, args: dict[str, Any] | None = None,
            merge: bool = False, timeout: float | None = None,
            on_change: Callable[[], None] | None = None) -> dict[str, Any]:
        ex = self.start(playbook, path=path, version=version, args=args, merge=merge)
        return self.wait(ex.execution_id, timeout, on_change)
