"""Speculative reports on PostgreSQL (noetl.engine.speculation): the next report of a job this
process handed out decides on the rows it kept and writes in one guarded statement; when
anything changed those rows meanwhile, the statement fails and the report runs again, reading
them, so what it decides is what a report reading them would decide."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from noetl.dsl import parse_playbook
from noetl.engine.core import Engine
from noetl.store.base import Stale
from noetl.store.postgres import PgTx, PostgresStore
from noetl.worker.runner import run_work
from tests.helpers import assert_one_terminal

pytestmark = pytest.mark.postgres

SEQ = parse_playbook("""
apiVersion: noetl.io/v1
kind: Playbook
metadata: {name: spec_seq}
workload: {n: 3}
workflow:
  - step: start
    type: python
    args: {n: "{{ workload.n }}"}
    code: "def main(n):\\n    return n"
    next: [{step: double}]
  - step: double
    type: python
    args: {x: "{{ start }}"}
    code: "def main(x):\\n    return x * 2"
    next: [{step: add}]
  - step: add
    type: python
    args: {x: "{{ double }}", y: "{{ start }}"}
    code: "def main(x, y):\\n    return x + y"
""")


@pytest.fixture
def store(fresh_pg_url: str) -> Iterator[PostgresStore]:
    st = PostgresStore(fresh_pg_url, pool_size=3, listen=False)
    try:
        yield st
    finally:
        st.close()


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The job ids reports locked and read (PgTx.lock_job_reading, still the real one)."""
    seen: list[int] = []
    real = PgTx.lock_job_reading

    def spy(self: PgTx, queue_id: int, steps: Any) -> Any:
        seen.append(queue_id)
        return real(self, queue_id, steps)

    monkeypatch.setattr(PgTx, "lock_job_reading", spy)
    return seen


def _report(engine: Engine, work: dict[str, Any], **extra: Any
            ) -> tuple[str, list[dict[str, Any]]]:
    out = run_work(work)
    out["report_id"] = "r" + str(work["job_id"])
    out.update(extra)
    status, nxt = engine.report_and_lease(int(work["job_id"]), "w1", out, 1)
    return status, [dict(w) for w in nxt]


def test_a_sequence_reports_on_the_rows_it_kept(store: PostgresStore, reads: list[int]) -> None:
    engine = Engine(store)
    eid = engine.start(SEQ).execution_id
    (work,) = engine.lease("w1", 1)
    status, nxt = _report(engine, dict(work))  # leased, not handed out: read
    assert status == "ok" and [w["step"] for w in nxt] == ["double"]
    assert reads == [int(work["job_id"])]
    status, nxt2 = _report(engine, nxt[0])  # handed out: kept, not read
    assert status == "ok" and [w["step"] for w in nxt2] == ["add"]
    status, last = _report(engine, nxt2[0])
    assert status == "ok" and last == []
    assert reads == [int(work["job_id"])]  # the two speculative reports read nothing first
    desc = engine.describe(eid)
    assert desc["status"] == "COMPLETED" and desc["result"] == 9
    with store.read() as tx:
        assert_one_terminal(tx.get_events(eid))


def test_a_cancel_meanwhile_makes_the_report_read_again(
        store: PostgresStore, reads: list[int]) -> None:
    """The execution was cancelled after the hand-off: the kept rows say the job is leased
    and the execution running; the guarded write fails and the report, reading, records
    the late result and changes nothing (without the guard it would have run on)."""
    engine = Engine(store)
    eid = engine.start(SEQ).execution_id
    (work,) = engine.lease("w1", 1)
    _, nxt = _report(engine, dict(work))
    engine.cancel(eid)
    status, more = _report(engine, nxt[0])
    assert status == "cancelled" and more == []
    assert reads[-1] == int(nxt[0]["job_id"])  # read again after the failed write
    desc = engine.describe(eid)
    assert desc["status"] == "CANCELLED"
    add = desc["steps"].get("add")
    assert add is None or add["status"] not in ("QUEUED", "RUNNING", "COMPLETED"), add
    with store.read() as tx:
        events = tx.get_events(eid)
    assert_one_terminal(events)
    assert not [e for e in events if e.event_type == "step_started" and e.node_name == "add"]


def test_a_heartbeat_meanwhile_costs_a_read_not_the_result(
        store: PostgresStore, reads: list[int]) -> None:
    engine = Engine(store)
    eid = engine.start(SEQ).execution_id
    (work,) = engine.lease("w1", 1)
    _, nxt = _report(engine, dict(work))
    engine.heartbeat(int(nxt[0]["job_id"]), "w1")  # the job's row changed
    status, more = _report(engine, nxt[0])
    assert status == "ok" and [w["step"] for w in more] == ["add"]
    assert reads[-1] == int(nxt[0]["job_id"])
    _report(engine, more[0])
    assert engine.describe(eid)["result"] == 9


