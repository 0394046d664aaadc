"""PostgreSQL: one transaction (:class:`PgTx`), its statements and its course, for
:class:`noetl.store.postgres.PostgresStore` (the locking rules are in that module's doc)."""

from __future__ import annotations

import logging
import re
from collections.abc import Collection, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from functools import lru_cache
from typing import Any

import psycopg

from noetl.domain.records import CatalogEntry, Event, ExecutionRow, Job, StepRow
from noetl.store.base import Leased, Read
from noetl.store.moves import LEASE_EXPIRED, LEASE_READY
from noetl.store.pg_unit import PgUnit, pg_array
from noetl.store.rows import (
    E_COLS,
    EXEC_SELECT,
    JOB_COLS,
    N_EXEC,
    Q_COLS,
    STEP_COLS,
    _exec,
    _job,
    _step,
)
from noetl.store.sqlops import IN_TREE, PARAM, tree_cte

log = logging.getLogger("noetl.store.postgres")

SCHEMA = "noetl"
CHANNEL = "noetl_work"
LISTENER_NAME = "noetl-listen"  # application_name of the LISTEN connection
MIGRATION_LOCK = 0x6E6F65746C  # "noetl": the advisory lock key held while migrating
# psycopg prepares a statement (server side: parsed once, then a cached plan) from its
# (threshold + 1)-th execution on a connection; its default, 5, left the statements an
# execution runs once each (its start, first lease, end) parsed and planned afresh for the
# first five executions per pooled connection, and under the throughput load (a busy process
# spreads its statements over every pooled connection, each preparing on its own) a quarter
# of the database's CPU went to parsing and planning (bench/load_statements.py). From the
# second execution: a one-off statement (a UI query) is not prepared for nothing.
PREPARE_THRESHOLD = 1
DOWNWARD_LOCK_TIMEOUT = "25ms"  # parent holding its row waits this long for a child's row
# serialization failure, deadlock, lock not available (lock_timeout, see get_execution)
RETRYABLE_SQLSTATES = frozenset({"40001", "40P01", "55P03"})
STALE_SQLSTATE = "NT001"  # noetl_fresh(): a speculative report's rows changed (migration 8)
_OPEN = (psycopg.pq.TransactionStatus.INTRANS, psycopg.pq.TransactionStatus.INERROR)
# Lease candidates, each part locked with SKIP LOCKED along its own partial index: jobs whose
# lease expired first (oldest expiry first, as on SQLite), then ready jobs by priority, oldest
# first. Up to 2n rows get locked for n leased; the spare ones are skipped by others until commit.
_CANDIDATES = (
    "expired AS (SELECT queue_id, execution_id, status, lease_until, worker_id FROM queue "
    f"WHERE {LEASE_EXPIRED.where} AND lease_until < :now ORDER BY lease_until LIMIT :n "
    "FOR UPDATE SKIP LOCKED), "
    "ready AS (SELECT queue_id, execution_id, status, priority FROM queue "
    f"WHERE {LEASE_READY.where} AND available_at <= :now ORDER BY priority DESC, queue_id "
    "LIMIT :n FOR UPDATE SKIP LOCKED), "
    "candidates AS (SELECT queue_id, execution_id, status AS prev, 0 AS k, lease_until AS o1, "
    "0::bigint AS o2, worker_id AS lost FROM expired UNION ALL SELECT queue_id, execution_id, "
    "status, 1, -priority::double precision, queue_id, NULL::text FROM ready)")
# the same, only the jobs of some executions and of those below them (``roots``, an embedded
# run's own): WITH RECURSIVE tree(id) AS (...), expired AS (... AND execution_id IN tree ...)
_MINE = _CANDIDATES.replace(" AND lease_until <", IN_TREE + " AND lease_until <", 1).replace(
    " AND available_at <=", IN_TREE + " AND available_at <=", 1)
assert _MINE.count(IN_TREE) == 2
_LEASE = (f"UPDATE queue q SET {LEASE_READY.set}, worker_id = :w, attempts = q.attempts + 1, "
          "lease_until = :until, last_heartbeat = :now, updated_at = :now")
