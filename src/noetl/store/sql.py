"""SQL shared by the SQLite and PostgreSQL backends.

Queries use ``:name`` parameters; a backend translates them to its driver's style once (cached).
JSON travels as text in both dialects so both behave byte for byte alike.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from noetl.domain.records import (
    CatalogEntry,
    Credential,
    Event,
    ExecutionRow,
    Job,
    StepRow,
    now,
)
from noetl.ids import new_id
from noetl.store.base import Tx
from noetl.store.logs_sql import LogSql
from noetl.store.moves import (
    CANCEL_JOBS,
    CANCEL_STEP_JOBS,
    MARK_STEP_RUNNING,
    RELEASE_WAITING,
)
from noetl.store.rows import (
    EVENT_COLS,
    EXEC_COLS,
    EXEC_LIGHT,
    EXEC_SELECT,
    JOB_COLS,
    STEP_COLS,
    _event,
    _event_params,
    _exec,
    _job,
    _job_params,
    _step,
    _step_params,
    jd,
    jl,
)
from noetl.store.workers import WorkerSql

# the upsert of step rows, and what an update of a job and of an execution sets (``:name``
# parameters of _step_params, _job_params and SqlTx._exec_update_params; PgUnit reuses them)
STEP_UPSERT = (
    "ON CONFLICT (execution_id, step) DO UPDATE SET "
    "status = excluded.status, result = excluded.result, error = excluded.error, "
    "attempts = excluded.attempts, runs = excluded.runs, active = excluded.active, "
    "started_at = excluded.started_at, ended_at = excluded.ended_at, "
    "loop = excluded.loop, arrivals = excluded.arrivals, input = excluded.input, "
    "has_result = excluded.has_result")
JOB_UPDATE_SET = (
    "status = :status, attempts = :attempts, available_at = :available_at, "
    "lease_until = :lease_until, worker_id = :worker_id, last_heartbeat = :last_heartbeat, "
    "result = :result, payload = :payload, max_attempts = :max_attempts, "
    "updated_at = :updated_at")
EXEC_UPDATE_SET = ("status = :status, result = :result, error = :error, state = :state, "
                   "ended_at = :ended_at, updated_at = :updated_at")


class SqlTx(LogSql, WorkerSql, Tx):
    """Shared SQL (the worker registry's in :mod:`noetl.store.workers`, logs and lineage in
    :mod:`noetl.store.logs_sql`). Subclasses provide ``_x`` / ``_xmany`` and the locking
    statements."""

    def _all(self, sql: str, params: dict[str, Any] | None = None) -> list[Any]:
        return list(self._x(sql, params).fetchall())

    def _one(self, sql: str, params: dict[str, Any] | None = None) -> Any:
        return self._x(sql, params).fetchone()

    # executions --------------------------------------------------------------------------
    def insert_execution(self, row: ExecutionRow) -> None:
        self._x(
            f"INSERT INTO execution ({EXEC_COLS}) VALUES (:execution_id, :catalog_id, :path, "
            ":version, :status, :playbook, :workload, :parent_execution_id, :parent_job_id, "
            ":result, :error, :state, :created_at, :ended_at, :updated_at)",
            self._exec_params(row))

    def _exec_params(self, row: ExecutionRow) -> dict[str, Any]:
        """Every column (an insert): what an update sets, and what never changes."""
        return {**self._exec_update_params(row), "catalog_id": row.catalog_id, "path": row.path,
                "version": row.version, "playbook": jd(row.playbook), "workload": jd(row.workload),
                "parent_execution_id": row.parent_execution_id,
                "parent_job_id": row.parent_job_id, "created_at": row.created_at}

    def _exec_update_params(self, row: ExecutionRow) -> dict[str, Any]:
        """What an update sets (:data:`EXEC_UPDATE_SET`): not the playbook and workload, which
        never change (and would be encoded for nothing at every step)."""
        return {
            "execution_id": row.execution_id, "status": str(row.status),
            "result": jd(row.result), "error": jd(row.error), "state": jd(row.state),
            "ended_at": row.ended_at, "updated_at": now(),
        }

    def get_execution(self, execution_id: int, lock: bool = False) -> ExecutionRow | None:
        r = self._one(f"SELECT {EXEC_SELECT} FROM execution WHERE execution_id = :id"
                      + (self.for_update if lock else ""), {"id": execution_id})
        return _exec(r) if r else None

    def get_playbook(self, execution_id: int) -> dict[str, Any] | None:
        r = self._one("SELECT playbook FROM execution WHERE execution_id = :id",
                      {"id": execution_id})
        return jl(r[0]) if r else None

    def update_execution(self, row: ExecutionRow) -> None:
        p = self._exec_update_params(row)
        self._x(f"UPDATE execution SET {EXEC_UPDATE_SET} WHERE execution_id = :execution_id", p)

    def list_executions(self, status: str | None = None, path: str | None = None,
                        parent_execution_id: int | None = None, limit: int = 50,
                        offset: int = 0, since: float | None = None,
                        query: str | None = None) -> tuple[list[ExecutionRow], int]:
        where: list[str] = []
        p: dict[str, Any] = {"limit": limit, "offset": offset}
        if status:
            where.append("status = :status")
            p["status"] = status.upper()
        if path:
            where.append("path = :path")
            p["path"] = path
        if parent_execution_id is not None:
            where.append("parent_execution_id = :parent")
            p["parent"] = parent_execution_id
        if since is not None:
            where.append("created_at >= :since")
            p["since"] = since
        if query:
            like = query.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            where.append("(LOWER(path) LIKE :q ESCAPE '\\' OR LOWER(COALESCE(error, '')) LIKE :q "
                         "ESCAPE '\\' OR CAST(execution_id AS TEXT) LIKE :qid ESCAPE '\\')")
            p["q"] = f"%{like}%"
            p["qid"] = f"{like}%"
        w = (" WHERE " + " AND ".join(where)) if where else ""
        rows = self._all(f"SELECT {EXEC_LIGHT} FROM execution{w} ORDER BY execution_id DESC "
                         "LIMIT :limit OFFSET :offset", p)
        total = self._one(f"SELECT COUNT(*) FROM execution{w}", p)[0]
        return [_exec(r) for r in rows], int(total)

    def count_executions_by_status(self) -> dict[str, int]:
        return {r[0]: int(r[1]) for r in
                self._all("SELECT status, COUNT(*) FROM execution GROUP BY status")}

    def children(self, execution_id: int) -> list[ExecutionRow]:
        rows = self._all(f"SELECT {EXEC_LIGHT} FROM execution WHERE parent_execution_id = :id "
                         "ORDER BY execution_id", {"id": execution_id})
        return [_exec(r) for r in rows]

    def next_node_id(self) -> int:
        r = self._one("UPDATE node_seq SET n = n + 1 WHERE id = 1 RETURNING n")
        return int(r[0])

    # steps --------------------------------------------------------------------------------
    def get_steps(self, execution_id: int,
                  names: Iterable[str] | None = None) -> dict[str, StepRow]:
        if names is None:
            rows = self._all(f"SELECT {STEP_COLS} FROM step_state WHERE execution_id = :id",
                             {"id": execution_id})
        else:
            names = list(names)
            if not names:
                return {}
            p: dict[str, Any] = {"id": execution_id}
            keys = []
            for i, n in enumerate(names):
                p[f"n{i}"] = n
                keys.append(f":n{i}")
            rows = self._all(f"SELECT {STEP_COLS} FROM step_state WHERE execution_id = :id "
                             f"AND step IN ({', '.join(keys)})", p)
        return {r[1]: _step(r) for r in rows}

    def save_steps(self, rows: Iterable[StepRow]) -> None:
        params = [_step_params(s) for s in rows]
        if not params:
            return
        self._xmany(
            f"INSERT INTO step_state ({STEP_COLS}) VALUES (:execution_id, :step, :status, "
            ":result, :error, :attempts, :runs, :active, :started_at, :ended_at, :loop, "
            f":arrivals, :input, :has_result) {STEP_UPSERT}", params)

    def step_results(self, execution_id: int, names: Iterable[str]) -> dict[str, Any]:
        return {n: s.result for n, s in self.get_steps(execution_id, names).items()
                if s.has_result}

    # events -------------------------------------------------------------------------------
    def add_events(self, events: list[Event]) -> None:
        if not events:
            return
        self._xmany(
            "INSERT INTO event (event_id, execution_id, parent_event_id, event_type, status, "
            "node_name, node_type, context, result, error, error_type, stack_trace, meta, "
            "attempt, current_index, duration, worker_id, created_at) VALUES (:event_id, "
            ":execution_id, :parent_event_id, :event_type, :status, :node_name, :node_type, "
            ":context, :result, :error, :error_type, :stack_trace, :meta, :attempt, "
            ":current_index, :duration, :worker_id, :created_at)",
            [_event_params(e) for e in events])

    def get_events(self, execution_id: int, since_seq: int = 0, limit: int = 1000,
                   event_type: str | None = None) -> list[Event]:
        p: dict[str, Any] = {"id": execution_id, "since": since_seq, "limit": limit}
        et = ""
        if event_type:
            et = " AND event_type = :et"
            p["et"] = event_type
        rows = self._all(f"SELECT {EVENT_COLS} FROM event WHERE execution_id = :id AND "
                         f"seq > :since{et} ORDER BY seq LIMIT :limit", p)
        return [_event(r) for r in rows]

    def event_seq(self, event_id: int) -> int | None:
        r = self._one("SELECT seq FROM event WHERE event_id = :id", {"id": event_id})
        return int(r[0]) if r else None

    def has_event(self, event_id: int) -> bool:
        return self.event_seq(event_id) is not None

    # queue --------------------------------------------------------------------------------
    def add_jobs(self, jobs: list[Job]) -> None:
        if not jobs:
            return
        self._xmany(
            f"INSERT INTO queue ({JOB_COLS}) VALUES (:queue_id, :execution_id, :step, :run, "
            ":kind, :idx, :payload, :status, :priority, :attempts, :max_attempts, "
            ":available_at, :lease_until, :worker_id, :last_heartbeat, :result, :created_at, "
            ":updated_at)", [_job_params(j) for j in jobs])

    def get_job(self, queue_id: int, lock: bool = False) -> Job | None:
        r = self._one(f"SELECT {JOB_COLS} FROM queue WHERE queue_id = :id"
                      + (self.for_update if lock else ""), {"id": queue_id})
        return _job(r) if r else None

    def update_job(self, job: Job) -> None:
        job.updated_at = now()
        self._x(f"UPDATE queue SET {JOB_UPDATE_SET} WHERE queue_id = :queue_id",
                _job_params(job))

    def next_available_at(self) -> float | None:
        r = self._one("SELECT MIN(available_at) FROM queue WHERE status = 'queued'")
        a = r[0] if r else None
        r2 = self._one("SELECT MIN(lease_until) FROM queue WHERE status = 'leased'")
        b = r2[0] if r2 else None
        vals = [v for v in (a, b) if v is not None]
        return min(vals) if vals else None

    def release_waiting(self, execution_id: int, step: str, run: int, count: int) -> list[Job]:
        """The next ``count`` waiting items of a loop (lowest index first) become queued; one
        statement. (No status re-check outside the subquery: the caller holds the execution's
        row lock, which every writer of waiting items holds, and on SQLite a re-check there
        made the planner scan every waiting row by the status index: quadratic loops.)"""
        if count <= 0:
            return []
        rows = self._all(
            f"UPDATE queue SET {RELEASE_WAITING.set}, available_at = :t, updated_at = :t "
            f"WHERE queue_id IN (SELECT queue_id FROM queue WHERE execution_id = :e AND "
            f"step = :s AND run = :r AND {RELEASE_WAITING.where} ORDER BY idx LIMIT :n) "
            f"RETURNING {JOB_COLS}",
            {"e": execution_id, "s": step, "r": run, "n": count, "t": now()})
        return sorted((_job(r) for r in rows), key=lambda j: j.index or 0)

    def cancel_jobs(self, execution_id: int) -> list[Job]:
        rows = self._all(f"SELECT {JOB_COLS} FROM queue WHERE execution_id = :e AND "
                         f"{CANCEL_JOBS.where}", {"e": execution_id})
        jobs = [_job(r) for r in rows]
        if jobs:
            self._x(f"UPDATE queue SET {CANCEL_JOBS.set}, lease_until = NULL, updated_at = :t "
                    f"WHERE execution_id = :e AND {CANCEL_JOBS.where}",
                    {"e": execution_id, "t": now()})
        return jobs

    def cancel_step_jobs(self, execution_id: int, step: str, run: int) -> None:
        self._x(f"UPDATE queue SET {CANCEL_STEP_JOBS.set}, updated_at = :t WHERE "
                f"execution_id = :e AND step = :s AND run = :r AND {CANCEL_STEP_JOBS.where}",
                {"e": execution_id, "s": step, "r": run, "t": now()})

    def mark_step_running(self, execution_id: int, step: str) -> None:
        self._x(f"UPDATE step_state SET {MARK_STEP_RUNNING.set} WHERE execution_id = :e AND "
                f"step = :s AND {MARK_STEP_RUNNING.where}", {"e": execution_id, "s": step})

    def item_results(self, execution_id: int, step: str, run: int) -> list[Any]:
        rows = self._all("SELECT result FROM queue WHERE execution_id = :e AND step = :s AND "
                         "run = :r AND kind = 'item' ORDER BY idx",
                         {"e": execution_id, "s": step, "r": run})
        return [jl(r[0]) for r in rows]

    def loop_items(self, execution_id: int, step: str, run: int, offset: int = 0,
                   limit: int = 100, status: str | None = None) -> tuple[list[Job], int]:
        p: dict[str, Any] = {"e": execution_id, "s": step, "r": run, "limit": limit,
                             "offset": offset}
        w = "execution_id = :e AND step = :s AND run = :r AND kind = 'item'"
        if status:
            w += " AND status = :st"
            p["st"] = status
        rows = self._all(f"SELECT {JOB_COLS} FROM queue WHERE {w} ORDER BY idx "
                         "LIMIT :limit OFFSET :offset", p)
        total = self._one(f"SELECT COUNT(*) FROM queue WHERE {w}", p)[0]
        return [_job(r) for r in rows], int(total)

    def loop_item_counts(self, execution_id: int, step: str, run: int) -> dict[str, int]:
        rows = self._all("SELECT status, COUNT(*) FROM queue WHERE execution_id = :e AND "
                         "step = :s AND run = :r AND kind = 'item' GROUP BY status",
                         {"e": execution_id, "s": step, "r": run})
        return {str(r[0]): int(r[1]) for r in rows}

    def item_events(self, execution_id: int, step: str, indexes: list[int]) -> list[Event]:
        if not indexes:
            return []
        p: dict[str, Any] = {"e": execution_id, "s": step}
        names = []
        for n, i in enumerate(indexes):
            p[f"i{n}"] = int(i)
            names.append(f":i{n}")
        rows = self._all(f"SELECT {EVENT_COLS} FROM event WHERE execution_id = :e AND "
                         f"node_name = :s AND current_index IN ({', '.join(names)}) AND "
                         "event_type IN ('action_started', 'action_completed', "
                         "'action_failed', 'action_retry') ORDER BY seq", p)
        return [_event(r) for r in rows]

    def list_jobs(self, status: str | None = None, execution_id: int | None = None,
                  worker_id: str | None = None, limit: int = 100) -> list[Job]:
        where: list[str] = []
        p: dict[str, Any] = {"limit": limit}
        if status:
            where.append("status = :status")
            p["status"] = status
        if execution_id is not None:
            where.append("execution_id = :e")
            p["e"] = execution_id
        if worker_id:
            where.append("worker_id = :w")
            p["w"] = worker_id
        w = (" WHERE " + " AND ".join(where)) if where else ""
        rows = self._all(f"SELECT {JOB_COLS} FROM queue{w} ORDER BY queue_id LIMIT :limit", p)
        return [_job(r) for r in rows]

    def queue_size(self, status: str | None = "queued") -> int:
        if status:
            return int(self._one("SELECT COUNT(*) FROM queue WHERE status = :s",
                                 {"s": status})[0])
        return int(self._one("SELECT COUNT(*) FROM queue")[0])

    # catalog ------------------------------------------------------------------------------
    CAT_COLS = "catalog_id, path, version, kind, content, payload, meta, created_at"

    @staticmethod
    def _cat(r: Any) -> CatalogEntry:
        return CatalogEntry(catalog_id=int(r[0]), path=r[1], version=int(r[2]), kind=r[3],
                            content=r[4], payload=jl(r[5]) or {}, meta=jl(r[6]) or {},
                            created_at=r[7])

    def register(self, path: str, content: str, payload: dict[str, Any],
                 kind: str = "Playbook") -> CatalogEntry:
        self._lock_catalog(path)
        r = self._one("SELECT MAX(version) FROM catalog WHERE path = :p", {"p": path})
        version = int(r[0] or 0) + 1
        entry = CatalogEntry(catalog_id=new_id(), path=path, version=version, kind=kind,
                             content=content, payload=payload,
                             meta={"registered_at": now()})
        self._x(f"INSERT INTO catalog ({self.CAT_COLS}) VALUES (:id, :path, :version, :kind, "
                ":content, :payload, :meta, :created_at)",
                {"id": entry.catalog_id, "path": path, "version": version, "kind": kind,
                 "content": content, "payload": jd(payload), "meta": jd(entry.meta),
                 "created_at": entry.created_at})
        return entry

    def _lock_catalog(self, path: str) -> None:
        """Serialise registrations of one path (PostgreSQL overrides; SQLite is serial)."""

    def get_catalog(self, path: str | None = None, version: int | None = None,
                    catalog_id: int | None = None) -> CatalogEntry | None:
        if catalog_id is not None:
            r = self._one(f"SELECT {self.CAT_COLS} FROM catalog WHERE catalog_id = :id",
                          {"id": catalog_id})
        elif version is None:
            r = self._one(f"SELECT {self.CAT_COLS} FROM catalog WHERE path = :p "
                          "ORDER BY version DESC LIMIT 1", {"p": path})
        else:
            r = self._one(f"SELECT {self.CAT_COLS} FROM catalog WHERE path = :p AND "
                          "version = :v", {"p": path, "v": version})
        return self._cat(r) if r else None

    def list_catalog(self, kind: str | None = None, query: str | None = None,
                     latest_only: bool = False) -> list[CatalogEntry]:
        where, p = [], {}
        if kind:
            where.append("LOWER(kind) = LOWER(:kind)")
            p["kind"] = kind
        if query:
            where.append("LOWER(path) LIKE :q")
            p["q"] = f"%{query.lower()}%"
        if latest_only:
            where.append("version = (SELECT MAX(c2.version) FROM catalog c2 "
                         "WHERE c2.path = catalog.path)")
        w = (" WHERE " + " AND ".join(where)) if where else ""
        rows = self._all(f"SELECT {self.CAT_COLS} FROM catalog{w} ORDER BY created_at DESC, "
                         "version DESC", p)
        return [self._cat(r) for r in rows]

    def catalog_versions(self, path: str) -> list[CatalogEntry]:
        rows = self._all(f"SELECT {self.CAT_COLS} FROM catalog WHERE path = :p "
                         "ORDER BY version DESC", {"p": path})
        return [self._cat(r) for r in rows]

    # credentials --------------------------------------------------------------------------
    def put_credential(self, name: str, type: str, data_encrypted: str, description: str | None,
                       tags: list[str]) -> None:
        t = now()
        self._x("INSERT INTO credential (name, type, data_encrypted, description, tags, "
                "created_at, updated_at) VALUES (:n, :t, :d, :desc, :tags, :now, :now) "
                "ON CONFLICT (name) DO UPDATE SET type = excluded.type, "
                "data_encrypted = excluded.data_encrypted, description = excluded.description, "
                "tags = excluded.tags, updated_at = excluded.updated_at",
                {"n": name, "t": type, "d": data_encrypted, "desc": description,
                 "tags": jd(tags), "now": t})

    def get_credential(self, name: str) -> tuple[Credential, str] | None:
        r = self._one("SELECT name, type, data_encrypted, description, tags, created_at, "
                      "updated_at FROM credential WHERE name = :n", {"n": name})
        if not r:
            return None
        return (Credential(name=r[0], type=r[1], data={}, description=r[3],
                           tags=jl(r[4]) or [], created_at=r[5], updated_at=r[6]), r[2])

    def list_credentials(self, type: str | None = None) -> list[Credential]:
        p = {"t": type} if type else {}
        w = " WHERE type = :t" if type else ""
        rows = self._all("SELECT name, type, description, tags, created_at, updated_at FROM "
                         f"credential{w} ORDER BY name", p)
        return [Credential(name=r[0], type=r[1], data={}, description=r[2], tags=jl(r[3]) or [],
                           created_at=r[4], updated_at=r[5]) for r in rows]

    def delete_credential(self, name: str) -> bool:
        cur = self._x("DELETE FROM credential WHERE name = :n", {"n": name})
        return bool(cur.rowcount)
