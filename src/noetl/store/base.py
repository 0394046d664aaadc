"""The store interface. The engine talks only to these two classes.

A :class:`Store` hands out :class:`Tx` units of work. Everything written inside one ``with
store.transaction() as tx`` block commits together or not at all: events, the step state kept
beside them, queue rows and the execution row. Backends: :mod:`noetl.store.sqlite`,
:mod:`noetl.store.postgres`.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Collection, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

from noetl.domain.records import (
    CatalogEntry,
    Credential,
    Event,
    ExecutionRow,
    Job,
    StepRow,
)
from noetl.settings import Settings
from noetl.store.triggers import TriggerSql


class Leased(NamedTuple):
    """One job a lease took (:meth:`Tx.lease_jobs`)."""

    job: Job
    prev: str  # its status before: ``queued``, or ``leased`` (its lease had run out)
    lost_worker: str | None  # for an expired lease: the worker that held it


class Stale(Exception):
    """A speculative report's rows changed since it kept them (:meth:`Tx.speculate`): its
    transaction is rolled back and runs again, reading them (:meth:`Store.stale`)."""


class Read(NamedTuple):
    """What a report reads first, with its locks (:meth:`Tx.lock_jobs_reading`)."""

    job: Job
    execution: ExecutionRow
    steps: dict[str, StepRow]  # the rows asked for that exist


class Tx(TriggerSql, ABC):
    """One transaction. (Schedules, hooks and notifications: :class:`TriggerSql`.)"""

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Writes inside may be sent together (PostgreSQL pipelines them); results of
        statements inside are not read until the block ends."""
        yield

    def notify_in_tx(self) -> None:
        """Ask other processes to look for work once this transaction commits (no-op here)."""

    def settle(self) -> None:
        """Wait for the answers of every statement sent so far, raising the first one's error
        here (PostgreSQL may send writes on without waiting: :meth:`batch`, a unit's write);
        a no-op where each statement is answered where it is sent."""

    @abstractmethod
    def next_node_id(self) -> int:
        """Take the next value of the store's node counter (unique per process)."""

    # executions
    @abstractmethod
    def insert_execution(self, row: ExecutionRow) -> None: ...
    @abstractmethod
    def get_execution(self, execution_id: int, lock: bool = False) -> ExecutionRow | None: ...
    @abstractmethod
    def get_playbook(self, execution_id: int) -> dict[str, Any] | None:
        """The playbook snapshot stored with the execution (rows come without it)."""

    @abstractmethod
    def update_execution(self, row: ExecutionRow) -> None: ...
    @abstractmethod
    def list_executions(self, status: str | None = None, path: str | None = None,
                        parent_execution_id: int | None = None, limit: int = 50,
                        offset: int = 0, since: float | None = None,
                        query: str | None = None) -> tuple[list[ExecutionRow], int]:
        """Newest first, with the total matching. ``since``: started at or after this epoch
        time; ``query``: a case-insensitive substring of the path or the error text, or the
        start of the execution id."""
    @abstractmethod
    def count_executions_by_status(self) -> dict[str, int]: ...
    @abstractmethod
    def children(self, execution_id: int) -> list[ExecutionRow]: ...

    # step state
    @abstractmethod
    def get_steps(self, execution_id: int,
                  names: Iterable[str] | None = None) -> dict[str, StepRow]: ...
    @abstractmethod
    def save_steps(self, rows: Iterable[StepRow]) -> None: ...
    @abstractmethod
    def step_results(self, execution_id: int, names: Iterable[str]) -> dict[str, Any]: ...

    # events
    @abstractmethod
    def add_events(self, events: list[Event]) -> None: ...
    @abstractmethod
    def get_events(self, execution_id: int, since_seq: int = 0, limit: int = 1000,
                   event_type: str | None = None) -> list[Event]: ...
    @abstractmethod
    def event_seq(self, event_id: int) -> int | None: ...
    @abstractmethod
    def has_event(self, event_id: int) -> bool: ...

    # queue
    @abstractmethod
    def add_jobs(self, jobs: list[Job]) -> None: ...
    @abstractmethod
    def get_job(self, queue_id: int, lock: bool = False) -> Job | None: ...
    @abstractmethod
    def update_job(self, job: Job) -> None: ...

    def lock_job(self, queue_id: int) -> tuple[Job, ExecutionRow | None] | None:
        """Lock a job's execution row, then the job row (the lock order everywhere); return
        both, or None when the job does not exist."""
        job = self.get_job(queue_id, lock=True)
        if job is None:
            return None
        return job, self.get_execution(job.execution_id, lock=True)

    def lock_job_reading(self, queue_id: int, steps: Collection[str]
                         ) -> tuple[Job, ExecutionRow | None, dict[str, StepRow] | None] | None:
        """:meth:`lock_job`, and the rows of ``steps`` of the job's execution as they are now
        that it is locked (those that exist), or None in their place when they were not read
        (then read them after). PostgreSQL reads them with the locks, in one statement."""
        got = self.lock_job(queue_id)
        return None if got is None else (got[0], got[1], None)

    def write_unit(self, steps: list[StepRow], events: list[Event], jobs: list[Job],
                   updates: list[Job], execution: ExecutionRow | None,
                   notify: bool = False, read_back: Collection[str] = ()) -> None:
        """Write what one unit of work buffered: step rows, events, new jobs, updated jobs,
        the execution row and (``notify``) :meth:`notify_in_tx`; as those calls in that
        order would (PostgreSQL sends them as one statement). ``read_back``: step rows of
        ``execution`` (not written here) to read with the write, for :attr:`read_back`
        (speculative stores; a hint, ignored elsewhere)."""
        self.save_steps(steps)
        self.add_events(events)
        self.add_jobs(jobs)
        for j in updates:
            self.update_job(j)
        if execution is not None:
            self.update_execution(execution)
        if notify:
            self.notify_in_tx()

    def try_lock_execution(self, execution_id: int) -> ExecutionRow | None:
        """Lock an execution row unless another transaction holds it (then None, at once)."""
        return self.get_execution(execution_id, lock=True)

    def lock_events(self, execution_ids: set[int]) -> None:
        """Before writing several executions' events: take their event locks in one order."""

    def lock_jobs(self, queue_ids: list[int]) -> None:
        """Before a batch of reports: take every lock it can need, in global orders
        (PostgreSQL; one writer at a time needs none)."""

    speculative: ClassVar[bool] = False  # speculate() is supported (PostgreSQL)
    xid: str | None = None  # after commit (speculative stores): the transaction's id
    # after commit: the step rows the last write_unit read back, by name (None: absent)
    read_back: dict[str, StepRow | None] | None = None

    def speculate(self, execution_id: int, queue_id: int, xid: str) -> None:
        """Report job ``queue_id`` from rows kept since transaction ``xid`` wrote them,
        checked in the report's write (PostgreSQL: :class:`noetl.store.pg_unit.PgUnit`)."""
        raise NotImplementedError

    def lock_jobs_reading(self, reads: dict[int, Collection[str]]) -> dict[int, Read]:
        """:meth:`lock_jobs` for the jobs of ``reads`` (job id → the step rows its report reads
        first), and what each of their reports would read first with
        :meth:`lock_job_reading`, as it is once every lock is held: the job, its execution
        and the rows of those steps that exist. Jobs left out (not found, no execution, or
        not read here: SQLite) are read by their report as before."""
        self.lock_jobs(list(reads))
        return {}

    @abstractmethod
    def lease_jobs(self, worker_id: str, lease_seconds: float, limit: int,
                   now: float, roots: Collection[int] | None = None) -> list[Leased]:
        """Atomically lease up to ``limit`` ready jobs, including jobs whose lease expired.

        Returns (job after leasing, previous status, lost worker) triples (:class:`Leased`);
        a previous status of ``leased`` means the job was re-leased after its lease expired,
        and the lost worker is the one whose lease ran out (None for a ready job).
        ``roots``: only jobs of these executions and of the executions below them (their
        sub-playbook children, at any depth), in the same order (an embedded ``noetl run``
        leases only its own); None: any job (servers and workers)."""

    @abstractmethod
    def next_available_at(self) -> float | None: ...
    @abstractmethod
    def release_waiting(self, execution_id: int, step: str, run: int, count: int) -> list[Job]:
        """Move up to ``count`` ``waiting`` jobs of a loop run to ``queued``, lowest index first."""

    @abstractmethod
    def cancel_jobs(self, execution_id: int) -> list[Job]:
        """Cancel every job of the execution that is not finished; return the cancelled jobs."""

    @abstractmethod
    def cancel_step_jobs(self, execution_id: int, step: str, run: int) -> None:
        """Cancel the unfinished (queued or waiting) jobs of one run of a step."""

    @abstractmethod
    def mark_step_running(self, execution_id: int, step: str) -> None: ...
    @abstractmethod
    def item_results(self, execution_id: int, step: str, run: int) -> list[Any]: ...
    @abstractmethod
    def loop_items(self, execution_id: int, step: str, run: int, offset: int = 0,
                   limit: int = 100, status: str | None = None) -> tuple[list[Job], int]:
        """One page of a loop run's item jobs in index order, and how many there are (with
        ``status``: only jobs with that queue status)."""

    @abstractmethod
    def item_events(self, execution_id: int, step: str, indexes: list[int]) -> list[Event]:
        """The ``action_*`` events of those loop items of a step, in order."""

    @abstractmethod
    def loop_item_counts(self, execution_id: int, step: str, run: int) -> dict[str, int]:
        """Item jobs of a loop run per queue status."""

    @abstractmethod
    def list_jobs(self, status: str | None = None, execution_id: int | None = None,
                  worker_id: str | None = None, limit: int = 100) -> list[Job]: ...
    @abstractmethod
    def queue_size(self, status: str | None = "queued") -> int: ...

    # workers (rows as dicts, see noetl.store.workers) and the queue reads of the explainer
    @abstractmethod
    def worker_beat(self, info: dict[str, Any], now: float) -> None: ...
    @abstractmethod
    def worker_stopped(self, worker_id: str, now: float, forget: bool = False) -> bool: ...
    @abstractmethod
    def list_workers(self) -> list[dict[str, Any]]: ...
    @abstractmethod
    def prune_workers(self, seen_before: float) -> int: ...
    @abstractmethod
    def job_summary(self, execution_id: int) -> list[dict[str, Any]]: ...
    @abstractmethod
    def expired_leases(self, now: float, limit: int = 100) -> list[int]: ...
    @abstractmethod
    def next_lease_expiry(self) -> float | None: ...

    # catalog
    @abstractmethod
    def register(self, path: str, content: str, payload: dict[str, Any],
                 kind: str = "Playbook") -> CatalogEntry: ...
    @abstractmethod
    def get_catalog(self, path: str | None = None, version: int | None = None,
                    catalog_id: int | None = None) -> CatalogEntry | None: ...
    @abstractmethod
    def list_catalog(self, kind: str | None = None, query: str | None = None,
                     latest_only: bool = False) -> list[CatalogEntry]: ...
    @abstractmethod
    def catalog_versions(self, path: str) -> list[CatalogEntry]: ...

    # credentials (data already encrypted by the caller)
    @abstractmethod
    def put_credential(self, name: str, type: str, data_encrypted: str, description: str | None,
                       tags: list[str]) -> None: ...
    @abstractmethod
    def get_credential(self, name: str) -> tuple[Credential, str] | None: ...
    @abstractmethod
    def list_credentials(self, type: str | None = None) -> list[Credential]: ...
    @abstractmethod
    def delete_credential(self, name: str) -> bool: ...

    # step logs and lineage (noetl.store.logs_sql)
    @abstractmethod
    def add_logs(self, rows: list[dict[str, Any]]) -> None: ...
    @abstractmethod
    def get_logs(self, execution_id: int, since: int = 0, limit: int = 1000,
                 step: str | None = None, index: int | None = None) -> list[dict[str, Any]]: ...
    @abstractmethod
    def add_lineage(self, execution_id: int, source_execution_id: int, kind: str,
                    overrides: dict[str, Any] | None, reused: list[str],
                    created_at: float) -> None: ...
    @abstractmethod
    def get_lineage(self, execution_id: int) -> dict[str, Any] | None: ...
    @abstractmethod
    def derived_executions(self, source_execution_id: int,
                           limit: int = 100) -> list[dict[str, Any]]: ...
    @abstractmethod
    def run_jobs(self, execution_id: int, step: str, run: int) -> list[Job]: ...