def test_a_change_by_another_client_is_caught_by_the_guard(
        store: PostgresStore, fresh_pg_url: str) -> None:
    """Rows changed outside the engine (here: the step row of `start` and the execution row,
    as any writer of step rows does) make the speculative write fail, not win."""
    engine = Engine(store)
    eid = engine.start(SEQ).execution_id
    (work,) = engine.lease("w1", 1)
    _, nxt = _report(engine, dict(work))
    with psycopg.connect(fresh_pg_url, autocommit=True) as c:
        c.execute("UPDATE noetl.step_state SET result = '5' WHERE execution_id = %s "
                  "AND step = 'start'", (eid,))
        c.execute("UPDATE noetl.execution SET updated_at = updated_at WHERE execution_id = %s",
                  (eid,))
    _, more = _report(engine, nxt[0])
    # `add` renders {{ start }} from the row as it is now, not as it was kept
    assert more[0]["step"] == "add" and more[0]["ctx"]["results"] == {"double": 6, "start": 5}


def test_a_speculative_transaction_checks_its_rows_before_any_other_statement(
        store: PostgresStore) -> None:
    engine = Engine(store)
    eid = engine.start(SEQ).execution_id
    (work,) = engine.lease("w1", 1)
    qid = int(work["job_id"])
    with store.transaction() as tx:  # the start's transaction wrote both rows last
        xid = str(tx._one("SELECT e.xmin::text FROM execution e WHERE execution_id = :e",
                          {"e": eid})[0])
    with store.transaction() as tx:
        tx.speculate(eid, qid, "1")  # not the transaction that wrote them
        with pytest.raises(Stale, match=f"execution {eid}"):
            tx.get_steps(eid, ["start"])
    with store.transaction() as tx:  # the lease changed the job row: its xmin is newer
        tx.speculate(eid, qid, xid)
        with pytest.raises(Stale):
            tx.get_steps(eid, ["start"])
    with store.transaction() as tx:
        q_xid = str(tx._one("SELECT xmin::text FROM queue WHERE queue_id = :q", {"q": qid})[0])
        e_xid = str(tx._one("SELECT xmin::text FROM execution WHERE execution_id = :e",
                            {"e": eid})[0])
    if q_xid == e_xid:  # (only when one transaction wrote both)
        with store.transaction() as tx:
            tx.speculate(eid, qid, q_xid)
            assert "start" in tx.get_steps(eid, ["start"])
            assert eid in tx._exec_locks


def _long(n: int) -> str:
    """``start`` → s0 … s{n-1}; every step adds its predecessor's result and ``start``'s."""
    lines = ["apiVersion: noetl.io/v1", "kind: Playbook", "metadata: {name: spec_long}",
             "workflow:", "  - step: start", "    type: python",
             "    code: \"def main():\\n    return 1\"", "    next: [{step: s0}]"]
    for i in range(n):
        prev = f"s{i - 1}" if i else "start"
        lines += [f"  - step: s{i}", "    type: python",
                  f"    args: {{x: \"{{{{ {prev} }}}}\", y: \"{{{{ start }}}}\"}}",
                  "    code: \"def main(x, y):\\n    return x + y\""]
        if i < n - 1:
            lines.append(f"    next: [{{step: s{i + 1}}}]")
    return "\n".join(lines) + "\n"


def test_a_long_sequence_keeps_only_the_rows_its_next_report_reads(
        store: PostgresStore, reads: list[int], monkeypatch: pytest.MonkeyPatch) -> None:
    """Kept: the rows the next report reads (its step, its edges' targets, what they render:
    here the predecessor and ``start``), never every row so far (which would grow with each
    step); and they suffice: each report of the sequence after the first is its one unit
    statement, no other (no read of a row it lacks, no validation)."""
    sent: list[str] = []
    real = PgTx._x

    def spy(self: PgTx, sql: str, params: Any = None) -> Any:
        sent.append(sql)
        return real(self, sql, params)

    monkeypatch.setattr(PgTx, "_x", spy)
    n = 12
    engine = Engine(store)
    eid = engine.start(parse_playbook(_long(n))).execution_id
    (work,) = engine.lease("w1", 1)
    status, nxt = _report(engine, dict(work))  # leased, not handed out: read
    sizes: list[int] = [len(k.steps) for k in engine.kept._items.values()]
    per_report: list[list[str]] = []
    while nxt:
        sent.clear()
        status, nxt = _report(engine, nxt[0])
        assert status == "ok"
        per_report.append(list(sent))
        sizes.extend(len(k.steps) for k in engine.kept._items.values())
    assert reads == [int(work["job_id"])]
    # (the last hands nothing out: report_and_lease then leases from the queue)
    assert per_report[:-1] == [[]] * (n - 1), per_report
    assert len(sizes) == n and max(sizes) <= 4, sizes  # s{i}, s{i+1}, s{i-1}, start
    desc = engine.describe(eid)
    assert desc["status"] == "COMPLETED" and desc["result"] == n + 1  # 1 + 1 each step


