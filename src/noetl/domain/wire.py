"""The worker ↔ engine wire: what a lease hands a worker, what a worker reports, and what it
gets back. The same shapes travel in-process (``LocalBackend``) and over HTTP (the queue
routes, ``worker/http_backend.py``), so they live here, below every layer that uses them.

They are JSON objects (ids are decimal strings, times epoch seconds); the TypedDicts say which
keys a well-formed one has. Values a tool produced (``data``, ``envelope``, ``meta``) and the
playbook's own values (``action``, ``args``, the workload) stay ``Any``: they are the user's.
"""

# (no ``from __future__ import annotations`` here: a TypedDict compiles each annotation given
# as a string into a ForwardRef when its class is made, which doubled this module's import)
from typing import Any, Literal, NotRequired, TypedDict


class LogRecord(TypedDict):
    """One line a job wrote (stdout, stderr or ``logging``), as it travels to the server."""

    t: float
    stream: str
    level: str
    message: str
    logger: NotRequired[str | None]


class WorkContext(TypedDict):
    """What a job's templates see besides its args."""

    workload: Any
    execution_id: str
    results: dict[str, Any]  # only the step results its templates reference
    extra: dict[str, Any]  # a loop item's variables


class Work(TypedDict):
    """The work package of one leased job (``noetl.engine.work.build_work``): everything a
    worker needs to run it, with no further round trip."""

    job_id: str
    execution_id: str
    step: str
    run: int
    kind: str  # noetl.domain.lifecycle.JobKind
    index: int | None
    attempt: int
    lease_until: float | None
    action: dict[str, Any]  # the tool configuration, templates unrendered
    args: dict[str, Any]
    edge_args: dict[str, Any]
    save: dict[str, Any] | None
    timeout: float | None
    ctx: WorkContext
    path: str | None
    code_at: NotRequired[list[Any]]  # [YAML file, line of the code]: tracebacks name it
    lease_expiries: NotRequired[int]  # a worker was lost running it before
    preset: NotRequired[Any]  # output made elsewhere (a child, a loop): only the save runs
    preset_meta: NotRequired[Any]
    loop_save: NotRequired[bool]
    # the step rows the report of this job reads first: sent back with the report (a hint for
    # a server process that did not hand the job out, noetl.engine.prefetch)
    reads: NotRequired[list[str]]


class ErrorInfo(TypedDict, total=False):
    """Why a job failed: ``message`` and ``type`` always; the rest when known."""

    message: str
    type: str
    traceback: str | None
    field: str  # a template's error: where, the template, why
    template: str
    reason: str
    user_traceback: str  # a python step's own frames
    at: Any


OutcomeStatus = Literal["ok", "error"]


class Outcome(TypedDict, total=False):
    """What a worker reports for a job (``noetl.worker.runner.run_work``)."""

    status: OutcomeStatus
    data: Any
    envelope: Any
    error: ErrorInfo | None  # (the report routes make a bare string an ErrorInfo)
    meta: Any
    duration: float | None
    input: Any  # the rendered input, kept on the step row for people to inspect
    logs: list[LogRecord]
    report_id: str | None  # a report sent twice is recorded once
    final: bool  # an error the engine must not retry (the engine refused the outcome)
    reads: list[str]  # the work package's ``reads``, sent back (only a hint)


class ReportRequest(Outcome, total=False):
    """``POST /api/queue/{job_id}/complete|fail``: an outcome plus who reports it."""

    worker_id: str | None
    lease_next: int  # also lease up to this many jobs, in the same transaction
    lease_seconds: float | None


class BatchReport(Outcome, total=False):
    """One report of ``POST /api/queue/report``."""

    job_id: str | int


class ReportBatchRequest(TypedDict, total=False):
    worker_id: str | None
    reports: list[BatchReport]
    lease_next: int
    lease_seconds: float | None


ReportStatus = Literal["ok", "duplicate", "cancelled", "lease_lost", "not_found", "error"]


class ReportResult(TypedDict):
    """The answer to one report of a batch: ``ok``, ``duplicate``, ``cancelled``,
    ``lease_lost`` or ``not_found`` (never recorded: do not retry), or ``error`` (not
    recorded: retry it)."""

    status: str  # ReportStatus
    error: NotRequired[str]
    id: NotRequired[str]


class ReportAnswer(TypedDict):
    """``POST /api/queue/{job_id}/complete|fail`` answers this."""

    status: str  # ReportStatus
    id: str
    jobs: list[Work]


class ReportBatchAnswer(TypedDict):
    status: Literal["ok"]
    results: list[ReportResult]
    jobs: list[Work]


class LeaseRequest(TypedDict, total=False):
    worker_id: str
    limit: int
    lease_seconds: float | None
    wait_seconds: float


class LeaseResult(TypedDict):
    status: Literal["ok", "empty"]
    jobs: list[Work]


class HeartbeatRequest(TypedDict, total=False):
    worker_id: str
    extend_seconds: float | None
    logs: list[LogRecord] | None


class HeartbeatResult(TypedDict):
    status: Literal["ok", "cancelled"]
    cancelled: bool
    lease_until: NotRequired[float | None]