# after ``leased AS (UPDATE ... RETURNING {Q_COLS}, prev, lost)``: its rows, the first of
# each execution's with the execution's row (once: a workload can be large, and a loop's
# items are many jobs of one execution); _LOCKING_LEASED takes the executions' event locks
# first, in id order. A row: the job's columns, prev, lost, first, the execution's columns.
_LEASED_FIRST = ("(SELECT leased.*, queue_id = min(queue_id) OVER (PARTITION BY execution_id) "
                 "AS first FROM leased) AS l "
                 "LEFT JOIN execution e ON l.first AND e.execution_id = l.execution_id")
_LEASED_ROWS = f"SELECT l.*, {E_COLS} FROM {_LEASED_FIRST}"
_LOCKING_LEASED = ("lk AS (SELECT count(pg_advisory_xact_lock(k)) AS n FROM unnest((SELECT "
                   "array_agg(DISTINCT execution_id ORDER BY execution_id) FROM leased)) AS k) "
                   f"SELECT l.*, {E_COLS} FROM lk, {_LEASED_FIRST}")
_N_JOB = len(JOB_COLS.split(","))


# a batch of reports' locks (PgTx.lock_jobs_reading): the jobs' executions and all their
# ancestors, newest first; the job rows; the event locks; the step rows the reports read first.
# Each execution row is found by its key (a LATERAL subquery that OFFSET 0 keeps from being
# flattened into a join): joined, the planner took the chain for a thousand rows (its guess
# for a recursive CTE) and scanned the whole execution table, twice, in every batch (3.5 ms at
# 1,500 executions, growing with the table). Rows are locked in the chain's order, newest
# first, as the ORDER BY ... FOR UPDATE over the join locked them.
_LOCK_CHAIN = (
    "WITH RECURSIVE chain(id) AS (SELECT execution_id FROM queue "
    "WHERE queue_id = ANY(CAST(:ids AS bigint[])) "
    "UNION SELECT p.parent FROM chain c, LATERAL (SELECT e.parent_execution_id AS parent "
    "FROM execution e WHERE e.execution_id = c.id OFFSET 0) AS p WHERE p.parent IS NOT NULL) "
    "SELECT x.* FROM (SELECT id FROM chain ORDER BY id DESC) AS c, LATERAL (SELECT "
    f"{EXEC_SELECT} FROM execution WHERE execution_id = c.id FOR UPDATE) AS x")
_LOCK_QUEUE = (f"SELECT {JOB_COLS} FROM queue WHERE queue_id = ANY(CAST(:ids AS bigint[])) "
               "ORDER BY queue_id "
               "FOR UPDATE")
_EVENT_LOCKS = "SELECT pg_advisory_xact_lock(k) FROM unnest(CAST(:ks AS bigint[])) AS k"
_JOB_STEPS = (
    "SELECT w.q, " + ", ".join("s." + c.strip() for c in STEP_COLS.split(",")) + " FROM "
    "unnest(CAST(:qs AS bigint[]), CAST(:ns AS text[])) AS w(q, n) JOIN queue q ON "
    "q.queue_id = w.q JOIN step_state s ON s.execution_id = q.execution_id AND s.step = w.n")


def _leased(rows: list[Any]) -> list[Leased]:
    """(job, previous status, lost worker) of a lease statement's rows, in lease order."""
    out = [Leased(_job(r), str(r[_N_JOB]), r[_N_JOB + 1]) for r in rows]
    out.sort(key=lambda jp: (jp[1] != "leased", -jp[0].priority, jp[0].queue_id))
    return out


@lru_cache(maxsize=1024)
def to_pyformat(sql: str) -> str:
    """``:name`` parameters to psycopg's ``%(name)s``; literal ``%`` doubled. ``::`` casts stay."""
    return PARAM.sub(r"%(\1)s", sql.replace("%", "%%"))


