"""PostgreSQL: one unit of work in few statements (mixed into :class:`noetl.store.pg_tx.PgTx`).

- :meth:`PgUnit.write_unit`: the step rows, events, new and updated jobs, the execution row
  and the NOTIFY of one unit, as one statement of data-modifying CTEs. The event lock the
  step rows and events need is taken in that statement, before them: they are inserted
  from a join with the CTE that takes it, so no ``seq`` is drawn before the lock is held.
- :meth:`PgUnit.lock_job_reading`: the execution row and the job row locked (in that order,
  as :meth:`noetl.store.pg_tx.PgTx.lock_job`) and the step rows a report reads first, in
  one statement. The step rows come from the statement's snapshot, taken before it waited
  for a lock: when the locked execution row is not the version of that snapshot (a
  transaction holding it committed meanwhile, and every writer of step rows holding it also
  updates it), they are not returned, and the caller reads them afresh.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from functools import lru_cache
from operator import itemgetter
from typing import Any

from noetl.domain.records import Event, ExecutionRow, Job, StepRow, now
from noetl.store.base import Stale
from noetl.store.rows import (
    E_COLS,
    EXEC_COLS,
    JOB_COLS,
    N_EXEC,
    Q_COLS,
    STEP_COLS,
    _event_params,
    _exec,
    _job,
    _job_params,
    _step,
    _step_params,
)
from noetl.store.sql import EXEC_UPDATE_SET, JOB_UPDATE_SET, STEP_UPSERT, SqlTx

EVENT_INSERT_COLS = ("event_id, execution_id, parent_event_id, event_type, status, node_name, "
                     "node_type, context, result, error, error_type, stack_trace, meta, attempt, "
                     "current_index, duration, worker_id, created_at")
UNIT_PARAMS = 1800  # a larger unit (a loop's items) is written by the statements of each kind


def pg_array(items: Iterable[int | str]) -> str:
    """An array parameter as its text literal, for ``CAST(%s AS bigint[])`` or ``text[]``:
    psycopg's list dumper scans every element to pick the element type (and, for ints, the
    smallest type holding them all), a few per cent of a report's CPU; a string is sent
    as it is, and the cast types it, always the same (one prepared statement)."""
    return "{" + ",".join(
        str(int(x)) if isinstance(x, int)
        else '"' + x.replace("\\", "\\\\").replace('"', '\\"') + '"' for x in items) + "}"


def _cols(cols: str) -> tuple[str, ...]:
    return tuple(c.strip() for c in cols.split(","))


def _names(assignments: str) -> tuple[str, ...]:
    """``a = :a, b = :b`` → the parameter names, in order."""
    return tuple(a.split(":")[1].strip() for a in assignments.split(","))


_STEP = _cols(STEP_COLS)
_EVENT = _cols(EVENT_INSERT_COLS)
_JOB = _cols(JOB_COLS)
_JOB_SET = _names(JOB_UPDATE_SET)
_EXEC_SET = _names(EXEC_UPDATE_SET)
_EXEC = _cols(EXEC_COLS)
# each kind's parameters, in that order, from its parameter dict
_STEP_VALUES, _EVENT_VALUES, _JOB_VALUES, _JOB_SET_VALUES, _EXEC_SET_VALUES, _EXEC_VALUES = (
    itemgetter(*names) for names in (_STEP, _EVENT, _JOB, _JOB_SET, _EXEC_SET, _EXEC))
# column types, for the first row of a VALUES list read through a join (no target to type it)
_BIGINT = {"execution_id", "event_id", "parent_event_id"}
_INT = {"attempts", "runs", "active", "has_result", "attempt", "current_index"}
_DOUBLE = {"started_at", "ended_at", "duration", "created_at"}


def _typed(col: str) -> str:
    t = ("bigint" if col in _BIGINT else "integer" if col in _INT
         else "double precision" if col in _DOUBLE else "text")
    return f"CAST(%s AS {t})"


def _values(cols: tuple[str, ...], n: int, typed: bool) -> str:
    plain = "(" + ", ".join(["%s"] * len(cols)) + ")"
    if not typed:
        return "VALUES " + ", ".join([plain] * n)
    first = "(" + ", ".join(_typed(c) for c in cols) + ")"
    return "VALUES " + ", ".join([first] + [plain] * (n - 1))


def _pos(assignments: str) -> str:
    """``a = :a`` → ``a = %s``."""
    return ", ".join(a.split(":")[0] + "%s" for a in assignments.split(","))


_S_COLS = ", ".join("s." + c for c in _STEP)
XID = "CAST(CAST(pg_current_xact_id() AS xid) AS text)"  # this transaction's id, as xmin shows


@lru_cache(maxsize=512)
def unit_sql(locks: bool, steps: int, events: int, jobs: int, updates: int, execution: bool,
             notify: bool, guard: bool = False, read_back: int = 0,
             insert: bool = False) -> str:
    """The statement of one unit of that shape (positional parameters, in this order: the
    event locks' ids, step rows, events, new jobs, updates, execution, NOTIFY). It returns
    this transaction's id. ``insert``: the execution row is new (every column, as
    :meth:`noetl.store.sql.SqlTx.insert_execution` inserts it), not updated.

    ``guard`` (a speculative report, :meth:`PgUnit.speculate`; ``locks`` and ``execution``
    then, and the first update is the reported job's): the execution row and then the job
    row are updated first, each only if its ``xmin`` is still the transaction id given
    (parameters, first: the execution's values, its id, the xid; the job's values, its id,
    the xid; then as above without the execution), the event locks are taken after them (the
    lock order of every transaction) and the rows depending on them only when both matched;
    :func:`noetl_fresh` fails the statement otherwise.

    ``read_back`` (a count of names): the statement returns a row per step row named (last
    parameters: execution id, the names) as its snapshot has them: the leading columns (the
    id, the NOTIFY and guard results), then the step row's (NULL: none, and then one row).
    Rows it does not write, unchanged since the execution row was locked, or else the guard
    fails. The names are a list of that many parameters, not an array: with an array of
    unknown length the generic plan's estimate of the step rows (ten names) made it dearer
    than a custom plan, so PostgreSQL planned the whole statement again at every execution
    (0.3 ms of server CPU each, the most planning of the throughput load)."""
    ctes: list[str] = []
    if guard:
        ctes.append(f"xu AS (UPDATE execution SET {_pos(EXEC_UPDATE_SET)} "
                    "WHERE execution_id = %s AND xmin = CAST(%s AS xid) RETURNING 1 AS n)")
        ctes.append(f"qg AS (UPDATE queue SET {_pos(JOB_UPDATE_SET)} FROM xu "
                    "WHERE queue.queue_id = %s AND queue.xmin = CAST(%s AS xid) RETURNING 1 AS n)")
        ctes.append("lk AS (SELECT count(pg_advisory_xact_lock(k)) AS n "
                    "FROM unnest(CAST(%s AS bigint[])) AS k WHERE EXISTS (SELECT FROM qg) "
                    "HAVING EXISTS (SELECT FROM qg))")
        updates -= 1
        execution = False
    elif locks:
        ctes.append("lk AS (SELECT count(pg_advisory_xact_lock(k)) AS n "
                    "FROM unnest(CAST(%s AS bigint[])) AS k)")
    locks = locks or guard

    def rows(cols: tuple[str, ...], n: int) -> str:
        if not locks:
            return _values(cols, n, typed=False)
        return f"SELECT v.* FROM lk, ({_values(cols, n, typed=True)}) AS v WHERE true"

    if steps:
        ctes.append(f"st AS (INSERT INTO step_state ({STEP_COLS}) {rows(_STEP, steps)} "
                    f"{STEP_UPSERT})")
    if events:
        ctes.append(f"ev AS (INSERT INTO event ({EVENT_INSERT_COLS}) {rows(_EVENT, events)})")
    if jobs:
        ctes.append(f"qi AS (INSERT INTO queue ({JOB_COLS}) {_values(_JOB, jobs, False)})")
    after_lk = " FROM lk" if guard else ""  # (row locks after the execution's and the job's)
    for i in range(updates):
        ctes.append(f"qu{i} AS (UPDATE queue SET {_pos(JOB_UPDATE_SET)}{after_lk} "
                    "WHERE queue_id = %s)")
    if execution and insert:
        ctes.append(f"xi AS (INSERT INTO execution ({EXEC_COLS}) VALUES "
                    f"({', '.join(['%s'] * len(_EXEC))}))")
    elif execution:
        ctes.append(f"xu AS (UPDATE execution SET {_pos(EXEC_UPDATE_SET)} "
                    "WHERE execution_id = %s)")
    if notify:
        ctes.append("nt AS (SELECT pg_notify(%s, %s) AS n)")
    main = f"SELECT {XID}"
    if notify:
        main += ", (SELECT count(*) FROM nt)"
    if guard:
        main += ", noetl_fresh((SELECT count(*) FROM qg))"
    if read_back:
        names = "= %s" if read_back == 1 else f"IN ({', '.join(['%s'] * read_back)})"
        main += (f", {_S_COLS} FROM (SELECT 1) AS one LEFT JOIN step_state s ON "
                 f"s.execution_id = %s AND s.step {names}")
    return "WITH " + ", ".join(ctes) + " " + main


_N_JOB = len(_JOB)
LOCK_READING = (
    f"SELECT {E_COLS}, {Q_COLS}, e.xmin = (SELECT x.xmin FROM execution x "
    "WHERE x.execution_id = q.execution_id), " + _S_COLS + " FROM queue q "
    "JOIN execution e ON e.execution_id = q.execution_id LEFT JOIN step_state s "
    "ON s.execution_id = q.execution_id AND s.step = ANY(CAST(:names AS text[])) "
    "WHERE q.queue_id = :id FOR UPDATE OF e, q")


def _row_params(params: list[Any], steps: list[StepRow], events: list[Event], jobs: list[Job],
                updates: list[Job], t: float) -> None:
    """The unit statement's parameters for its step rows, events, new jobs and updates."""
    for s in steps:
        params.extend(_STEP_VALUES(_step_params(s)))
    for e in events:
        params.extend(_EVENT_VALUES(_event_params(e)))
    for j in jobs:
        params.extend(_JOB_VALUES(_job_params(j)))
    for j in updates:
        j.updated_at = t
        params.extend(_JOB_SET_VALUES(_job_params(j)))
        params.append(j.queue_id)


class PgUnit(SqlTx):
    """What :class:`noetl.store.pg_tx.PgTx` provides to these methods."""

    conn: Any
    xid_cursor: Any  # the last unit's statement: this transaction's id, once answered
    xid_lead: int  # its columns before the step rows read back
    read_back_names: list[str]
    _guard: tuple[int, int, str] | None
    token: str
    notified: bool
    channel: str
    _event_locks: set[int]
    _exec_locks: set[int]
    _batch_locked: set[int]
    _new_exec: ExecutionRow | None  # an inserted execution row not yet sent (PgTx)

    def _send_new_exec(self) -> None:
        raise NotImplementedError

    def _answered(self) -> None:
        raise NotImplementedError

    def send_unit(self, sql: str, params: list[Any]) -> None:
        raise NotImplementedError

    # -- speculation ------------------------------------------------------------------------
    def speculate(self, execution_id: int, queue_id: int, xid: str) -> None:
        """This transaction reports job ``queue_id`` from rows this process kept of the
        transaction ``xid`` that last wrote them (it handed the job out), not read: its first
        statement is the report's write, guarded (:func:`unit_sql`), or, when the report needs
        any other statement first, :meth:`_validate` (the locks and reads as usual).
        Either raises or fails the transaction when they have changed since."""
        self._guard = (execution_id, queue_id, xid)

    def _validate(self) -> None:
        """Lock the rows a speculative report kept (as :meth:`lock_job` does) and check they
        are still the versions it kept; :class:`Stale` if not."""
        eid, qid, xid = self._guard or (0, 0, "")
        self._guard = None
        r = self._one("SELECT e.xmin = CAST(:x AS xid) AND q.xmin = CAST(:x AS xid) "
                      "FROM execution e JOIN queue q ON q.execution_id = e.execution_id "
                      "WHERE e.execution_id = :e AND q.queue_id = :q FOR UPDATE OF e, q",
                      {"e": eid, "q": qid, "x": xid})
        if r is None or r[0] is not True:
            raise Stale(f"execution {eid} or job {qid} changed since transaction {xid}")
        self._exec_locks.add(eid)

    def _guarded(self, steps: list[StepRow], events: list[Event], updates: list[Job],
                 execution: ExecutionRow | None) -> bool:
        """Whether this write is the speculative report's own (else validate first)."""
        if self._guard is None:
            return False
        eid, qid = self._guard[0], self._guard[1]
        if execution is not None and execution.execution_id == eid and updates \
                and all(s.execution_id == eid for s in steps) \
                and all(e.execution_id == eid for e in events):
            first = next((j for j in updates if j.queue_id == qid), None)
            if first is not None:
                updates.remove(first)
                updates.insert(0, first)  # the guarded job's update comes first
                return True
        self._validate()
        return False

    def _inserts(self, execution: ExecutionRow | None, one: bool) -> bool:
        """Whether the unit's statement (``one``: the unit is written in one) inserts the
        execution row :meth:`noetl.store.pg_tx.PgTx.insert_execution` held back; if not,
        that row is sent now, before the unit's rows."""
        held = self._new_exec
        insert = one and self._guard is None and held is not None \
            and execution is not None and held.execution_id == execution.execution_id
        if insert:
            self._new_exec = None
        else:
            self._send_new_exec()
        return insert

    def write_unit(self, steps: list[StepRow], events: list[Event], jobs: list[Job],
                   updates: list[Job], execution: ExecutionRow | None,
                   notify: bool = False, read_back: Collection[str] = ()) -> None:
        notify = notify and not self.notified
        self.xid_cursor = None
        new = {j.queue_id for j in jobs}
        size = (len(steps) * len(_STEP) + len(events) * len(_EVENT) + len(jobs) * len(_JOB)
                + len(updates) * (len(_JOB_SET) + 1))
        one = size <= UNIT_PARAMS and not any(j.queue_id in new for j in updates)
        insert = self._inserts(execution, one)
        if not one:
            if self._guard is not None:
                self._validate()
            super().write_unit(steps, events, jobs, updates, execution, notify)
            return
        updates = list(updates)
        eid = execution.execution_id if execution is not None else None
        guard = self._guarded(steps, events, updates, execution)
        xid = self._guard[2] if guard and self._guard else ""
        self._guard = None
        locks = sorted(({s.execution_id for s in steps} | {e.execution_id for e in events})
                       - self._event_locks)
        t = now()
        params: list[Any] = []
        if guard:
            assert execution is not None
            params.extend(_EXEC_SET_VALUES(self._exec_update_params(execution)))
            params.extend((execution.execution_id, xid))
            j = updates.pop(0)
            j.updated_at = t
            params.extend(_JOB_SET_VALUES(_job_params(j)))
            params.extend((j.queue_id, xid))
            params.append(pg_array(locks))
            self._exec_locks.add(execution.execution_id)
            execution = None
        elif locks:
            params.append(pg_array(locks))
        _row_params(params, steps, events, jobs, updates, t)
        if execution is not None and insert:
            params.extend(_EXEC_VALUES(self._exec_params(execution)))
        elif execution is not None:
            p = self._exec_update_params(execution)
            params.extend(_EXEC_SET_VALUES(p))
            params.append(execution.execution_id)
        if notify:
            params.extend((self.channel, self.token))
        if not params:
            return
        back = sorted(read_back) if eid is not None else []
        # the names padded to a power of two with the last (a few statement shapes, not one
        # per count: each shape is a statement prepared and planned on its own)
        width = 1 << (len(back) - 1).bit_length() if back else 0
        if back:
            params.append(eid)
            params.extend(back + [back[-1]] * (width - len(back)))
        sql = unit_sql(bool(locks), len(steps), len(events), len(jobs),
                       len(updates) + guard, execution is not None or guard, notify, guard,
                       width, insert)
        self.send_unit(sql, params)
        self.read_back_names = back
        self.read_back = None
        self.xid_lead = 1 + notify + guard
        self._event_locks.update(locks)
        if notify:
            self.notified = True
        # not answered here, in batch() or not (the engine's flush writes inside batch()):
        # nothing waits for what it returns (read with the COMMIT's answer, ``committed``),
        # so it goes with the next statement or the COMMIT, whose sync raises its error

    def lock_job_reading(self, queue_id: int, steps: Collection[str]
                         ) -> tuple[Job, ExecutionRow | None, dict[str, StepRow] | None] | None:
        if not steps or (self._exec_locks and queue_id not in self._batch_locked):
            got = self.lock_job(queue_id)  # the careful order of a transaction holding rows
            return None if got is None else (got[0], got[1], None)
        rows = self._all(LOCK_READING, {"id": queue_id, "names": pg_array(steps)})
        if not rows:
            return None
        first = rows[0]
        ex = _exec(first[:N_EXEC])
        job = _job(first[N_EXEC:N_EXEC + _N_JOB])
        self._exec_locks.add(ex.execution_id)
        if first[N_EXEC + _N_JOB] is not True:  # the row changed after the snapshot
            return job, ex, None
        k = N_EXEC + _N_JOB + 1
        return job, ex, {r[k + 1]: _step(r[k:]) for r in rows if r[k] is not None}
