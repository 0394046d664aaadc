"""SQL for step logs (table ``step_log``) and execution lineage (``execution_lineage``),
shared by both backends; mixed into :class:`noetl.store.sql.SqlTx`."""

from __future__ import annotations

import json
from typing import Any

from noetl.domain.records import Job
from noetl.store.rows import JOB_COLS, _job, jd
from noetl.store.sqlops import SqlOps

LOG_COLS = ("log_id, execution_id, step, idx, run, attempt, job_id, stream, level, logger, "
            "message, worker_id, created_at")
LINEAGE_COLS = "execution_id, source_execution_id, kind, overrides, reused, created_at"


def _log(r: Any) -> dict[str, Any]:
    return {"log_id": int(r[0]), "execution_id": str(r[1]), "step": r[2], "index": r[3],
            "run": r[4], "attempt": r[5], "job_id": None if r[6] is None else str(r[6]),
            "stream": r[7], "level": r[8], "logger": r[9], "message": r[10],
            "worker_id": r[11], "time": r[12]}


def _lineage(r: Any) -> dict[str, Any]:
    return {"execution_id": str(r[0]), "source_execution_id": str(r[1]), "kind": r[2],
            "overrides": json.loads(r[3]) if r[3] else None,
            "reused": json.loads(r[4]) if r[4] else [], "created_at": r[5]}


class LogSql(SqlOps):
    """Needs ``_x``, ``_xmany`` and ``_all`` (from SqlTx)."""

    # logs ----------------------------------------------------------------------------------
    def add_logs(self, rows: list[dict[str, Any]]) -> None:
        """Rows with keys execution_id, step, idx, run, attempt, job_id, stream, level, logger,
        message, worker_id, created_at."""
        if rows:
            self._xmany("INSERT INTO step_log (execution_id, step, idx, run, attempt, job_id, "
                        "stream, level, logger, message, worker_id, created_at) VALUES "
                        "(:execution_id, :step, :idx, :run, :attempt, :job_id, :stream, :level, "
                        ":logger, :message, :worker_id, :created_at)", rows)

    def get_logs(self, execution_id: int, since: int = 0, limit: int = 1000,
                 step: str | None = None, index: int | None = None) -> list[dict[str, Any]]:
        """An execution's log records after ``since`` (a log_id), in order."""
        p: dict[str, Any] = {"e": execution_id, "since": since, "limit": limit}
        where = ""
        if step is not None:
            where += " AND step = :step"
            p["step"] = step
        if index is not None:
            where += " AND idx = :idx"
            p["idx"] = index
        rows = self._all(f"SELECT {LOG_COLS} FROM step_log WHERE execution_id = :e AND "
                         f"log_id > :since{where} ORDER BY log_id LIMIT :limit", p)
        return [_log(r) for r in rows]

    # lineage -------------------------------------------------------------------------------
    def add_lineage(self, execution_id: int, source_execution_id: int, kind: str,
                    overrides: dict[str, Any] | None, reused: list[str], created_at: float
                    ) -> None:
        self._x(f"INSERT INTO execution_lineage ({LINEAGE_COLS}) VALUES (:e, :s, :k, :o, :r, "
                ":t)", {"e": execution_id, "s": source_execution_id, "k": kind,
                        "o": jd(overrides) if overrides else None, "r": jd(reused or None),
                        "t": created_at})

    def get_lineage(self, execution_id: int) -> dict[str, Any] | None:
        """How ``execution_id`` was made from another execution (None: it was not)."""
        rows = self._all(f"SELECT {LINEAGE_COLS} FROM execution_lineage WHERE "
                         "execution_id = :e", {"e": execution_id})
        return _lineage(rows[0]) if rows else None

    def derived_executions(self, source_execution_id: int,
                           limit: int = 100) -> list[dict[str, Any]]:
        """Executions re-run or resumed from ``source_execution_id``, oldest first, with
        their status."""
        rows = self._all("SELECT l.execution_id, l.source_execution_id, l.kind, l.overrides, "
                         "l.reused, l.created_at, e.status FROM execution_lineage l JOIN "
                         "execution e ON e.execution_id = l.execution_id WHERE "
                         "l.source_execution_id = :s ORDER BY l.execution_id LIMIT :n",
                         {"s": source_execution_id, "n": limit})
        return [{**_lineage(r), "status": r[6]} for r in rows]

    def run_jobs(self, execution_id: int, step: str, run: int) -> list[Job]:
        """Every job of one run of a step (a loop's items in index order)."""
        rows = self._all(f"SELECT {JOB_COLS} FROM queue WHERE execution_id = :e AND step = :s "
                         "AND run = :r ORDER BY idx, queue_id",
                         {"e": execution_id, "s": step, "r": run})
        return [_job(r) for r in rows]