_INSERT_VALUES = re.compile(r"^(INSERT INTO \w+ \([^()]*\) VALUES )\(([^()]*)\)(.*)$", re.S)
MULTI_ROW_PARAMS = 1800  # parameters per multi-row INSERT (chunks beyond)
# psycopg caches the conversion of a query's placeholders only for statements of at most 50
# parameters and 4,096 characters (to spare its cache ORM-generated one-offs). Multi-row
# INSERTs here come in a handful of shapes (one per row count), so cache those too:
# re-parsing them cost more than the per-row round trips they replace.
try:
    import psycopg._queries as _pq

    _pq.MAX_CACHED_STATEMENT_PARAMS = max(_pq.MAX_CACHED_STATEMENT_PARAMS, MULTI_ROW_PARAMS)
    _pq.MAX_CACHED_STATEMENT_LENGTH = max(_pq.MAX_CACHED_STATEMENT_LENGTH, 65536)
except (ImportError, AttributeError):  # another psycopg layout: correct, a little slower
    pass


@lru_cache(maxsize=64)
def _multi_row(sql: str) -> tuple[str, tuple[str, ...], str] | None:
    """``INSERT INTO t (..) VALUES (:a, :b) [ON CONFLICT ...]`` → (head, parameter names,
    tail), or None for any other statement."""
    m = _INSERT_VALUES.match(sql)
    if m is None:
        return None
    names = tuple(p.strip()[1:] for p in m.group(2).split(","))
    if not all(n.isidentifier() for n in names) or PARAM.search(m.group(1) + m.group(3)):
        return None  # parameters outside the VALUES list: not for this rewrite
    return m.group(1).replace("%", "%%"), names, m.group(3).replace("%", "%%")


@lru_cache(maxsize=256)
def _multi_sql(head: str, width: int, tail: str, n: int) -> str:
    one = "(" + ", ".join(["%s"] * width) + ")"
    return head + ", ".join([one] * n) + tail


