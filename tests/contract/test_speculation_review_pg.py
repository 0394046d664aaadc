"""Review of speculative reports and lazy transactions on PostgreSQL: cases the first tests
left out (each fails without its fix)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from noetl.dsl import parse_playbook
from noetl.engine.core import Engine
from noetl.store.postgres import PgTx, PostgresStore
from noetl.worker.runner import run_work

pytestmark = pytest.mark.postgres

SEQ = parse_playbook("""
apiVersion: noetl.io/v1
kind: Playbook
metadata: {name: review_seq}
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
