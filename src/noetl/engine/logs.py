"""Step logs: what a job wrote (stdout, stderr, ``logging`` records), as the worker captured it
(:mod:`noetl.tools.output`). Stored in ``step_log``, apart from the event log, by the
transaction that records the job's report (or a heartbeat, for a job still running); a job
that wrote nothing adds nothing to either.

Waiters (``GET /api/executions/{id}/logs?wait=``) are woken in-process after such a commit
and otherwise poll.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

from noetl.domain.records import Job

if TYPE_CHECKING:
    from noetl.store.base import Tx

STREAMS = frozenset({"stdout", "stderr", "log", "noetl"})
LEVELS = frozenset({"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"})
MESSAGE_LIMIT = 1 << 20  # characters of one record the server keeps
RECORDS_LIMIT = 50000  # records of one report the server keeps


def _text(value: Any, limit: int) -> str:
    text = value if isinstance(value, str) else str(value)
    if "\x00" in text:
        text = text.replace("\x00", "\\x00")
    if len(text) > limit:
        text = text[:limit] + f" … [{len(text) - limit} characters cut by the server]"
    return text


def log_rows(job: Job, worker_id: str | None, records: Any) -> list[dict[str, Any]]:
    """The rows for ``records`` (a list of ``{t, stream, level, logger?, message}``) as sent
    by a worker; anything malformed is kept as text, never dropped silently."""
    if not isinstance(records, list):
        records = [{"stream": "noetl", "level": "WARNING",
                    "message": f"malformed log records from the worker: {records!r}"[:2000]}]
    base = {"execution_id": job.execution_id, "step": job.step, "idx": job.index,
            "run": job.run, "attempt": job.attempts, "job_id": job.queue_id,
            "worker_id": worker_id or job.worker_id}
    now = time.time()
    rows = []
    for r in records[:RECORDS_LIMIT]:
        if not isinstance(r, dict):
            r = {"message": r}
        try:
            t = float(r.get("t") or now)
        except (TypeError, ValueError):
            t = now
        stream = str(r.get("stream") or "log")
        level = str(r.get("level") or "INFO").upper()
        logger = r.get("logger")
        rows.append({**base, "stream": stream if stream in STREAMS else "log",
                     "level": level if level in LEVELS else _text(level, 16),
                     "logger": None if logger is None else _text(logger, 256),
                     "message": _text(r.get("message", ""), MESSAGE_LIMIT), "created_at": t})
    if len(records) > RECORDS_LIMIT:
        rows.append({**base, "stream": "noetl", "level": "WARNING", "logger": None,
                     "created_at": now,
                     "message": f"[log truncated by the server: {len(records) - RECORDS_LIMIT} "
                                f"more records in one report (the limit is {RECORDS_LIMIT})]"})
    return rows


def record_logs(tx: Tx, job: Job, worker_id: str | None, records: Any) -> bool:
    """Store a report's (or heartbeat's) log records; True when there were any."""
    if not records:
        return False
    tx.add_logs(log_rows(job, worker_id, records))
    return True


class LogWaiters:
    """In-process wake-ups for readers following an execution's logs."""

    def __init__(self) -> None:
        self._cv = threading.Condition()
        self.version = 0

    def notify(self) -> None:
        with self._cv:
            self.version += 1
            self._cv.notify_all()

    def wait(self, seen: int, timeout: float) -> None:
        with self._cv:
            if self.version == seen and timeout > 0:
                self._cv.wait(timeout)
