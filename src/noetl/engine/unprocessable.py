"""When the engine cannot process a report (a value in the playbook or the outcome that the
rules or the store reject at run time), the step fails with the reason instead of the report
being refused, and retried, for ever.

The report's transaction is rolled back; a second one records the job as failed (final, no
retry) with the reason; if even that cannot be processed (the failure routes through the same
bad value), a third ends the execution FAILED. Transient store errors (connection lost,
serialization failure) are not ours: they are raised and the report is retried.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol, TypeVar

from noetl.domain.lifecycle import JobStatus, move
from noetl.domain.records import ExecutionRow, error_info
from noetl.domain.wire import ErrorInfo, Outcome
from noetl.engine.session import Session
from noetl.engine.unit import Unit
from noetl.errors import NoetlError, StoreError

if TYPE_CHECKING:
    from noetl.store.base import Tx

T = TypeVar("T")

log = logging.getLogger("noetl.engine")
_TRANSIENT = frozenset({"OperationalError", "InterfaceError", "PoolTimeout", "ConnectionError",
                        "ConnectionTimeout", "TimeoutError"})


class Recorder(Protocol):
    """What this module needs of :class:`noetl.engine.core.Engine`."""

    def _tx(self, fn: Callable[[Tx], T]) -> T: ...
    def _report_in(self, tx: Tx, job_id: int, worker_id: str | None, outcome: Outcome,
                   holder: list[Session]) -> str: ...
    def _after(self, sessions: Sequence[Unit]) -> None: ...
    def session(self, tx: Tx, ex: ExecutionRow) -> Session: ...


def processing_error(exc: BaseException) -> bool:
    """An error of the report's content, not of the store's availability."""
    if isinstance(exc, StoreError) or not isinstance(exc, Exception):
        return False
    if type(exc).__name__ == "_Refused":
        return False
    return not any(c.__name__ in _TRANSIENT for c in type(exc).__mro__)


def clean(text: str) -> str:
    return text.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")


def describe_error(exc: BaseException) -> str:
    return clean(f"{type(exc).__name__}: {exc}")[:2000]


def fail_unprocessable(engine: Recorder, job_id: int, worker_id: str | None,
                       outcome: Outcome, exc: BaseException) -> str:
    """Record ``job_id`` as failed with the reason ``exc``; return the report's status."""
    reason = describe_error(exc)
    log.warning("job %s: the engine could not process its report (%s): failing the step",
                job_id, reason)
    info: ErrorInfo = {"message": f"the engine could not record this step's outcome: {reason}",
                       "type": "UnprocessableOutcome"}
    holder: list[Session] = []

    def fail_step(tx: Tx) -> str:
        holder.clear()
        failed: Outcome = {"status": "error", "final": True, "error": info,
                           "report_id": outcome.get("report_id"),
                           "duration": outcome.get("duration")}
        if "logs" in outcome:
            failed["logs"] = outcome["logs"]
        return engine._report_in(tx, job_id, worker_id, failed, holder)

    def fail_execution(tx: Tx) -> str:
        holder.clear()
        got = tx.lock_job(job_id)
        job, ex = got if got is not None else (None, None)
        if job is None or ex is None:
            return "not_found"
        s = engine.session(tx, ex)
        if job.status == JobStatus.LEASED:  # (cancelled meanwhile: it stays cancelled)
            move(job, JobStatus.DEAD)
            job.lease_until = None
            s.update_job(job)
        s.fail_execution(error_info(info["message"], info["type"], None, job.step))
        s.flush()
        holder.append(s)
        return "ok"

    last: BaseException = exc
    for attempt in (fail_step, fail_execution):
        try:
            status = engine._tx(attempt)
        except NoetlError:
            raise
        except Exception as again:
            if not processing_error(again):
                raise
            if type(again).__name__ == "_Refused":
                raise getattr(again, "error", again) from None
            last = again
            info["message"] += f"; then: {describe_error(again)}"
            continue
        engine._after(holder)
        return status
    raise last
