"""SQL for the worker registry (table ``worker``, migration 0003) and the queue reads the
status explainer and the lease reaper need. Shared by both backends (mixed into ``SqlTx``).

Worker rows travel as plain dicts: ``worker_id, session, mode, hostname, pid, concurrency,
running, jobs_done, lease_seconds, status, meta, started_at, last_seen, stopped_at``."""

from __future__ import annotations

import json
from typing import Any

from noetl.store.moves import WORKER_BEAT, WORKER_STOP
from noetl.store.sqlops import SqlOps

WORKER_COLS = ("worker_id", "session", "mode", "hostname", "pid", "concurrency", "running",
               "jobs_done", "lease_seconds", "status", "meta", "started_at", "last_seen",
               "stopped_at")
ACTIVE_JOBS = ("queued", "waiting", "leased", "child")


def _worker(r: Any) -> dict[str, Any]:
    d = dict(zip(WORKER_COLS, r, strict=True))
    d["meta"] = json.loads(d["meta"]) if d["meta"] else {}
    return d


class WorkerSql(SqlOps):
    """Mixed into :class:`noetl.store.sql.SqlTx`, which provides ``_x``/``_all``/``_one``."""

    # workers --------------------------------------------------------------------------------
    def worker_beat(self, info: dict[str, Any], now: float) -> None:
        """Register a worker or record its heartbeat (an upsert). A new ``session`` (the same
        id restarted) starts its row afresh."""
        p = {k: info.get(k) for k in WORKER_COLS}
        p.update(status=str(WORKER_BEAT.to), last_seen=now, started_at=now, stopped_at=None,
                 meta=json.dumps(info.get("meta") or {}, separators=(",", ":")),
                 running=int(info.get("running") or 0),
                 jobs_done=int(info.get("jobs_done") or 0),
                 concurrency=int(info.get("concurrency") or 0))
        cols = ", ".join(WORKER_COLS)
        vals = ", ".join(f":{c}" for c in WORKER_COLS)
        self._x(f"INSERT INTO worker ({cols}) VALUES ({vals}) ON CONFLICT (worker_id) DO UPDATE "
                "SET mode = excluded.mode, hostname = excluded.hostname, pid = excluded.pid, "
                "concurrency = excluded.concurrency, running = excluded.running, "
                "jobs_done = excluded.jobs_done, lease_seconds = excluded.lease_seconds, "
                "status = excluded.status, meta = excluded.meta, "
                "last_seen = excluded.last_seen, stopped_at = NULL, "
                "started_at = CASE WHEN worker.session = excluded.session "
                "THEN worker.started_at ELSE excluded.started_at END, "
                "session = excluded.session", p)

    def worker_stopped(self, worker_id: str, now: float, forget: bool = False) -> bool:
        """A worker stopped cleanly: mark it (or, with ``forget``, delete its row)."""
        if forget:
            cur = self._x("DELETE FROM worker WHERE worker_id = :w", {"w": worker_id})
        else:
            cur = self._x(f"UPDATE worker SET {WORKER_STOP.set}, running = 0, stopped_at = :t, "
                          f"last_seen = :t WHERE worker_id = :w AND {WORKER_STOP.where}",
                          {"w": worker_id, "t": now})
        return bool(cur.rowcount)

    def list_workers(self) -> list[dict[str, Any]]:
        rows = self._all(f"SELECT {', '.join(WORKER_COLS)} FROM worker "
                         "ORDER BY last_seen DESC, worker_id")
        return [_worker(r) for r in rows]

    def prune_workers(self, seen_before: float) -> int:
        """Forget workers not heard from since ``seen_before``."""
        cur = self._x("DELETE FROM worker WHERE last_seen < :t", {"t": seen_before})
        return int(cur.rowcount or 0)

    # queue reads for the explainer and the reaper ------------------------------------------
    def job_summary(self, execution_id: int) -> list[dict[str, Any]]:
        """Unfinished jobs of one execution, grouped by step and status: ``{step, status, n,
        first_job, available_at, lease_until, lease_until_max, worker_id, worker_max,
        attempts}`` (minimum unless named ``_max``)."""
        rows = self._all(
            "SELECT step, status, COUNT(*), MIN(queue_id), MIN(available_at), MIN(lease_until), "
            "MAX(lease_until), MIN(worker_id), MAX(worker_id), MAX(attempts) FROM queue "
            "WHERE execution_id = :e AND status IN ('queued', 'waiting', 'leased', 'child') "
            "GROUP BY step, status", {"e": execution_id})
        keys = ("step", "status", "n", "first_job", "available_at", "lease_until",
                "lease_until_max", "worker_id", "worker_max", "attempts")
        return [dict(zip(keys, r, strict=True)) for r in rows]

    def expired_leases(self, now: float, limit: int = 100) -> list[int]:
        """Ids of leased jobs whose lease ran out (oldest expiry first); no locks taken."""
        rows = self._all("SELECT queue_id FROM queue WHERE status = 'leased' AND "
                         "lease_until < :now ORDER BY lease_until LIMIT :n",
                         {"now": now, "n": limit})
        return [int(r[0]) for r in rows]

    def next_lease_expiry(self) -> float | None:
        r = self._one("SELECT MIN(lease_until) FROM queue WHERE status = 'leased'")
        return None if r is None or r[0] is None else float(r[0])
