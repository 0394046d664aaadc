"""PostgreSQL only: several servers on one database.

Two :class:`PostgresStore` instances stand for two server processes, each with its own engine
and worker pool; orchestration of one execution must stay serial across them (row locks), leases
must never overlap (SKIP LOCKED), and a NOTIFY from one must wake the other.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from noetl.domain.records import Event
from noetl.dsl import load_playbook
from noetl.engine.core import Engine
from noetl.local import LocalBackend
from noetl.store.migrate import migrations
from noetl.store.postgres import LISTENER_NAME, PostgresStore
from noetl.worker.pool import WorkerPool
from tests.contract.rows import make_exec

pytestmark = pytest.mark.postgres
FIX = Path(__file__).resolve().parents[1] / "fixtures" / "noetl"
TERMINAL = ("execution_completed", "execution_failed", "execution_cancelled")


@pytest.fixture
def two_stores(fresh_pg_url: str) -> Iterator[tuple[PostgresStore, PostgresStore]]:
    a, b = PostgresStore(fresh_pg_url), PostgresStore(fresh_pg_url)
    try:
        yield a, b
    finally:
        a.close()
        b.close()


def _wait(cond: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def _double_starts(events: list[Event]) -> list[str]:
    """Steps started twice with no retry in between (a lost orchestration update)."""
    open_: dict[str, bool] = {}
    bad = []
    for e in events:
        if not e.node_name:
            continue
        if e.event_type == "step_started":
            if open_.get(e.node_name):
                bad.append(e.node_name)
            open_[e.node_name] = True
        elif e.event_type == "action_retry":
            open_[e.node_name] = False
    return bad


def test_two_servers_run_executions_to_completion(
        two_stores: tuple[PostgresStore, PostgresStore]) -> None:
    engines = [Engine(s) for s in two_stores]
    pools = [WorkerPool(LocalBackend(e), 2, worker_id=f"srv{i}") for i, e in enumerate(engines)]
    pb = load_playbook(FIX / "control_flow_workbook" / "control_flow_workbook.yaml")
    started: list[tuple[int, bool]] = []  # (execution id, hot?)
    lock = threading.Lock()

    def start(k: int) -> None:
        for i in range(10):
            hot = (i + k) % 2 == 0
            ex = engines[k].start(pb, args=None if hot else {"temperature_c": 10})
            with lock:
                started.append((ex.execution_id, hot))

    for p in pools:
        p.start()
    try:
        starters = [threading.Thread(target=start, args=(k,)) for k in (0, 1)]
        for t in starters:
            t.start()
        for t in starters:
            t.join(60)
        assert len(started) == 20
        _wait(lambda: all(engines[0].is_terminal(e) for e, _ in started), 90, "20 executions")
    finally:
        for p in pools:
            p.stop()
    assert sum(p.jobs_done for p in pools) > 0 and all(p.jobs_done for p in pools), \
        [p.jobs_done for p in pools]  # both servers' workers took part
    for eid, hot in started:
        desc = engines[1].describe(eid)
        assert desc["status"] == "COMPLETED", (eid, desc.get("error"))
        steps = desc["steps"]
        if hot:
            assert steps["hot_task_a"]["result"] == {"who": "A"}
            assert steps["hot_task_b"]["result"] == {"who": "B"}
            assert steps["cold_task"]["status"] == "SKIPPED"
        else:
            assert steps["cold_task"]["result"] == {"who": "C"}
            assert steps["hot_task_a"]["status"] == "SKIPPED"
        with two_stores[0].read() as tx:
            events = tx.get_events(eid, 0, 100000)
        assert [e.event_type for e in events if e.event_type in TERMINAL] == [
            "execution_completed"], eid
        assert not _double_starts(events), (eid, _double_starts(events))
        assert [e.event_type for e in events if e.node_name == "end"] == ["step_completed"]


def test_notify_wakes_a_waiter_in_another_store(
        two_stores: tuple[PostgresStore, PostgresStore]) -> None:
    a, b = two_stores
    assert b.listening.wait(5)
    seen = b.work_version()
    took: list[float] = []

    def waiter() -> None:
        t0 = time.monotonic()
        b.wait_for_work(seen, 10.0)
        took.append(time.monotonic() - t0)

    th = threading.Thread(target=waiter)
    th.start()
    a.notify_work()
    th.join(15)
    assert took and took[0] < 2.0, took  # woken by NOTIFY, not by the 10 s timeout
    assert b.work_version() > seen


def test_listener_reconnects_after_its_connection_dies(
        two_stores: tuple[PostgresStore, PostgresStore], fresh_pg_url: str) -> None:
    a, b = two_stores
    assert b.listening.wait(5) and a.listening.wait(5)
    with psycopg.connect(fresh_pg_url, autocommit=True) as conn:
        killed = conn.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE "
            "application_name = %s AND datname = current_database()", (LISTENER_NAME,)
        ).fetchone()
    assert killed is not None and killed[0] == 2
    _wait(lambda: not b.listening.is_set(), 5, "listener to notice")
    _wait(lambda: b.listening.is_set(), 10, "listener to reconnect")
    seen = b.work_version()
    a.notify_work()
    _wait(lambda: b.work_version() > seen, 3, "a wake-up after reconnecting")


def test_concurrent_first_opens_migrate_once(fresh_pg_url: str) -> None:
    stores: list[PostgresStore] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def open_one() -> None:
        try:
            barrier.wait()
            s = PostgresStore(fresh_pg_url, pool_size=2, listen=False)
            stores.append(s)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    try:
        assert not errors, errors
        assert len(stores) == 4
        with psycopg.connect(fresh_pg_url) as conn:
            versions = [r[0] for r in conn.execute(
                "SELECT version FROM noetl.schema_version ORDER BY version")]
            tables = {r[0] for r in conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'noetl'")}
            public = conn.execute("SELECT count(*) FROM information_schema.tables WHERE "
                                  "table_schema = 'public'").fetchone()
        assert versions == [v for v, _, _ in migrations("postgres")]
        assert {"catalog", "execution", "step_state", "event", "queue", "credential",
                "schema_version"} <= tables
        assert public is not None and public[0] == 0
    finally:
        for s in stores:
            s.close()


def test_deadlock_is_reported_retryable(two_stores: tuple[PostgresStore, PostgresStore]) -> None:
    """Two transactions locking two executions in opposite order: PostgreSQL aborts one with a
    deadlock, which the store classifies as retryable (Engine._tx then runs it again)."""
    a, b = two_stores
    x, y = make_exec(), make_exec()
    with a.transaction() as tx:
        tx.insert_execution(x)
        tx.insert_execution(y)
    first_locked = threading.Barrier(2)
    outcomes: list[BaseException | None] = []

    def lock_both(store: PostgresStore, one: int, two: int) -> None:
        try:
            with store.transaction() as tx:
                tx.get_execution(one, lock=True)
                first_locked.wait(5)
                tx.get_execution(two, lock=True)
            outcomes.append(None)
        except BaseException as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=lock_both, args=(a, x.execution_id, y.execution_id)),
               threading.Thread(target=lock_both, args=(b, y.execution_id, x.execution_id))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    errors = [o for o in outcomes if o is not None]
    assert len(outcomes) == 2 and len(errors) == 1, outcomes
    assert PostgresStore.retryable(errors[0]), repr(errors[0])
    assert not PostgresStore.retryable(ValueError("no"))


def test_event_seq_follows_commit_order_per_execution(
        two_stores: tuple[PostgresStore, PostgresStore], fresh_pg_url: str) -> None:
    """A follower paging with ``since_seq`` must never skip an event: a transaction that writes
    events of an execution waits for an earlier uncommitted one of the same execution, so
    ``seq`` order is commit order (other executions are not held up)."""
    from noetl.domain.records import Event
    from noetl.ids import new_id

    a, b = two_stores
    ex, other = make_exec(), make_exec()
    with a.transaction() as tx:
        tx.insert_execution(ex)
        tx.insert_execution(other)

    def ev(eid: int, name: str) -> Event:
        return Event(execution_id=eid, event_id=new_id(), event_type=name, status="RUNNING")

    first, second = ev(ex.execution_id, "first"), ev(ex.execution_id, "second")
    a_wrote, a_may_commit = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def writer_a() -> None:
        try:
            with a.transaction() as tx:
                tx.add_events([first])  # draws the lower seq ...
                a_wrote.set()
                assert a_may_commit.wait(10)  # ... and commits last
        except BaseException as exc:
            errors.append(exc)

    def writer_b() -> None:
        try:
            with b.transaction() as tx:
                tx.add_events([second])
        except BaseException as exc:
            errors.append(exc)

    ta = threading.Thread(target=writer_a)
    ta.start()
    assert a_wrote.wait(10)
    tb = threading.Thread(target=writer_b)
    tb.start()
    with psycopg.connect(fresh_pg_url, autocommit=True) as conn:
        def b_waits() -> bool:
            r = conn.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND "
                             "NOT granted").fetchone()
            return bool(r and r[0])
        _wait(b_waits, 10, "the second writer to wait for the first")
    with b.read() as tx:  # neither is visible yet: nothing a follower could skip past
        assert tx.get_events(ex.execution_id) == []
        # another execution's events are not held up
    with b.transaction() as tx:
        tx.add_events([ev(other.execution_id, "unrelated")])
    a_may_commit.set()
    ta.join(10)
    tb.join(10)
    assert not errors, errors
    with a.read() as tx:
        got = tx.get_events(ex.execution_id)
    assert [e.event_type for e in got] == ["first", "second"]
    assert got[0].seq is not None and got[1].seq is not None and got[0].seq < got[1].seq


def test_lease_in_a_transaction_holding_event_locks_skips_busy_executions(
        two_stores: tuple[PostgresStore, PostgresStore]) -> None:
    """Report-and-lease: a transaction that already wrote events leases jobs of its own
    execution and of idle ones, but never waits for another execution's event lock (that wait
    could close a deadlock with a transaction doing the same the other way round)."""
    from noetl.domain.records import Event, now
    from noetl.ids import new_id
    from tests.contract.rows import make_job

    a, b = two_stores
    e, f, g = make_exec(), make_exec(), make_exec()
    t = now() - 1
    je, jf, jg = (make_job(e.execution_id, "e", priority=50, available_at=t),
                  make_job(f.execution_id, "f", priority=90, available_at=t),
                  make_job(g.execution_id, "g", priority=10, available_at=t))
    with a.transaction() as tx:
        for x in (e, f, g):
            tx.insert_execution(x)
        tx.add_jobs([je, jf, jg])

    def ev(eid: int) -> Event:
        return Event(execution_id=eid, event_id=new_id(), event_type="x", status="RUNNING")

    f_busy, release_f = threading.Event(), threading.Event()

    def hold_f() -> None:
        with b.transaction() as tx:
            tx.add_events([ev(f.execution_id)])
            f_busy.set()
            release_f.wait(10)

    th = threading.Thread(target=hold_f)
    th.start()
    try:
        assert f_busy.wait(10)
        t0 = time.monotonic()
        with a.transaction() as tx:
            tx.add_events([ev(e.execution_id)])
            got = tx.lease_jobs("w1", 30.0, 10, now())
        assert time.monotonic() - t0 < 2.0  # did not wait for f
        assert [j.step for j, _, _ in got] == ["e", "g"]
        assert all(p == "queued" and j.attempts == 1 for j, p, _ in got)
    finally:
        release_f.set()
        th.join(10)
    with a.transaction() as tx:  # f's job was left queued, untouched
        [(jf2, prev, _)] = tx.lease_jobs("w2", 30.0, 10, now())
    assert (jf2.queue_id, prev, jf2.attempts) == (jf.queue_id, "queued", 1)


def test_notify_in_tx_is_sent_on_commit_only_and_once(
        two_stores: tuple[PostgresStore, PostgresStore]) -> None:
    a, b = two_stores
    assert b.listening.wait(5)
    seen = b.work_version()
    with pytest.raises(RuntimeError), a.transaction() as tx:
        tx.notify_in_tx()
        raise RuntimeError("rolled back: no NOTIFY")
    with a.transaction() as tx:
        tx.notify_in_tx()
        tx.notify_in_tx()  # once per transaction
        with tx.batch():  # pipelined writes land like any others
            tx.add_events([])
            tx.put_credential("c", "t", "E", None, [])
    a.notify_work()  # after a transaction that notified: local wake only, no second NOTIFY
    a._send("marker")  # a later notification: everything before it has been delivered
    _wait(lambda: b.last_payload == "marker", 5, "the marker")
    assert b.work_version() == seen + 2  # the committed one and the marker, nothing else
    with b.read() as tx:
        assert tx.get_credential("c") is not None


def test_cancel_while_workers_report_never_deadlocks(fresh_pg_url: str) -> None:
    """Cancelling a busy execution (workers reporting loop items all the while) must not
    deadlock: cancel locks the execution then its jobs, so a report must lock in that order
    too. A deadlock costs ``deadlock_timeout`` (1 s) and a cancel retried into the next report
    again and again until it gave up."""
    from noetl.dsl import parse_playbook
    from tests.engine.test_loops_children import LOOP

    store = PostgresStore(fresh_pg_url)
    seen: list[str] = []
    plain_retryable = PostgresStore.retryable

    def counting(exc: BaseException) -> bool:
        seen.append(type(exc).__name__)
        return plain_retryable(exc)

    store.retryable = counting  # type: ignore[method-assign]
    engine = Engine(store)
    pool = WorkerPool(LocalBackend(engine), 6).start()
    pb = parse_playbook(LOOP.replace("MODE", "async").replace("n: 1000", "n: 300"))
    try:
        for _ in range(10):
            ex = engine.start(pb)

            def busy() -> bool:
                with store.read() as tx:
                    return tx.queue_size("leased") >= 3
            _wait(busy, 20, "items to run")
            engine.cancel(ex.execution_id)
            assert engine.describe(ex.execution_id)["status"] == "CANCELLED"
            with store.read() as tx:
                events = tx.get_events(ex.execution_id, 0, 100000)
            assert [e.event_type for e in events if e.event_type in TERMINAL] == [
                "execution_cancelled"]
    finally:
        pool.stop()
        store.close()
    assert "DeadlockDetected" not in seen, seen


def test_cancelling_a_parent_while_children_finish_never_deadlocks(
        two_stores: tuple[PostgresStore, PostgresStore]) -> None:
    """A child finishing locks itself then its parent; the parent's cancel locks itself then
    its children. On two servers at once that cycle must be broken fast (lock timeout, retried)
    rather than by PostgreSQL's deadlock detector (1 s each, and retried into the next one)."""
    import textwrap

    from noetl.dsl import parse_playbook
    from tests.engine.test_loops_children import CHILD, PARENT

    seen: list[str] = []
    plain_retryable = PostgresStore.retryable
    for s in two_stores:
        def counting(exc: BaseException) -> bool:
            seen.append(type(exc).__name__)
            return plain_retryable(exc)
        s.retryable = counting  # type: ignore[method-assign]
    engines = [Engine(s) for s in two_stores]
    engines[0].register(textwrap.dedent(CHILD), "child.yaml")
    pools = [WorkerPool(LocalBackend(e), 3).start() for e in engines]
    pb = parse_playbook(PARENT.replace("values: [1, 2, 3]", f"values: {list(range(1, 11))}"))
    ended: list[int] = []
    try:
        for i in range(16):
            ex = engines[i % 2].start(pb)

            def has_children(eid: int = ex.execution_id, n: int = 1 + i % 4) -> bool:
                with two_stores[0].read() as tx:
                    return len(tx.children(eid)) >= n
            _wait(has_children, 20, "children")
            engines[(i + 1) % 2].cancel(ex.execution_id)  # from the other server
            ended.append(ex.execution_id)
    finally:
        for p in pools:
            p.stop()
    statuses = []
    for eid in ended:
        d = engines[0].describe(eid)
        statuses.append(d["status"])
        assert d["status"] in ("CANCELLED", "COMPLETED")
        assert all(c["status"] in ("CANCELLED", "COMPLETED") for c in d["children"]), d["children"]
        with two_stores[0].read() as tx:
            for x in [eid] + [int(c["execution_id"]) for c in d["children"]]:
                evs = tx.get_events(x, 0, 100000)
                assert len([e for e in evs if e.event_type in TERMINAL]) == 1, x
    assert "CANCELLED" in statuses  # some cancels did land mid-run
    assert "DeadlockDetected" not in seen, seen


