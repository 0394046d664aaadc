"""The unit of work: one execution inside one store transaction.

A :class:`Unit` loads only the rows it touches (the execution row, the step rows it reads or
changes), buffers events, jobs and step writes, and flushes them together. The execution row
keeps a small incremental state: ``active`` (steps with work in flight), ``joins`` (joins holding
arrivals) and ``last`` (the last completed step), so no event ever rescans the log.

The orchestration rules (:class:`noetl.engine.session.Session`, composed of the rule modules
flow, outcomes, retry, endings, loops and children) build on it; a rule module that needs a rule
of a module above it reaches it through the abstract hooks declared here, so none of them
imports the session: the imports run one way (see :mod:`noetl.engine.session`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from noetl.domain.lifecycle import JobKind, JobStatus, StepStatus, leasable, move
from noetl.domain.records import Event, ExecutionRow, Job, StepRow, now
from noetl.domain.wire import Outcome
from noetl.engine import events
from noetl.engine.plans import plan_for, remember
from noetl.engine.prefetch import next_reads
from noetl.plan import Plan, PlanStep
from noetl.settings import Settings
from noetl.templates import context

if TYPE_CHECKING:
    from noetl.store.base import Tx

DEFAULTS = Settings()
ROUTER_HOPS_MIN = 1000
ROUTER_HOPS_PER_STEP = 20


class Unit(ABC):
    def __init__(self, tx: Tx, ex: ExecutionRow, plan: Plan | None = None,
                 settings: Settings | None = None):
        self.tx = tx
        self.ex = ex
        self.settings = settings or DEFAULTS
        if plan is None:
            plan = plan_for(tx, ex)
        else:
            remember(ex.execution_id, plan)
        self.plan = plan
        self.rows: dict[str, StepRow] = {}
        self.dirty: set[str] = set()
        self.events: list[Event] = []
        self.jobs: list[Job] = []
        self.released: list[Job] = []  # waiting loop items this session queued
        self.job_updates: dict[int, Job] = {}
        self.wake = False  # new ready jobs: wake workers after commit
        self.ready = 0  # how many jobs this session made ready
        self.after: list[Unit] = []  # other executions touched (parents, children)
        self.flushed: list[Unit] = []  # the same, once flushed (for after-commit hooks)
        self.fresh = False  # a new execution: it has no step rows to read yet
        self.outbox = False  # notifications queued (noetl.engine.triggers): wake the sender
        self.parent_session: Unit | None = None  # the session that started or ends this one
        self.handed: list[Job] = []  # jobs hand_off leased to the reporter
        self.router_hops = 0  # routers activated by this session (never reset)
        self.max_router_hops = max(ROUTER_HOPS_MIN, ROUTER_HOPS_PER_STEP * len(plan.steps))
        st = ex.state
        st.setdefault("active", {})
        st.setdefault("joins", [])

    # -- the rules (noetl.engine.session) -------------------------------------------------
    @abstractmethod
    def open(self, ex: ExecutionRow, plan: Plan | None = None) -> Unit:
        """A session of the same kind for another execution, in the same transaction."""

    @abstractmethod
    def begin(self, inputs: dict[str, Any] | None = None,
              then: Callable[[Any], None] | None = None) -> None: ...
    @abstractmethod
    def step_done(self, ps: PlanStep, run: int, data: Any, envelope: Any,
                  attempts: int) -> None: ...
    @abstractmethod
    def step_failed(self, ps: PlanStep, info: dict[str, Any], attempts: int,
                    envelope: Any = None) -> None: ...
    @abstractmethod
    def job_succeeded(self, job: Job, outcome: Outcome) -> None: ...
    @abstractmethod
    def job_failed(self, job: Job, outcome: Outcome) -> None: ...

    # -- rows ------------------------------------------------------------------------------
    @property
    def eid(self) -> int:
        return self.ex.execution_id

    def row(self, name: str) -> StepRow:
        r = self.rows.get(name)
        if r is None:
            r = self._read_steps([name]).get(name) or StepRow(self.eid, name)
            self.rows[name] = r
        return r

    def _read_steps(self, names: list[str]) -> dict[str, StepRow]:
        """Stored step rows (a new execution has none: no query)."""
        return {} if self.fresh else self.tx.get_steps(self.eid, names)

    def touch(self, r: StepRow) -> None:
        self.dirty.add(r.step)

    def results(self, names: frozenset[str] | set[str]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        missing = []
        for n in names:
            r = self.rows.get(n)
            if r is not None:
                if r.has_result:
                    out[n] = r.result
            else:
                missing.append(n)
        if missing:
            for n, r in self._read_steps(missing).items():
                self.rows[n] = r
                if r.has_result:
                    out[n] = r.result
        return out

    def base(self) -> dict[str, Any]:
        return {"workload": self.ex.workload, "execution_id": str(self.eid)}

    def ctx(self, refs: frozenset[str] | set[str], extra: dict[str, Any] | None = None
            ) -> dict[str, Any]:
        return context(self.base(), self.results(refs), extra)

    def emit(self, ev: Event) -> None:
        """Buffer an event (built by :mod:`noetl.engine.events`)."""
        self.events.append(ev)

    def update_job(self, job: Job) -> None:
        self.job_updates[job.queue_id] = job

    def active_inc(self, name: str, n: int = 1) -> None:
        a = self.ex.state["active"]
        a[name] = a.get(name, 0) + n
        if a[name] <= 0:
            del a[name]

    def prefetch(self, names: set[str] | frozenset[str]) -> None:
        """Load the rows of several steps in one query (absent ones start empty)."""
        missing = [n for n in names if n not in self.rows]
        if not missing:
            return
        found = self._read_steps(missing)
        for n in missing:
            self.rows[n] = found.get(n) or StepRow(self.eid, n)

    def take(self, names: Iterable[str], found: dict[str, StepRow]) -> None:
        """Rows of ``names`` read already (with the report's locks; absent ones start empty)."""
        for n in names:
            if n not in self.rows:
                self.rows[n] = found.get(n) or StepRow(self.eid, n)

    def hand_off(self, worker_id: str, ttl: float, limit: int) -> list[Job]:
        """Lease up to ``limit`` jobs this session just made ready directly to ``worker_id``
        (eager dispatch): written once, already leased, with their ``action_started``."""
        if self.ex.terminal:
            return []
        t = now()
        handed: list[Job] = []
        released = {id(j) for j in self.released}
        for job in [*self.jobs, *self.released]:
            if len(handed) >= limit:
                break
            if job.status != JobStatus.QUEUED or not leasable(job, t) \
                    or job.kind not in (JobKind.STEP, JobKind.ITEM) or "preset" in job.payload:
                continue
            if id(job) in released:
                self.update_job(job)  # already a row: written leased at flush
            move(job, JobStatus.LEASED)
            job.worker_id = worker_id
            job.attempts = 1
            job.lease_until = t + ttl
            job.last_heartbeat = t
            ps = self.plan.step(job.step)
            r = self.row(job.step)
            if r.status == StepStatus.QUEUED:
                move(r, StepStatus.RUNNING)
                self.touch(r)
            self.emit(events.action_started(self.eid, job, ps.type, worker_id))
            handed.append(job)
        self.handed.extend(handed)
        return handed

    def flush(self) -> None:
        """Write everything buffered; the writes go to the store as one batch."""
        if self.after:  # executions written together: their event locks in one order
            self.tx.lock_events({s.eid for s in session_tree([self], pending=True)})
        for s in self.after:
            s.flush()
        self.flushed.extend(self.after)
        self.after = []
        self.ready += sum(1 for j in self.jobs if j.status == JobStatus.QUEUED) + \
            sum(1 for j in self.released if j.status == JobStatus.QUEUED) + \
            sum(1 for j in self.job_updates.values() if j.status == JobStatus.QUEUED) + \
            sum(s.ready for s in self.flushed)
        if self.ready:
            self.wake = True
        back: set[str] = set()  # what the reports of the jobs handed out read (speculation)
        if self.tx.speculative:
            for j in self.handed:
                back |= next_reads(self.plan, j.step)
        with self.tx.batch():
            self.tx.write_unit([self.rows[n] for n in self.dirty], self.events, self.jobs,
                               list(self.job_updates.values()), self.ex, self.wake,
                               back.difference(self.rows))
        self.dirty.clear()
        self.events = []
        self.jobs = []
        self.released = []
        self.job_updates = {}


def session_tree(sessions: Iterable[Unit], pending: bool) -> list[Unit]:
    """These sessions and the other executions' sessions they carry: still to be flushed
    with them (``pending``, ``Unit.after``) or already flushed (``Unit.flushed``)."""
    out: list[Unit] = []
    stack = list(sessions)
    while stack:
        s = stack.pop()
        out.append(s)
        stack.extend(s.after if pending else s.flushed)
    return out
