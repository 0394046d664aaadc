"""Store contract: a unit of work written at once (``Tx.write_unit``) and a report's locks taken
with its first reads (``Tx.lock_job_reading``), on every backend; on PostgreSQL also against a
second transaction holding the rows (the event lock and ``seq`` order, a stale snapshot)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from noetl.domain.lifecycle import ExecutionStatus, JobStatus, StepStatus
from noetl.domain.records import Event, now
from noetl.ids import new_id
from noetl.store import Store, open_store
from noetl.store.pg_unit import UNIT_PARAMS
from tests.contract.conftest import truncate_pg
from tests.contract.rows import make_exec, make_job, make_step


def _event(eid: int, kind: str, **kw: Any) -> Event:
    return Event(event_id=new_id(), execution_id=eid, event_type=kind, status="ok",
                 created_at=now(), **kw)


def _setup(store: Store) -> tuple[int, int]:
    ex = make_exec()
    job = make_job(ex.execution_id, "a")
    with store.transaction() as tx:
        tx.insert_execution(ex)
        tx.add_jobs([job])
        tx.save_steps([make_step(ex.execution_id, "a", status=StepStatus.RUNNING, runs=1)])
    return ex.execution_id, job.queue_id


def test_write_unit_writes_each_part_as_the_separate_calls_would(store: Store) -> None:
    eid, qid = _setup(store)
    t = now()
    steps = [  # the first with NULLs where the columns are typed: a new row and an update
        make_step(eid, "b", status=StepStatus.QUEUED, runs=1, input={"k": "é"}),
        make_step(eid, "a", status=StepStatus.COMPLETED, result={"x": [1, 2]}, has_result=True,
                  attempts=2, runs=1, active=0, started_at=t - 1, ended_at=t,
                  loop={"n": 3}, arrivals=[{"y": 1}]),
    ]
    events = [_event(eid, "action_completed", node_name="a", duration=0.25, attempt=2,
                     result={"r": 1}, meta={"m": True}),
              _event(eid, "step_completed", node_name="a", current_index=4),
              _event(eid, "step_started", node_name="b", context={"args": None})]
    new_job = make_job(eid, "b", priority=90)
    with store.transaction() as tx:
        job = tx.get_job(qid, lock=True)
        assert job is not None
        job.status, job.lease_until, job.attempts = JobStatus.DONE, None, 2
        job.payload["report_id"] = "r1"
        ex = tx.get_execution(eid, lock=True)
        assert ex is not None
        ex.state["last"] = "a"
        ex.status = ExecutionStatus.COMPLETED
        ex.ended_at = t
        tx.write_unit(steps, events, [new_job], [job], ex, notify=True)
    with store.read() as tx:
        got = tx.get_steps(eid)
        assert got == {s.step: s for s in steps}
        stored = tx.get_events(eid)
        assert [e.event_id for e in stored] == [e.event_id for e in events]  # in seq order
        assert [(e.duration, e.attempt, e.result, e.meta, e.current_index, e.context)
                for e in stored] == [(0.25, 2, {"r": 1}, {"m": True}, None, None),
                                     (None, None, None, None, 4, None),
                                     (None, None, None, None, None, {"args": None})]
        j = tx.get_job(qid)
        assert j is not None
        assert (j.status, j.attempts, j.lease_until, j.payload) == (
            "done", 2, None, {"p": "a", "report_id": "r1"})
        n = tx.get_job(new_job.queue_id)
        assert n is not None and (n.step, n.priority, n.status) == ("b", 90, "queued")
        x = tx.get_execution(eid)
        assert x is not None
        assert (x.status, x.state["last"], x.ended_at) == ("COMPLETED", "a", t)


def test_write_unit_with_some_parts_or_none(store: Store) -> None:
    eid, _ = _setup(store)
    with store.transaction() as tx:
        tx.write_unit([], [], [], [], None)
        tx.write_unit([], [_event(eid, "e1")], [], [], None)
        ex = tx.get_execution(eid)
        assert ex is not None
        ex.state["x"] = 1
        tx.write_unit([], [], [], [], ex)
    with store.read() as tx:
        assert [e.event_type for e in tx.get_events(eid)] == ["e1"]
        x = tx.get_execution(eid)
        assert x is not None and x.state["x"] == 1


def test_write_unit_beyond_one_statement_and_a_job_both_new_and_updated(store: Store) -> None:
    """A unit larger than one statement takes (a loop's items) is written all the same, in
    order; so is one that updates a job it also inserts (the update wins, as in sequence)."""
    eid, _ = _setup(store)
    events = [_event(eid, f"e{i}") for i in range(UNIT_PARAMS // 18 + 5)]
    job = make_job(eid, "c")
    with store.transaction() as tx:
        tx.write_unit([], events, [job], [], None)
    with store.read() as tx:
        assert [e.event_type for e in tx.get_events(eid, limit=10000)] == \
            [e.event_type for e in events]
    again = make_job(eid, "d")
    with store.transaction() as tx:
        moved = make_job(eid, "d")
        moved.queue_id = again.queue_id
        moved.status = JobStatus.LEASED
        moved.worker_id = "w"
        tx.write_unit([], [], [again], [moved], None)
    with store.read() as tx:
        got = tx.get_job(again.queue_id)
        assert got is not None and (got.status, got.worker_id) == ("leased", "w")


def test_a_batched_write_that_fails_fails_its_transaction_and_leaves_nothing(
        store: Store) -> None:
    """PostgreSQL answers a batch's writes only with the next statement or the COMMIT: the
    error comes then, the transaction is rolled back all the same, and the store goes on."""
    eid, _ = _setup(store)
    dup = _event(eid, "once")
    with store.transaction() as tx:
        tx.add_events([dup])
    with pytest.raises(Exception) as err:
        with store.transaction() as tx:
            ex = tx.get_execution(eid, lock=True)
            assert ex is not None
            with tx.batch():
                tx.write_unit([make_step(eid, "z", runs=1)], [_event(eid, "before"), dup],
                              [], [], ex)
    assert "unique" in str(err.value).lower()
    with store.transaction() as tx:
        tx.add_events([_event(eid, "after")])
    with store.read() as tx:
        assert [e.event_type for e in tx.get_events(eid)] == ["once", "after"]
        assert "z" not in tx.get_steps(eid)


def test_lock_job_reading_returns_the_rows_it_read(store: Store) -> None:
    eid, qid = _setup(store)
    with store.transaction() as tx:
        got = tx.lock_job_reading(qid, ["a", "nope"])
        assert got is not None
        job, ex, rows = got
        assert (job.queue_id, job.step) == (qid, "a")
        assert ex is not None and ex.execution_id == eid
        assert (job, ex) == (tx.get_job(qid), tx.get_execution(eid))  # every column, as read alone
        if rows is not None:  # a store may leave them to be read after
            assert rows == tx.get_steps(eid, ["a", "nope"])
            assert set(rows) == {"a"}
        assert tx.lock_job_reading(new_id(), ["a"]) is None
        plain = tx.lock_job_reading(qid, [])
        assert plain is not None and plain[0].queue_id == qid and plain[2] is None


ODD = ['we"ird\\,{name} NULL', "NULL", "é,ü"]  # quotes, a backslash, commas, braces, NULL


def test_step_names_any_text_are_read_as_they_are(store: Store) -> None:
    """Names reach PostgreSQL as array literals (pg_array): every character survives."""
    eid, qid = _setup(store)
    with store.transaction() as tx:
        tx.save_steps([make_step(eid, n, runs=1) for n in ODD])
    with store.transaction() as tx:
        got = tx.lock_job_reading(qid, [*ODD, "nope"])
        assert got is not None
        if got[2] is not None:
            assert set(got[2]) == set(ODD)
        assert set(tx.get_steps(eid, ODD)) == set(ODD)
        reads = tx.lock_jobs_reading({qid: ODD})
        if qid in reads:  # a store may leave them to the report (SQLite)
            assert set(reads[qid].steps) == set(ODD)


# -- PostgreSQL, two transactions ------------------------------------------------------------

def _wait_for(cond: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def _waiting(url: str) -> int:
    """Backends of this database waiting for a lock."""
    with psycopg.connect(url, autocommit=True) as c:
        r = c.execute("SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a "
                      "ON a.pid = l.pid WHERE NOT l.granted AND a.datname = "
                      "current_database()").fetchone()
    return int(r[0]) if r else 0


@pytest.fixture
def pg_store(pg_contract_url: str) -> Any:
    truncate_pg(pg_contract_url)
    s = open_store(pg_contract_url)
    try:
        yield s
    finally:
        s.close()
        truncate_pg(pg_contract_url)  # shared with later tests: leave no queued job


@pytest.mark.postgres
def test_pg_write_unit_takes_the_event_lock_before_drawing_seq(pg_store: Store,
                                                               pg_contract_url: str) -> None:
    """A second unit of the same execution waits for the first's event lock inside its one
    statement, so its events come after the first's, which commits later than it began."""
    eid, _ = _setup(pg_store)
    first, second = _event(eid, "first"), _event(eid, "second")
    held, release = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def hold() -> None:
        try:
            with pg_store.transaction() as tx:
                tx.get_execution(eid)  # begun: the unit's write is sent (not held back)
                tx.write_unit([make_step(eid, "x", runs=1)], [first], [], [], None)
                held.set()  # answered: the event lock is held until commit
                release.wait(10)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    t = threading.Thread(target=hold)
    t.start()
    try:
        assert held.wait(10)
        done = threading.Event()

        def write_second() -> None:
            with pg_store.transaction() as tx:
                tx.write_unit([make_step(eid, "y", runs=1)], [second], [], [], None)
            done.set()

        t2 = threading.Thread(target=write_second)
        t2.start()
        _wait_for(lambda: _waiting(pg_contract_url) > 0, "the second unit to wait")
        assert not done.is_set()
        release.set()
        t.join(10)
        t2.join(10)
        assert done.is_set() and not errors
    finally:
        release.set()
        t.join(10)
    with pg_store.read() as tx:
        assert [e.event_type for e in tx.get_events(eid)] == ["first", "second"]


@pytest.mark.postgres
def test_pg_lock_job_reading_after_waiting_never_returns_rows_older_than_the_lock(
        pg_store: Store, pg_contract_url: str) -> None:
    """Its snapshot is taken before it waits for the locks: a transaction that held them and
    changed the step rows (and so the execution row) commits meanwhile; the rows read with
    the locks are then stale and not returned."""
    eid, qid = _setup(pg_store)
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with pg_store.transaction() as tx:
            got = tx.lock_job(qid)
            if got is None or got[1] is None:
                return
            tx.save_steps([make_step(eid, "a", status=StepStatus.COMPLETED, runs=1)])
            tx.update_execution(got[1])
            held.set()
            release.wait(10)

    t = threading.Thread(target=hold)
    t.start()
    out: dict[str, Any] = {}

    def read() -> None:
        with pg_store.transaction() as tx:
            out["got"] = tx.lock_job_reading(qid, ["a"])
            out["now"] = tx.get_steps(eid, ["a"])

    try:
        assert held.wait(10)
        r = threading.Thread(target=read)
        r.start()
        _wait_for(lambda: _waiting(pg_contract_url) > 0, "the reader to wait")
        release.set()
        t.join(10)
        r.join(10)
    finally:
        release.set()
        t.join(10)
    got = out["got"]
    assert got is not None
    assert got[2] is None  # stale: left to be read afresh
    assert out["now"]["a"].status == StepStatus.COMPLETED


# -- PostgreSQL: a transaction begins with its first statement -------------------------------

def _traced(store: Store, body: Callable[[Any], None], path: Any,
            answers: bool = False) -> list[str]:
    """What the server completed for one transaction, in order (the CommandComplete tags of
    libpq's own protocol trace: BEGIN, SELECT 1, COMMIT...); ``answers``: with a ``|`` where
    the client waited for them (each ReadyForQuery ends a round trip)."""
    with open(path, "w") as f:
        with store.transaction() as tx:
            tx.conn.pgconn.trace(f.fileno())
            body(tx)
        tx.conn.pgconn.untrace()
    lines = [ln.split("\t") for ln in open(path).read().splitlines()]
    return [ln[4].strip().strip('"') if ln[3] == "CommandComplete" else "|" for ln in lines
            if len(ln) > 4 and ln[1] == "B" and (ln[3] == "CommandComplete"
                                                  or (answers and ln[3] == "ReadyForQuery"))]


@pytest.mark.postgres
def test_pg_a_transaction_of_one_unit_write_is_that_statement_alone(
        pg_store: Store, tmp_path: Any) -> None:
    """No BEGIN, no COMMIT: the unit's one statement is atomic on its own."""
    eid, _ = _setup(pg_store)
    ev = _event(eid, "alone")
    sent = _traced(pg_store, lambda tx: tx.write_unit(
        [make_step(eid, "x", runs=1)], [ev], [], [], None), tmp_path / "trace")
    assert len(sent) == 1 and sent[0].startswith("SELECT"), sent
    with pg_store.read() as tx:
        assert [e.event_type for e in tx.get_events(eid)] == ["alone"]
        assert set(tx.get_steps(eid, ["x"])) == {"x"}


@pytest.mark.postgres
def test_pg_a_held_back_write_is_sent_before_the_next_statement(
        pg_store: Store, tmp_path: Any) -> None:
    eid, _ = _setup(pg_store)
    got: dict[str, Any] = {}

    def body(tx: Any) -> None:
        tx.write_unit([make_step(eid, "x", runs=1)], [_event(eid, "w")], [], [], None)
        got["steps"] = tx.get_steps(eid, ["x"])  # reads its own write

    sent = _traced(pg_store, body, tmp_path / "trace")
    assert set(got["steps"]) == {"x"}
    # the unit's statement, then the read, inside BEGIN .. COMMIT
    assert sent == ["BEGIN", "SELECT 1", "SELECT 1", "COMMIT"], sent


@pytest.mark.postgres
def test_pg_a_block_that_raises_after_a_held_back_write_writes_nothing(pg_store: Store) -> None:
    eid, _ = _setup(pg_store)
    with pytest.raises(RuntimeError):
        with pg_store.transaction() as tx:
            tx.write_unit([make_step(eid, "x", runs=1)], [_event(eid, "lost")], [], [], None)
            raise RuntimeError("the caller gave up")
    with pg_store.read() as tx:
        assert tx.get_events(eid) == [] and tx.get_steps(eid, ["x"]) == {}
    with pg_store.transaction() as tx:  # the connection is fine afterwards
        tx.write_unit([], [_event(eid, "kept")], [], [], None)
    with pg_store.read() as tx:
        assert [e.event_type for e in tx.get_events(eid)] == ["kept"]


@pytest.mark.postgres
def test_pg_a_start_is_its_catalog_read_and_one_statement(pg_store: Store, tmp_path: Any) -> None:
    """A new execution (the catalog entry read, the row inserted, its first unit written) is
    two statements, each alone: the catalog read before any BEGIN (an entry never changes),
    the execution row inserted by the unit's own statement."""
    with pg_store.transaction() as tx:
        tx.register("start/alone", "content", {"k": 1})
    ex = make_exec(path="start/alone", status=ExecutionStatus.PENDING)
    job = make_job(ex.execution_id, "first")
    got: dict[str, Any] = {}

    def body(tx: Any) -> None:
        got["entry"] = tx.get_catalog(path="start/alone")
        tx.insert_execution(ex)
        ex.status = ExecutionStatus.RUNNING  # what the unit writes, after the insert
        tx.write_unit([make_step(ex.execution_id, "first", runs=1)],
                      [_event(ex.execution_id, "execution_started")], [job], [], ex,
                      notify=True)

    sent = _traced(pg_store, body, tmp_path / "trace")
    assert got["entry"].path == "start/alone"
    assert sent == ["SELECT 1", "SELECT 1"], sent
    with pg_store.read() as tx:
        row = tx.get_execution(ex.execution_id)
        assert row is not None and row.status == ExecutionStatus.RUNNING
        assert row.workload == {"x": 1, "s": "é"} and row.path == "start/alone"
        assert [e.event_type for e in tx.get_events(ex.execution_id)] == ["execution_started"]
        assert tx.get_job(job.queue_id) is not None


@pytest.mark.postgres
def test_pg_a_held_back_execution_row_is_inserted_before_any_other_statement(
        pg_store: Store, tmp_path: Any) -> None:
    ex = make_exec()
    got: dict[str, Any] = {}

    def body(tx: Any) -> None:
        tx.insert_execution(ex)
        got["row"] = tx.get_execution(ex.execution_id)  # reads its own insert
        tx.write_unit([], [_event(ex.execution_id, "e")], [], [], None)  # not that row

    sent = _traced(pg_store, body, tmp_path / "trace")
    assert got["row"] is not None and got["row"].execution_id == ex.execution_id
    assert sent == ["BEGIN", "INSERT 0 1", "SELECT 1", "SELECT 1", "COMMIT"], sent


@pytest.mark.postgres
def test_pg_a_start_whose_statement_fails_leaves_nothing(pg_store: Store) -> None:
    """The unit's statement inserting the execution row fails (its job's id is taken): no
    execution row, no event, and the connection serves the next transaction."""
    eid, qid = _setup(pg_store)
    ex = make_exec()
    taken = make_job(ex.execution_id, "first")
    taken.queue_id = qid
    with pytest.raises(psycopg.errors.UniqueViolation):
        with pg_store.transaction() as tx:
            tx.insert_execution(ex)
            tx.write_unit([], [_event(ex.execution_id, "execution_started")], [taken], [], ex)
    with pg_store.read() as tx:
        assert tx.get_execution(ex.execution_id) is None
        assert tx.get_events(ex.execution_id) == []
    with pg_store.transaction() as tx:
        tx.write_unit([], [_event(eid, "kept")], [], [], None)
    with pg_store.read() as tx:
        assert [e.event_type for e in tx.get_events(eid)] == ["kept"]


@pytest.mark.postgres
def test_pg_a_unit_write_goes_with_the_commit(pg_store: Store, tmp_path: Any) -> None:
    """A transaction that reads, then writes its unit, is two round trips: BEGIN and the
    read, then the unit's statement and COMMIT (nothing waits for the unit's answer)."""
    eid, _ = _setup(pg_store)
    got: dict[str, Any] = {}

    def body(tx: Any) -> None:
        got["steps"] = tx.get_steps(eid, ["a"])
        tx.write_unit([make_step(eid, "x", runs=1)], [_event(eid, "w")], [], [], None)

    sent = _traced(pg_store, body, tmp_path / "trace", answers=True)
    assert set(got["steps"]) == {"a"}
    assert sent == ["BEGIN", "SELECT 1", "|", "SELECT 1", "COMMIT", "|"], sent
    with pg_store.read() as tx:
        assert [e.event_type for e in tx.get_events(eid)] == ["w"]


@pytest.mark.postgres
def test_pg_a_unit_write_that_fails_fails_its_transaction_at_the_commit(
        pg_store: Store) -> None:
    """Its error is raised by the COMMIT's answer; nothing of the transaction is kept."""
    eid, qid = _setup(pg_store)
    taken = make_job(eid, "b")
    taken.queue_id = qid  # a new job with the id of one that exists
    with pytest.raises(psycopg.errors.UniqueViolation):
        with pg_store.transaction() as tx:
            assert set(tx.get_steps(eid, ["a"])) == {"a"}
            tx.write_unit([make_step(eid, "x", runs=1)], [_event(eid, "lost")], [taken], [],
                          None)
    with pg_store.read() as tx:
        assert tx.get_events(eid) == [] and set(tx.get_steps(eid, ["a", "x"])) == {"a"}
    with pg_store.transaction() as tx:
        tx.write_unit([], [_event(eid, "kept")], [], [], None)
    with pg_store.read() as tx:
        assert [e.event_type for e in tx.get_events(eid)] == ["kept"]


@pytest.mark.postgres
def test_pg_a_lease_is_one_statement_with_its_event_locks_and_executions(
        pg_store: Store, tmp_path: Any) -> None:
    """The jobs leased, their executions' event locks taken and their rows read, in one
    statement: the engine's get_execution that follows costs no round trip."""
    eid, qid = _setup(pg_store)
    got: dict[str, Any] = {}

    def body(tx: Any) -> None:
        got["leased"] = tx.lease_jobs("w1", 30.0, 5, now())
        got["ex"] = tx.get_execution(eid)
        got["again"] = tx.get_execution(eid)  # read afresh (the lease's copy is used once)

    sent = _traced(pg_store, body, tmp_path / "trace", answers=True)
    assert [(lj.job.queue_id, lj.prev) for lj in got["leased"]] == [(qid, JobStatus.QUEUED)]
    assert got["ex"] is not None and got["ex"].execution_id == eid
    assert got["ex"].workload == {"x": 1, "s": "é"} and got["ex"] == got["again"]
    # the lease (its main query a SELECT), the second read of the execution, COMMIT
    assert sent == ["BEGIN", "SELECT 1", "|", "SELECT 1", "|", "COMMIT", "|"], sent


@pytest.mark.postgres
def test_pg_a_lease_holding_event_locks_leases_only_what_it_can_lock_at_once(
        pg_store: Store, pg_contract_url: str) -> None:
    """Inside a transaction holding an event lock (a report's), the lease leaves the jobs of
    an execution whose event lock another transaction holds, and leases the others."""
    mine, mine_job = _setup(pg_store)
    busy, busy_job = _setup(pg_store)
    with psycopg.connect(pg_contract_url) as other:
        other.execute("SELECT pg_advisory_xact_lock(%s)", (busy,))
        with pg_store.transaction() as tx:
            tx.write_unit([], [_event(mine, "report")], [], [], None)  # holds mine's lock
            leased = tx.lease_jobs("w1", 30.0, 5, now())
            ex = tx.get_execution(mine)
        other.rollback()
    assert [lj.job.queue_id for lj in leased] == [mine_job]
    assert ex is not None and ex.execution_id == mine
    with pg_store.read() as tx:
        left = tx.get_job(busy_job)
        assert left is not None and left.status == JobStatus.QUEUED


@pytest.mark.postgres
def test_pg_a_lease_reads_each_execution_row_once(pg_store: Store, tmp_path: Any) -> None:
    """Several jobs of one execution leased together (a loop's items) bring its row once,
    however large its workload; each execution's row is the one get_execution returns."""
    execs = [make_exec() for _ in range(2)]
    for i, ex in enumerate(execs):
        ex.workload = {"marker": f"W0RKL0AD{i}"}
    with pg_store.transaction() as tx:
        for ex in execs:
            tx.insert_execution(ex)
            tx.add_jobs([make_job(ex.execution_id, f"s{j}") for j in range(3)])
    got: dict[str, Any] = {}
    path = tmp_path / "trace"

    def body(tx: Any) -> None:
        got["leased"] = tx.lease_jobs("w1", 30.0, 10, now())
        got["rows"] = [tx.get_execution(ex.execution_id) for ex in execs]

    sent = _traced(pg_store, body, path, answers=True)
    assert len(got["leased"]) == 6
    assert [r.workload for r in got["rows"]] == [ex.workload for ex in execs]
    assert sent == ["BEGIN", "SELECT 6", "|", "COMMIT", "|"], sent  # (no read after it)
    trace = path.read_text()
    assert trace.count("W0RKL0AD0") == 1 and trace.count("W0RKL0AD1") == 1


def _plan_costs(conn: Any, like: str) -> tuple[float, float]:
    """The estimated total cost of the prepared statement matching ``like`` on ``conn``, on
    its generic plan and on a custom one (for made-up values of its parameters' types)."""
    found = conn.execute("SELECT name, parameter_types::text[] FROM pg_prepared_statements "
                         "WHERE statement LIKE %s", (like,)).fetchall()
    assert len(found) == 1, f"prepared statements like {like!r} on this connection: {found}"
    name, types = found[0]
    dummy = {"bigint": "1", "integer": "1", "smallint": "1", "double precision": "1.5",
             "text": "'s1'", "text[]": "'{s1}'"}
    args = ", ".join(f"{dummy.get(t, 'NULL')}::{t}" for t in types)
    costs = []
    for mode in ("force_generic_plan", "force_custom_plan"):
        conn.execute(f"SET plan_cache_mode = {mode}")
        top = conn.execute(f"EXPLAIN EXECUTE {name}({args})").fetchone()[0]
        costs.append(float(top.split("..", 1)[1].split()[0]))
    conn.execute("RESET plan_cache_mode")
    return costs[0], costs[1]


@pytest.mark.postgres
def test_pg_a_unit_reading_step_rows_back_costs_the_same_on_its_cached_plan(
        pg_store: Store) -> None:
    """The step rows a unit reads back are named by a parameter each. With an array of
    unknown length, the generic plan's estimate of that read (ten names) made the whole
    statement 2.7 times dearer than a custom plan, and PostgreSQL then planned it again at
    every execution (once ``step_state`` held some thousands of rows: the most planning of
    the throughput load, 0.3 ms of server CPU a report)."""
    eid, qid = _setup(pg_store)
    with pg_store.transaction() as tx:  # a table of a size a server soon has
        tx.conn.execute("INSERT INTO step_state (execution_id, step, status) SELECT g / 8, "
                        "'s' || (g % 8), 'COMPLETED' FROM generate_series(1, 40000) AS g")
        tx.save_steps([make_step(eid, "r", status=StepStatus.COMPLETED, runs=7)])
    for i in range(3):  # the shape of a report: two step rows, five events, a job each way
        with pg_store.transaction() as tx:
            ex = tx.get_execution(eid, lock=True)
            job = tx.get_job(qid, lock=True)
            assert ex is not None and job is not None
            ex.state["n"] = i
            job.attempts = i + 1
            tx.write_unit([make_step(eid, "a", status=StepStatus.RUNNING, runs=i + 1),
                           make_step(eid, "b", runs=i)],
                          [_event(eid, "tick", node_name="a") for _ in range(5)],
                          [make_job(eid, "b")], [job], ex, read_back=["r", "c", "z"])
        assert tx.read_back is not None and set(tx.read_back) == {"r", "c", "z"}  # (3 of 4)
        row = tx.read_back["r"]
        assert tx.read_back["c"] is tx.read_back["z"] is None
        assert row is not None and row.runs == 7
    with pg_store.read() as tx:
        generic, custom = _plan_costs(tx.conn, "%pg_current_xact_id%LEFT JOIN step_state s%")
    assert generic <= custom * 1.05, (generic, custom)
