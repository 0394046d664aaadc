"""SQLite backend: one WAL-mode file, zero set-up. The embedded default."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from noetl.domain.lifecycle import JobStatus, move
from noetl.settings import Settings
from noetl.store.base import Capabilities, Leased, Store
from noetl.store.migrate import apply_migrations
from noetl.store.rows import JOB_COLS, _job
from noetl.store.sql import SqlTx
from noetl.store.sqlops import IN_TREE, tree_cte


class SqliteTx(SqlTx):
    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn

    def _x(self, sql: str, params: dict[str, Any] | None = None) -> Any:
        return self.conn.execute(sql, params or {})

    def _xmany(self, sql: str, rows: list[dict[str, Any]]) -> None:
        self.conn.executemany(sql, rows)

    def lease_jobs(self, worker_id: str, lease_seconds: float, limit: int,
                   now: float, roots: Collection[int] | None = None) -> list[Leased]:
        head, mine, p = "", "", {"now": now, "n": limit}
        if roots is not None:
            tree, tp = tree_cte(roots)
            head, mine = f"WITH RECURSIVE {tree} ", IN_TREE
            p.update(tp)
        expired = self._all(f"{head}SELECT {JOB_COLS} FROM queue WHERE status = 'leased'{mine} "
                            "AND lease_until < :now ORDER BY lease_until LIMIT :n", p)
        rows = list(expired)
        if len(rows) < limit:
            rows += self._all(f"{head}SELECT {JOB_COLS} FROM queue WHERE status = 'queued'"
                              f"{mine} AND available_at <= :now ORDER BY priority DESC, "
                              "queue_id LIMIT :n", {**p, "n": limit - len(rows)})
        out = []
        for r in rows:
            job = _job(r)
            prev = str(job.status)
            lost = job.worker_id if job.status == JobStatus.LEASED else None
            move(job, JobStatus.LEASED)
            job.worker_id = worker_id
            job.attempts += 1
            job.lease_until = now + lease_seconds
            job.last_heartbeat = now
            self.update_job(job)
            out.append(Leased(job, prev, lost))
        return out


def _private_file(path: Path) -> None:
    """The database holds workloads and results: its directory 0700 when created here, the
    file (and its WAL/SHM companions) 0600."""
    import os

    if not path.parent.exists():
        path.parent.mkdir(parents=True, mode=0o700, exist_ok=True)
    for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        try:
            os.close(os.open(p, os.O_CREAT | os.O_RDWR, 0o600))
            os.chmod(p, 0o600)
        except OSError:  # not ours to change (another user's file): sqlite reports the rest
            pass


class SqliteStore(Store):
    dialect = "sqlite"
    # no NOTIFY across processes: a waiting lease re-checks often
    capabilities = Capabilities(name="SQLite", multi_process=False, poll_seconds=0.5,
                                log_poll_seconds=0.5, key_file=True,
                                note="one writer and no cross-process wake-ups")

    def __init__(self, url: str, settings: Settings | None = None):
        super().__init__(url, settings)
        path = url[len("sqlite:///"):] if url.startswith("sqlite:///") else ""
        self.path = path or ":memory:"
        if self.path != ":memory:":
            _private_file(Path(self.path))
        self._conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False,
                                     timeout=30.0)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute("PRAGMA foreign_keys=ON")
        self._conn.execute("PRAGMA busy_timeout=30000")
        self._lock = threading.RLock()
        self._depth = 0
        self._migrate()
        self.claim_node_id()

    def _migrate(self) -> None:
        with self._lock:
            c = self._conn
            c.execute("BEGIN IMMEDIATE")  # one process migrates at a time
            try:
                apply_migrations(c, self.dialect, placeholder="?",
                                 applied_at="TEXT DEFAULT CURRENT_TIMESTAMP")
                c.execute("COMMIT")
            except BaseException:
                c.execute("ROLLBACK")
                raise

    def schema_version(self) -> int:
        with self._lock:
            r = self._conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
            return int(r[0] or 0)

    @contextmanager
    def transaction(self) -> Iterator[SqliteTx]:
        with self._lock:
            if self._depth:  # nested: join the outer transaction
                self._depth += 1
                try:
                    yield SqliteTx(self._conn)
                finally:
                    self._depth -= 1
                return
            self._conn.execute("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                yield SqliteTx(self._conn)
            except BaseException:
                self._depth = 0
                self._conn.execute("ROLLBACK")
                raise
            self._depth = 0
            self._conn.execute("COMMIT")

    @contextmanager
    def read(self) -> Iterator[SqliteTx]:
        with self._lock:
            yield SqliteTx(self._conn)

    @staticmethod
    def unavailable(exc: BaseException) -> bool:
        """The file is locked past the busy timeout, or cannot be opened or written."""
        return isinstance(exc, sqlite3.OperationalError)

    def local_dir(self) -> Path | None:
        return None if self.path == ":memory:" else Path(self.path).parent

    def close(self) -> None:
        with self._lock:
            self._conn.close()