class PgTx(PgUnit):
    """One transaction (a unit of work's writes and the report's first reads in one
    statement each: :class:`noetl.store.pg_unit.PgUnit`)."""

    for_update = " FOR UPDATE"
    channel = CHANNEL
    speculative = True

    def __init__(self, conn: psycopg.Connection[Any], token: str = "", lazy: bool = False):
        self.conn = conn
        self.token = token  # the store's NOTIFY payload (its own listener skips it)
        # A transaction (``lazy``: PostgresStore.transaction) begins with its first statement:
        # a unit's write that comes first is held back (``_pending``) until the next statement
        # or the commit. Held back to the commit, it is the whole transaction: sent alone,
        # without BEGIN and COMMIT (a speculative report: one statement, no pipeline). Else the
        # transaction runs in pipeline mode: a statement is followed by a sync, so it is
        # answered (and fails) where it is sent, as without a pipeline, except a unit's write
        # and the writes inside batch(), which are sent on without waiting: they are answered
        # with the next statement or with the COMMIT (whose sync raises their error). BEGIN
        # goes with the first statement: a report costs one round trip for its reads, one for
        # its writes and COMMIT.
        self.lazy = lazy
        self.pipe: psycopg.Pipeline | None = None
        self._stack: ExitStack | None = None  # the pipeline, once begun
        self._pending: tuple[str, list[Any]] | None = None
        self._batching = 0
        self.notified = False
        self._event_locks: set[int] = set()
        self._exec_locks: set[int] = set()  # execution rows this transaction locked
        self._batch_locked: set[int] = set()  # jobs whose rows lock_jobs locked
        self._guard: tuple[int, int, str] | None = None  # speculate()
        # insert_execution held back, for the unit's write to insert (PgUnit.write_unit)
        self._new_exec: ExecutionRow | None = None
        self._leased_execs: dict[int, ExecutionRow] = {}  # read with the jobs leased
        self.xid_cursor: Any = None
        self.xid_lead = 1
        self.read_back_names: list[str] = []

    def committed(self) -> None:
        """After the COMMIT: the transaction's id and the rows its last unit read back, from
        that unit's statement (answered by now)."""
        rows = self.xid_cursor.fetchall()
        self.xid = str(rows[0][0]) if rows else None
        if self.read_back_names:
            k = self.xid_lead
            found = {r[k + 1]: _step(r[k:]) for r in rows if r[k] is not None}
            self.read_back = {n: found.get(n) for n in self.read_back_names}

    # -- the transaction's course (PostgresStore.transaction) --------------------------------
    def _begin(self) -> None:
        """Before a statement: the pipeline and BEGIN, then the held-back write, if not yet."""
        if self._stack is not None or not self.lazy:
            return
        self._stack = ExitStack()
        self.pipe = self._stack.enter_context(self.conn.pipeline())
        self.conn.execute("BEGIN")
        self._send_pending()

    def _send_pending(self) -> None:
        if self._pending is not None:
            sql, params = self._pending
            self._pending = None
            self.xid_cursor = self.conn.execute(sql, params)

    def insert_execution(self, row: ExecutionRow) -> None:
        """Held back, in a transaction not yet begun: a new execution's unit write (which
        follows) inserts the row itself, so a start is one statement. Any other statement
        first sends it (:meth:`_send_new_exec`)."""
        if self.lazy and self._stack is None and self._pending is None \
                and self._new_exec is None:
            self._new_exec = row
            return
        self._send_new_exec()
        super().insert_execution(row)

    def get_catalog(self, path: str | None = None, version: int | None = None,
                    catalog_id: int | None = None) -> CatalogEntry | None:
        """Read on its own when it comes first (before BEGIN): a catalog entry never changes
        once registered, so no snapshot need hold it with what follows, and a start is then
        this read and its unit's write, each alone."""
        if not (self.lazy and self._stack is None and self._pending is None
                and self._new_exec is None and self._guard is None):
            return super().get_catalog(path, version, catalog_id)
        self.lazy = False  # (a statement now goes straight to the connection)
        try:
            return super().get_catalog(path, version, catalog_id)
        finally:
            self.lazy = True

    def _send_new_exec(self) -> None:
        row, self._new_exec = self._new_exec, None
        if row is not None:
            super().insert_execution(row)

    def send_unit(self, sql: str, params: list[Any]) -> None:
        """A unit's statement: held back when it comes first (see ``__init__``)."""
        if self.lazy and self._stack is None and self._pending is None:
            self._pending = (sql, params)
            return
        self._begin()
        self.xid_cursor = self.conn.execute(sql, params)

    def commit(self) -> None:
        """A held-back write alone, as its own transaction; else COMMIT and the last sync."""
        self._send_new_exec()
        if self._stack is None:
            self._send_pending()
            return
        self.conn.execute("COMMIT")
        stack, self._stack, self.pipe = self._stack, None, None
        stack.close()

    def abandon(self) -> None:
        """The block raised: leave pipeline mode (its pending errors say less than the one
        being raised); the caller rolls back."""
        self._pending = self._new_exec = None
        if self._stack is not None:
            stack, self._stack, self.pipe = self._stack, None, None
            try:
                stack.close()
            except psycopg.Error as exc:
                log.debug("leaving the pipeline of a failed transaction: %s", exc)

    def _x(self, sql: str, params: dict[str, Any] | None = None) -> Any:
        if self._guard is not None:  # a speculative report reads or writes anything else first
            self._validate()
        self._send_new_exec()
        self._begin()
        # always pass a mapping so psycopg un-doubles the escaped '%'
        cur = self.conn.execute(to_pyformat(sql), params or {})
        self._answered()
        return cur

    def settle(self) -> None:
        if self.pipe is not None:
            self.pipe.sync()

    def _answered(self) -> None:
        """In a pipelined transaction outside batch(): wait for the answers now."""
        if self.pipe is not None and not self._batching:
            self.pipe.sync()

    def _xmany(self, sql: str, rows: list[dict[str, Any]]) -> None:
        if self._guard is not None:
            self._validate()
        self._send_new_exec()
        self._begin()
        multi = _multi_row(sql) if len(rows) > 1 else None
        if multi is None:
            with self.conn.cursor() as cur:
                cur.executemany(to_pyformat(sql), rows)
            self._answered()
            return
        # INSERT of several rows: one statement (executemany sends and flushes per row)
        head, names, tail = multi
        per = max(1, MULTI_ROW_PARAMS // len(names))
        for i in range(0, len(rows), per):
            chunk = rows[i:i + per]
            self.conn.execute(_multi_sql(head, len(names), tail, len(chunk)),
                              [r[n] for r in chunk for n in names])
        self._answered()

    def lease_jobs(self, worker_id: str, lease_seconds: float, limit: int,
                   now: float, roots: Collection[int] | None = None) -> list[Leased]:
        """Lease ready or lease-expired rows no one else holds; return them with their previous
        status (``leased`` = re-leased after expiry). Rows locked by others are skipped."""
        p = {"now": now, "n": limit, "w": worker_id, "until": now + lease_seconds}
        cand = _CANDIDATES
        if roots is not None:
            tree, tp = tree_cte(roots, lateral=True)
            cand = f"RECURSIVE {tree}, {_MINE}"
            p.update(tp)
        if self._event_locks:
            return self._lease_holding_locks(p, cand)
        # the engine writes action_started events for these next: the executions' event locks
        # are taken by the same statement, in id order, after the job rows (the lock order),
        # so two leasing transactions never wait on each other; the executions' rows come
        # with it (read by get_execution next)
        return self._leased_reading(self._all(
            f"WITH {cand}, picked AS (SELECT queue_id, prev, lost FROM candidates "
            f"ORDER BY k, o1, o2 LIMIT :n), leased AS ({_LEASE} FROM picked "
            f"WHERE q.queue_id = picked.queue_id RETURNING {Q_COLS}, picked.prev, picked.lost), "
            f"{_LOCKING_LEASED}", p))

    def _lease_holding_locks(self, p: dict[str, Any], cand: str) -> list[Leased]:
        """Lease inside a transaction that already holds event locks (report-and-lease).
        Waiting here for another execution's event lock could close a cycle with a transaction
        doing the same the other way round, so jobs of executions whose lock is busy (not
        held here, and not taken at once) are left for the next lease instead. One statement:
        the candidates, the locks tried, the update of the jobs whose lock is held."""
        return self._leased_reading(self._all(
            f"WITH {cand}, picked AS (SELECT queue_id, execution_id, prev, lost FROM candidates "
            "ORDER BY k, o1, o2 LIMIT :n), got AS (SELECT d.id FROM (SELECT DISTINCT "
            "execution_id AS id FROM picked) AS d WHERE d.id = ANY(CAST(:held AS bigint[])) "
            f"OR pg_try_advisory_xact_lock(d.id)), leased AS ({_LEASE} FROM picked "
            "WHERE q.queue_id = picked.queue_id AND picked.execution_id IN (SELECT id FROM got) "
            f"RETURNING {Q_COLS}, picked.prev, picked.lost) {_LEASED_ROWS}",
            {**p, "held": pg_array(sorted(self._event_locks))}))

    def _leased_reading(self, rows: list[Any]) -> list[Leased]:
        """The leased jobs of a lease statement (:data:`_LEASED_ROWS`); their executions' event
        locks are held, their rows kept for :meth:`get_execution`."""
        for r in rows:
            eid = int(r[1])
            self._event_locks.add(eid)
            if r[_N_JOB + 3] is not None:  # (the execution's first job: its row)
                self._leased_execs[eid] = _exec(r[_N_JOB + 3:])
        return _leased(rows)

    def get_execution(self, execution_id: int, lock: bool = False) -> ExecutionRow | None:
        """With ``lock``: when this transaction already holds the row of the execution's parent
        (the cancel cascade), wait for the child's row at most ``DOWNWARD_LOCK_TIMEOUT``.

        A child finishing locks its own row, then its parent's (to report to it); a parent
        ending (cancel, or failure) holds its row and locks its children. Both waiting closes a
        cycle that PostgreSQL breaks only after ``deadlock_timeout`` (1 s) per occurrence, and a
        cancel retried into the next one again and again. With the short wait, the parent's
        transaction fails fast with ``55P03`` (retryable) and restarts behind the child, which is
        already queued for the parent's row; a child that is merely busy is waited for."""
        if not lock:
            kept = self._leased_execs.pop(execution_id, None)  # read by the lease statement
            return kept if kept is not None else super().get_execution(execution_id)
        downward = False
        if self._exec_locks:
            r = self._one("SELECT parent_execution_id FROM execution WHERE execution_id = :id",
                          {"id": execution_id})
            downward = r is not None and r[0] is not None and int(r[0]) in self._exec_locks
        sql = f"SELECT {EXEC_SELECT} FROM execution WHERE execution_id = :id FOR UPDATE"
        if downward:
            old = self._one("SELECT current_setting('lock_timeout'), "
                            "set_config('lock_timeout', :t, true)",
                            {"t": DOWNWARD_LOCK_TIMEOUT})[0]
            row = self._one(sql, {"id": execution_id})
            self._x("SELECT set_config('lock_timeout', :t, true)", {"t": old})
        else:
            row = self._one(sql, {"id": execution_id})
        if row is None:
            return None
        self._exec_locks.add(execution_id)
        return _exec(row)

    def try_lock_execution(self, execution_id: int) -> ExecutionRow | None:
        """The execution row locked, or None at once when another transaction holds it."""
        r = self._one(f"SELECT {EXEC_SELECT} FROM execution WHERE execution_id = :id "
                      "FOR UPDATE SKIP LOCKED", {"id": execution_id})
        if r is None:
            return None
        self._exec_locks.add(execution_id)
        return _exec(r)

    def get_job(self, queue_id: int, lock: bool = False) -> Job | None:
        """With ``lock``, lock the job's execution row first, then the job row.

        Cancelling locks the execution, then every unfinished job of it; reporting locked the
        job, then its execution. Two such transactions deadlocked (PostgreSQL aborts one after
        ``deadlock_timeout``, 1 s), and a cancel retried into the next report until it gave up.
        Taking the execution first makes the order the same everywhere."""
        if not lock:
            return super().get_job(queue_id)
        self._x("SELECT 1 FROM execution WHERE execution_id = (SELECT execution_id FROM queue "
                "WHERE queue_id = :id) FOR UPDATE", {"id": queue_id})
        return super().get_job(queue_id, lock=True)

    def lock_job(self, queue_id: int) -> tuple[Job, ExecutionRow | None] | None:
        """One statement: the execution row, then the job row (``FOR UPDATE OF e, q`` locks
        in that order), as :meth:`get_job` with ``lock`` followed by :meth:`get_execution`.

        A transaction that already holds rows uses it only for jobs whose rows
        :meth:`lock_jobs` locked; otherwise the execution is locked through
        :meth:`get_execution` first (it waits only briefly for a child of a held execution)."""
        if self._exec_locks and queue_id not in self._batch_locked:
            job = super().get_job(queue_id)
            if job is None:
                return None
            ex = self.get_execution(job.execution_id, lock=True)
            job = super().get_job(queue_id, lock=True)  # now locked, as it is now
            return (job, ex) if job else None
        r = self._one(f"SELECT {E_COLS}, {Q_COLS} FROM queue q JOIN execution e "
                      "ON e.execution_id = q.execution_id WHERE q.queue_id = :id "
                      "FOR UPDATE OF e, q", {"id": queue_id})
        if r is None:
            return None
        ex = _exec(r[:N_EXEC])
        self._exec_locks.add(ex.execution_id)
        return _job(r[N_EXEC:]), ex

    def lock_jobs(self, queue_ids: list[int]) -> None:
        """Take every lock a batch of reports can need, before any report writes, each kind in
        one global order: the execution rows of the jobs and of all their ancestors (a child's
        end locks its parent) newest first, then the job rows, then those executions' event
        locks in ascending order (the order leases take them)."""
        self.lock_jobs_reading(dict.fromkeys(queue_ids, ()))

    def lock_jobs_reading(self, reads: dict[int, Collection[str]]) -> dict[int, Read]:
        """:meth:`lock_jobs` in two round trips: the execution rows are locked (and read) by
        the first statement; the job rows (locked and read), the event locks and the step
        rows asked for, read under every lock (as :meth:`lock_job_reading` reads them), are
        sent together."""
        ids = list(reads)
        execs = {int(r[0]): r for r in self._all(_LOCK_CHAIN, {"ids": pg_array(ids)})}
        self._exec_locks.update(execs)
        todo = sorted(set(execs) - self._event_locks)
        qs = [q for q, names in reads.items() for _ in names]
        ns = [n for names in reads.values() for n in names]
        with self.batch():
            jobs = self._x(_LOCK_QUEUE, {"ids": pg_array(ids)})
            if todo:
                self._x(_EVENT_LOCKS, {"ks": pg_array(todo)})
            steps = self._x(_JOB_STEPS, {"qs": pg_array(qs), "ns": pg_array(ns)}) if qs else None
        self._answered()  # one sync for the three: their results are here after it
        job_rows = jobs.fetchall()
        step_rows = steps.fetchall() if steps is not None else []
        self._event_locks.update(todo)
        self._batch_locked.update(int(r[0]) for r in job_rows)
        found: dict[int, dict[str, StepRow]] = {}
        for r in step_rows:
            found.setdefault(int(r[0]), {})[r[2]] = _step(r[1:])
        out: dict[int, Read] = {}
        for r in job_rows:
            job = _job(r)
            ex = execs.get(job.execution_id)
            if ex is not None:
                out[job.queue_id] = Read(job, _exec(ex), found.get(job.queue_id, {}))
        return out

    def add_events(self, events: list[Event]) -> None:
        if events:
            self.lock_events({e.execution_id for e in events})
        super().add_events(events)

    def save_steps(self, rows: Iterable[StepRow]) -> None:
        # Step rows are written just before the events: take the event lock first, so a
        # leasing transaction holding it never waits for a step row this one holds (cycle).
        rows = list(rows)
        if rows:
            self.lock_events({r.execution_id for r in rows})
        super().save_steps(rows)

    def add_logs(self, rows: list[dict[str, Any]]) -> None:
        # under the event lock, as events: log ids in commit order, so `since` skips none
        if rows:
            self.lock_events({int(r["execution_id"]) for r in rows})
        super().add_logs(rows)

    def lock_events(self, execution_ids: set[int]) -> None:
        """Hold each execution's event lock until commit, so one execution's events get their
        ``seq`` in commit order and a reader paging with ``since_seq`` never skips one.
        Several are taken in ascending order, in one statement.

        (``seq`` comes from an identity column: without this, a transaction that drew seq 100
        could commit after one that drew 101, and a follower that already read 101 would
        never see 100.) Transaction-scoped advisory lock keyed by the execution id."""
        todo = sorted(execution_ids - self._event_locks)
        if len(todo) == 1:
            self._x("SELECT pg_advisory_xact_lock(:k)", {"k": todo[0]})
        elif todo:
            self._x(_EVENT_LOCKS, {"ks": pg_array(todo)})
        self._event_locks.update(todo)

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Pipeline the writes inside: one round trip instead of one per statement (in a
        transaction, none of their own: they travel with the next statement or the COMMIT)."""
        if not self.lazy:  # outside a transaction (read())
            with self.conn.pipeline():
                yield
            return
        self._batching += 1
        try:
            yield
        finally:
            self._batching -= 1

    def notify_in_tx(self) -> None:
        """NOTIFY other processes; PostgreSQL delivers it only if this transaction commits."""
        if not self.notified:
            self._x("SELECT pg_notify(:c, :p)", {"c": CHANNEL, "p": self.token})
            self.notified = True

    def _lock_catalog(self, path: str) -> None:
        self._x("SELECT pg_advisory_xact_lock(hashtext(:p))", {"p": path})
