"""PostgreSQL lock order of a batch of reports against a lease running at the same time: the
lease takes event locks in ascending execution order; the batch must not take them the other
way round (that deadlocked: PostgreSQL aborted one side after deadlock_timeout)."""

from __future__ import annotations

import threading
import time
from typing import Any

import psycopg
import pytest

from noetl.dsl import parse_playbook
from noetl.engine.core import Engine
from noetl.store.postgres import PgTx, PostgresStore
from noetl.worker.runner import run_work

pytestmark = pytest.mark.postgres

FORK = parse_playbook("""
apiVersion: noetl.io/v1
kind: Playbook
metadata: {name: fork}
workflow:
  - step: start
    next: [{step: a}, {step: b}]
  - step: a
    type: python
    code: "def main():\\n    return 1"
  - step: b
    type: python
    code: "def main():\\n    return 2"
""")


def _deadlocks(url: str) -> int:
    with psycopg.connect(url) as c:
        row = c.execute("SELECT deadlocks FROM pg_stat_database "
                        "WHERE datname = current_database()").fetchone()
    return int(row[0]) if row else 0


def _waiting(url: str) -> int:
    """Backends of this database waiting for a lock."""
    with psycopg.connect(url, autocommit=True) as c:
        r = c.execute("SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                      "WHERE NOT l.granted AND a.datname = current_database()").fetchone()
    return int(r[0]) if r else 0


def _until(what: str, check: Any, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def _free(url: str, key: int) -> bool:
    """Whether no transaction holds the advisory lock ``key`` (taken and given back at once)."""
    with psycopg.connect(url) as c:
        got = c.execute("SELECT pg_try_advisory_xact_lock(%s)", (key,)).fetchone()
        c.rollback()
    return bool(got and got[0])


def test_a_batch_and_a_lease_take_event_locks_in_one_order(fresh_pg_url: str) -> None:
    """Both take event locks in ascending execution order: with x1's held elsewhere, the
    lease waits for it holding none of x2's, and so does the batch of reports of both
    executions (taking x2's first had them deadlock: PostgreSQL aborted one side after
    deadlock_timeout). Once x1's is free, both finish."""
    store = PostgresStore(fresh_pg_url, pool_size=6, listen=False)
    try:
        engine = Engine(store)
        x1, x2 = sorted((engine.start(FORK).execution_id, engine.start(FORK).execution_id))
        works = {(int(w["execution_id"]), w["step"]): w for w in engine.lease("w1", 10)}
        for x in (x1, x2):  # the `b` jobs go back to the queue for the lease below
            engine.release(int(works[(x, "b")]["job_id"]), "w1")
        before = _deadlocks(fresh_pg_url)
        out: dict[str, Any] = {}

        def lease() -> None:
            out["lease"] = engine.lease("w2", 2)

        def batch() -> None:
            batch_works = [works[(x1, "a")], works[(x2, "a")]]
            out["batch"] = engine.report_batch(
                [(int(w["job_id"]), run_work(w)) for w in batch_works], "w1", 0)[0]

        with psycopg.connect(fresh_pg_url) as holder:
            holder.execute("SELECT pg_advisory_xact_lock(%s)", (x1,))
            t1 = threading.Thread(target=lease, name="lease")
            t1.start()
            _until("the lease to wait", lambda: _waiting(fresh_pg_url) == 1)
            assert _free(fresh_pg_url, x2)
            t2 = threading.Thread(target=batch, name="batch")
            t2.start()
            _until("the batch to wait too", lambda: _waiting(fresh_pg_url) == 2)
            assert _free(fresh_pg_url, x2)
            holder.rollback()  # x1's lock is free
            t1.join(30)
            t2.join(30)
        assert _deadlocks(fresh_pg_url) == before
        assert sorted(w["step"] for w in out["lease"]) == ["b", "b"]
        assert out["batch"] == [{"status": "ok"}, {"status": "ok"}]
    finally:
        store.close()


def test_a_batch_reads_what_each_report_reads_first_with_its_locks(fresh_pg_url: str) -> None:
    """lock_jobs_reading: the job, its execution and the step rows asked for that exist, as
    the reads one report at a time return them; a job that does not exist is left out."""
    store = PostgresStore(fresh_pg_url, pool_size=2, listen=False)
    try:
        engine = Engine(store)
        x1, x2 = engine.start(FORK).execution_id, engine.start(FORK).execution_id
        works = engine.lease("w1", 10)
        ids = [int(w["job_id"]) for w in works]
        assert len(ids) == 4
        asked = {ids[0]: {"start", "a", "nope"}, ids[1]: set(), ids[2]: {"b"}, ids[3]: {"a"},
                 987654321: {"start"}}
        with store.transaction() as tx:
            got = tx.lock_jobs_reading(asked)
            assert set(got) == set(ids)
            for q in ids:
                job = tx.get_job(q)
                assert job is not None
                assert got[q].job == job
                assert got[q].execution == tx.get_execution(job.execution_id)
                assert got[q].steps == tx.get_steps(job.execution_id, asked[q] - {"nope"})
                assert set(got[q].steps) == asked[q] - {"nope"}
            assert {got[q].execution.execution_id for q in ids} == {x1, x2}
            assert isinstance(tx, PgTx) and tx._batch_locked >= set(ids)
            assert tx._event_locks >= {x1, x2} and tx._exec_locks >= {x1, x2}
    finally:
        store.close()


def test_a_batch_locks_the_executions_ancestors_by_their_keys(fresh_pg_url: str) -> None:
    """The chain of a batch's locks: a job's execution and its ancestors, each locked (another
    transaction cannot take their rows), each looked up by its key. Joined, the planner took
    the chain for a thousand rows and scanned the whole execution table in every batch."""
    from noetl.store.pg_tx import _LOCK_CHAIN, to_pyformat
    from tests.contract.rows import add_finished_executions, make_exec, make_job

    store = PostgresStore(fresh_pg_url, pool_size=2, listen=False)
    try:
        top = make_exec()
        mid = make_exec(parent=top.execution_id)
        leaf = make_exec(parent=mid.execution_id)
        other = make_exec()
        job = make_job(leaf.execution_id, "a")
        with store.transaction() as tx:
            for ex in (top, mid, leaf, other):
                tx.insert_execution(ex)
            tx.add_jobs([job])
            add_finished_executions(tx)
        with store.transaction() as tx, psycopg.connect(fresh_pg_url) as probe:
            got = tx.lock_jobs_reading({job.queue_id: {"a"}})
            assert got[job.queue_id].execution.execution_id == leaf.execution_id
            assert isinstance(tx, PgTx) and tx._exec_locks >= {top.execution_id,
                                                                mid.execution_id,
                                                                leaf.execution_id}
            lock = "SELECT 1 FROM noetl.execution WHERE execution_id = %s FOR UPDATE NOWAIT"
            for ex in (top, mid, leaf):
                with pytest.raises(psycopg.errors.LockNotAvailable):
                    probe.execute(lock, (ex.execution_id,))
                probe.rollback()
            assert probe.execute(lock, (other.execution_id,)).fetchone() == (1,)
            probe.rollback()
            sql = to_pyformat(_LOCK_CHAIN).replace("%(ids)s", "$1")
            tx.conn.execute(f"PREPARE chain(text) AS {sql}")
            tx.conn.execute("SET LOCAL plan_cache_mode = force_generic_plan")
            plan = "\n".join(r[0] for r in tx.conn.execute(
                f"EXPLAIN EXECUTE chain('{{{job.queue_id}}}')").fetchall())
            tx.conn.execute("DEALLOCATE chain")
        assert "Seq Scan on execution" not in plan, plan
    finally:
        store.close()