SEQ3 = """apiVersion: noetl.io/v1
kind: Playbook
metadata:
  name: seq3
  path: tests/seq3
workflow:
  - step: start
    next: [{step: s0}]
""" + "".join(f"""  - step: s{i}
    type: python
    code: |
      def main():
          return {{'i': {i}}}
    next: [{{step: {f's{i + 1}' if i < 2 else 'end'}}}]
""" for i in range(3)) + """  - step: end
    type: end
"""


def test_a_report_to_another_server_reads_what_the_work_package_said(
        two_stores: tuple[PostgresStore, PostgresStore], monkeypatch: pytest.MonkeyPatch) -> None:
    """Each job is leased through one server process and reported through the other (HTTP
    workers' connections land on any of them). The work package names the step rows its
    report reads first (``reads``) and the worker sends them back: the reporting process,
    which did not hand the job out, reads them with the report's locks (no separate read of
    step rows), and the execution runs as ever."""
    from noetl.dsl import parse_playbook
    from noetl.store.sql import SqlTx

    separate: list[object] = []
    plain = SqlTx.get_steps

    def counted(self: SqlTx, *a: object, **kw: object) -> object:
        separate.append(a)
        return plain(self, *a, **kw)  # type: ignore[arg-type]

    a, b = (Engine(s) for s in two_stores)
    ex = a.start(parse_playbook(SEQ3))
    monkeypatch.setattr(SqlTx, "get_steps", counted)
    for i in range(3):
        leaser, reporter = (a, b) if i % 2 == 0 else (b, a)
        works = leaser.lease("w1", 1)
        assert [w["step"] for w in works] == [f"s{i}"]
        work = works[0]
        assert work["reads"] == sorted({f"s{i}", f"s{i + 1}" if i < 2 else "end"})
        assert reporter.hints.get(int(work["job_id"])) is None  # the other process's lease
        status = reporter.report(int(work["job_id"]), "w1",
                                 {"status": "ok", "data": {"i": i}, "reads": work["reads"]})
        assert status == "ok"
    assert separate == []
    d = a.describe(ex.execution_id)
    assert d["status"] == "COMPLETED", d
    # without the names (an older worker) the rows are read apart, as before
    ex2 = a.start(parse_playbook(SEQ3))
    work = a.lease("w1", 1)[0]
    assert b.report(int(work["job_id"]), "w1", {"status": "ok", "data": {"i": 0}}) == "ok"
    assert separate, "a report without reads reads the step rows on its own"
    assert b.describe(ex2.execution_id)["status"] == "RUNNING"
