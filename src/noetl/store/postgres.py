"""PostgreSQL backend: many server processes share one database.

Every table lives in schema ``noetl`` (``search_path`` is set on each pooled connection) and is
created by the versioned migrations in ``migrations/postgres``, applied under a transaction-scoped
advisory lock so servers starting together do not race.

Locking. Orchestration of one execution is serialised by row locks (``SELECT ... FOR UPDATE`` on
the execution and job rows); workers lease with ``FOR UPDATE SKIP LOCKED`` so concurrent leases
never hand out the same job. Each transaction that writes an execution's step rows or events also
holds that execution's *event lock* (a transaction-scoped advisory lock keyed by its id) until
commit, so one execution's events get ``seq`` values in commit order. Lock order: queue rows,
then event locks (ascending ids); a lease inside a transaction that already holds event locks
only *tries* further ones. Deadlocks that remain possible are retried (:meth:`retryable`).

Wake-ups: after a commit that made work ready the engine calls :meth:`PostgresStore.notify_work`,
which wakes this process's waiters and sends ``NOTIFY noetl_work`` so other processes wake too
(or the transaction sent it itself, :meth:`PgTx.notify_in_tx`); a daemon thread per store
``LISTEN``s on its own connection. Polling remains the always-correct baseline.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg_pool import PoolTimeout

from noetl.settings import Settings
from noetl.store.base import Capabilities, Stale, Store
from noetl.store.migrate import apply_migrations
from noetl.store.pg_pool import Pool
from noetl.store.pg_tx import (
    _OPEN,
    CHANNEL,
    LISTENER_NAME,
    MIGRATION_LOCK,
    PREPARE_THRESHOLD,
    RETRYABLE_SQLSTATES,
    SCHEMA,
    STALE_SQLSTATE,
    PgTx,
)

__all__ = ["CHANNEL", "LISTENER_NAME", "SCHEMA", "PgTx", "PostgresStore"]

log = logging.getLogger("noetl.store.postgres")

def _configure(conn: psycopg.Connection[Any]) -> None:
    conn.execute(f"SET search_path TO {SCHEMA}")
    conn.prepare_threshold = PREPARE_THRESHOLD


class PostgresStore(Store):
    dialect = "postgres"
    # NOTIFY wakes waiters in every process: the re-check only covers a missed notification
    # (a report through another server process does not wake this one's log followers)
    capabilities = Capabilities(name="PostgreSQL", multi_process=True, poll_seconds=2.0,
                                log_poll_seconds=1.0, key_file=False)

    def __init__(self, url: str, pool_size: int | None = None, listen: bool = True,
                 settings: Settings | None = None):
        super().__init__(url, settings)
        size = pool_size or self.settings.pg_pool_size
        self._migrate()  # first: a clear error at once when the database is unreachable
        self.pool = Pool(
            url, min_size=1, max_size=max(1, size), kwargs={"autocommit": True},
            configure=_configure, open=False, name="noetl",
            timeout=self.settings.pg_pool_timeout)
        self._local = threading.local()
        self._token = uuid.uuid4().hex  # our own NOTIFYs carry it; the listener skips them
        self._stop = threading.Event()
        self.listening = threading.Event()
        self.last_payload: str | None = None  # of the last NOTIFY from another store
        self._listener: threading.Thread | None = None
        try:  # a pool that cannot open (the database went away) is closed, not leaked
            self.pool.open(wait=True, timeout=15.0)
            self.claim_node_id()  # a node id for the id generator no other process holds
        except BaseException:
            self.pool.close()
            raise
        if listen:
            self._listener = threading.Thread(target=self._listen, name="noetl-pg-listen",
                                              daemon=True)
            self._listener.start()

    # -- schema -------------------------------------------------------------------------------
    def _migrate(self) -> None:
        with psycopg.connect(self.url, autocommit=True, connect_timeout=10) as conn, \
                conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
            conn.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
            conn.execute(f"SET LOCAL search_path TO {SCHEMA}")
            apply_migrations(conn, self.dialect, placeholder="%s",
                             applied_at="TIMESTAMPTZ NOT NULL DEFAULT now()")

    def schema_version(self) -> int:
        with self.pool.conn() as conn:
            r = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
            return int(r[0] or 0) if r else 0

    # -- transactions -------------------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[PgTx]:
        outer: PgTx | None = getattr(self._local, "tx", None)
        if outer is not None:  # nested in this thread: join the outer transaction
            yield outer
            return
        self._local.sent = False
        with self.pool.conn() as conn:
            done = False
            # BEGIN is sent with the first statement, COMMIT with the last writes, in one
            # pipeline (not conn.transaction(), which syncs before and after its COMMIT); a
            # transaction of one unit's write is that statement alone (PgTx.__init__)
            tx = PgTx(conn, self._token, lazy=True)
            try:
                self._local.tx = tx
                try:
                    yield tx
                finally:
                    self._local.tx = None
                tx.commit()
                done = True
                if tx.xid_cursor is not None:  # answered with the COMMIT: no round trip
                    tx.committed()  # (read while the connection is still this thread's)
            finally:
                if not done:
                    tx.abandon()
                # the block raised, or a write answered only with the COMMIT failed (the
                # transaction is left aborted): roll back here rather than in the pool
                if not done and not conn.closed \
                        and conn.info.transaction_status in _OPEN:
                    try:
                        conn.rollback()
                    except psycopg.Error as exc:  # the error being raised says more
                        log.debug("rollback after a failed transaction failed: %s", exc)
        # committed; if it carried a NOTIFY, the notify_work() that follows need not send one
        self._local.sent = tx.notified

    @staticmethod
    def stale(exc: BaseException) -> bool:
        return isinstance(exc, Stale) or getattr(exc, "sqlstate", None) == STALE_SQLSTATE

    @contextmanager
    def read(self) -> Iterator[PgTx]:
        outer: PgTx | None = getattr(self._local, "tx", None)
        if outer is not None:
            yield outer
            return
        with self.pool.conn() as conn:  # autocommit: each statement reads committed rows
            yield PgTx(conn)

    @staticmethod
    def retryable(exc: BaseException) -> bool:
        """Serialization failures, deadlocks, lock timeouts: the whole transaction may simply
        run again."""
        return getattr(exc, "sqlstate", None) in RETRYABLE_SQLSTATES

    @staticmethod
    def unavailable(exc: BaseException) -> bool:
        """The connection failed or was lost, the pool had none to give, or a transaction
        that may simply run again failed too often."""
        return isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError, PoolTimeout))

    # -- wake-ups -----------------------------------------------------------------------------
    def notify_work(self) -> None:
        super().notify_work()
        if getattr(self._local, "sent", False):
            self._local.sent = False  # the transaction just committed already notified
            return
        self._send(self._token)

    def _send(self, payload: str) -> None:
        try:
            with self.pool.conn() as conn:
                conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, payload))
        except Exception as exc:  # polling still finds the work
            log.warning("NOTIFY %s failed: %s", CHANNEL, exc)

    def _wake_local(self) -> None:
        Store.notify_work(self)

    def _listen(self) -> None:
        backoff = 0.1
        while not self._stop.is_set():
            try:
                with psycopg.connect(self.url, autocommit=True, connect_timeout=5,
                                     application_name=LISTENER_NAME) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self.listening.set()
                    self._wake_local()  # notifications may have been missed while away
                    backoff = 0.1
                    while not self._stop.is_set():
                        for n in conn.notifies(timeout=1.0):
                            if self._stop.is_set():
                                break
                            if n.payload != self._token and not n.payload.endswith(":stop"):
                                self.last_payload = n.payload
                                self._wake_local()
            except Exception as exc:
                self.listening.clear()
                if self._stop.is_set():
                    break
                # warn once per outage; then quietly retry (polling still finds the work)
                (log.warning if backoff == 0.1 else log.debug)(
                    "LISTEN %s connection lost (%s); reconnecting", CHANNEL, exc)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)
        self.listening.clear()

    def close(self) -> None:
        self._stop.set()
        t = self._listener
        if t is not None and t.is_alive():
            if self.listening.is_set():
                self._send(self._token + ":stop")  # wakes our listener early; others ignore it
            t.join(5.0)
        self.pool.close()