@dataclass(frozen=True)
class Capabilities:
    """What a backend can do, as it declares it. The rest of NoETL asks these (and
    :meth:`Store.retryable`), never which database it is."""

    name: str  # for messages: "SQLite", "PostgreSQL"
    multi_process: bool  # several processes (servers) may share the database
    poll_seconds: float  # a waiting lease re-checks the queue at least this often
    log_poll_seconds: float  # a log follower re-checks at least this often
    key_file: bool  # the credential key may be a file beside the store (else the key is required)
    note: str = ""  # what it cannot do, for messages


class Store(ABC):
    """A database holding the catalog, executions, events, step state, queue and credentials."""

    url: str
    dialect: str  # the migrations' directory (migrations/<dialect>/)
    capabilities: ClassVar[Capabilities]

    def __init__(self, url: str, settings: Settings | None = None) -> None:
        self.url = url
        self.settings = settings or Settings()  # the process's, as the store was opened
        self._work = threading.Condition()
        self._work_version = 0

    @abstractmethod
    def schema_version(self) -> int:
        """The latest migration applied (a read any live database answers at once)."""

    @abstractmethod
    def transaction(self) -> AbstractContextManager[Tx]:
        """Context manager yielding a :class:`Tx` that commits on success."""

    @contextmanager
    def read(self) -> Iterator[Tx]:
        with self.transaction() as tx:
            yield tx

    @abstractmethod
    def close(self) -> None: ...

    @staticmethod
    def stale(exc: BaseException) -> bool:
        """Whether a transaction that raised ``exc`` failed because a speculative report's
        rows had changed (:meth:`Tx.speculate`): run it again at once, not speculating."""
        return isinstance(exc, Stale)

    @staticmethod
    def retryable(exc: BaseException) -> bool:
        """Whether a transaction that raised ``exc`` may simply run again (a serialization
        failure, a deadlock); :class:`noetl.engine.core.Engine` retries those."""
        return False

    @staticmethod
    def unavailable(exc: BaseException) -> bool:
        """Whether ``exc`` says the database cannot be reached or is too busy now (not that a
        request was wrong): whoever sent the request should send it again later."""
        return False

    def local_dir(self) -> Path | None:
        """The directory of the store's own file, for an embedded store (else None)."""
        return None

    def claim_node_id(self) -> None:
        """Give this process a node id no other process on this database holds (or the one
        ``NOETL_NODE_ID`` names)."""
        from noetl import ids

        if self.settings.node_id is not None:
            ids.set_node(self.settings.node_id)
            return
        with self.transaction() as tx:
            ids.set_node(tx.next_node_id())

    # wake-ups: polling is the baseline; these only cut latency
    def notify_work(self) -> None:
        with self._work:
            self._work_version += 1
            self._work.notify_all()

    def work_version(self) -> int:
        return self._work_version

    def wait_for_work(self, seen_version: int, timeout: float) -> None:
        with self._work:
            if self._work_version == seen_version:
                self._work.wait(timeout)