# -- found in review: a guard failing late, kept rows shared or not as stored ----------

def test_a_cancel_meanwhile_is_caught_when_logs_follow_the_guarded_write(
        store: PostgresStore, reads: list[int]) -> None:
    """A report with logs sends its guarded write with BEGIN and the logs' insert after it:
    the failed guard surfaces at that statement's sync, still as a stale report."""
    engine = Engine(store)
    eid = engine.start(SEQ).execution_id
    (work,) = engine.lease("w1", 1)
    _, nxt = _report(engine, dict(work))
    engine.cancel(eid)
    logs = [{"t": 1.0, "stream": "stdout", "level": "INFO", "message": "hello"}]
    status, more = _report(engine, nxt[0], logs=logs)
    assert status == "cancelled" and more == []
    assert reads[-1] == int(nxt[0]["job_id"])
    assert engine.describe(eid)["status"] == "CANCELLED"


MUTATE = parse_playbook("""
apiVersion: noetl.io/v1
kind: Playbook
metadata: {name: review_mutate}
workflow:
  - step: start
    type: python
    code: "def main():\\n    return {'a': {'b': 1}}"
    next: [{step: touch}]
  - step: touch
    type: python
    args: {d: "{{ start }}"}
    code: "def main(d):\\n    d['a']['b'] = 99\\n    return 0"
    next: [{step: use}]
  - step: use
    type: python
    args: {d: "{{ start }}"}
    code: "def main(d):\\n    return d['a']['b']"
""")


def test_a_step_changing_its_input_in_process_changes_no_kept_row(
        store: PostgresStore, reads: list[int]) -> None:
    """An in-process worker (embedded run, direct worker) gets the work package as built;
    a step that changes a result it was given changes only its copy: the next step is given
    `start`'s result as stored, whether its report read the rows or used the kept ones."""
    engine = Engine(store)
    eid = engine.start(MUTATE).execution_id
    (work,) = engine.lease("w1", 1)
    _, nxt = _report(engine, dict(work))  # hands `touch` out: its rows kept
    assert nxt[0]["step"] == "touch"
    _, nxt2 = _report(engine, nxt[0])  # speculative; hands `use` out
    assert len(reads) == 1  # (the report of `touch` used the kept rows)
    assert nxt2[0]["ctx"]["results"]["start"] == {"a": {"b": 1}}
    _report(engine, nxt2[0])
    desc = engine.describe(eid)
    assert desc["status"] == "COMPLETED" and desc["result"] == 1


NUMBER_KEYS = parse_playbook("""
apiVersion: noetl.io/v1
kind: Playbook
metadata: {name: review_keys}
workflow:
  - step: start
    type: python
    code: "def main():\\n    return {1: 'one'}"
    next: [{step: middle}]
  - step: middle
    type: python
    code: "def main():\\n    return 0"
    next: [{step: use}]
  - step: use
    type: python
    args: {v: "{{ start['1'] }}"}
    code: "def main(v):\\n    return v"
""")


def test_kept_rows_are_the_values_a_read_returns(
        store: PostgresStore, reads: list[int]) -> None:
    """An in-process outcome may hold what JSON stores otherwise (a number key is stored as
    text): the kept rows hold the values as stored, so `use` renders what it would have
    rendered from the rows read."""
    engine = Engine(store)
    eid = engine.start(NUMBER_KEYS).execution_id
    (work,) = engine.lease("w1", 1)
    _, nxt = _report(engine, dict(work))
    _, nxt2 = _report(engine, nxt[0])  # speculative: `use` built from the kept rows
    assert len(reads) == 1
    assert nxt2[0]["ctx"]["results"]["start"] == {"1": "one"}
    _report(engine, nxt2[0])
    desc = engine.describe(eid)
    assert desc["status"] == "COMPLETED" and desc["result"] == "one"
