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


def test_a_batch_and_a_lease_take_event_locks_in_one_order(
        fresh_pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    store = PostgresStore(fresh_pg_url, pool_size=6, listen=False)
    try:
        engine = Engine(store)
        x1, x2 = engine.start(FORK).execution_id, engine.start(FORK).execution_id
        works = {(int(w["execution_id"]), w["step"]): w for w in engine.lease("w1", 10)}
        for x in (x1, x2):  # the `b` jobs go back to the queue for the lease below
            engine.release(int(works[(x, "b")]["job_id"]), "w1")
        real = PgTx.lock_events
        holding = threading.Event()

        def lease_slowly(self: PgTx, ids: set[int]) -> None:
            if threading.current_thread().name != "lease":
                return real(self, ids)
            for eid in sorted(ids - self._event_locks):  # ascending, one at a time
                real(self, {eid})
                holding.set()
                time.sleep(0.3)  # the batch starts meanwhile and meets this lock
            return None

        monkeypatch.setattr(PgTx, "lock_events", lease_slowly)
        before = _deadlocks(fresh_pg_url)
        out: dict[str, Any] = {}

        def lease() -> None:
            out["lease"] = engine.lease("w2", 2)

        def batch() -> None:
            batch_works = [works[(x1, "a")], works[(x2, "a")]]
            out["batch"] = engine.report_batch(
                [(int(w["job_id"]), run_work(w)) for w in batch_works], "w1", 0)[0]

        t1 = threading.Thread(target=lease, name="lease")
        t1.start()
        assert holding.wait(10)
        t2 = threading.Thread(target=batch, name="batch")
        t2.start()
        t1.join(30)
        t2.join(30)
        assert _deadlocks(fresh_pg_url) == before
        assert sorted(w["step"] for w in out["lease"]) == ["b", "b"]
        assert out["batch"] == [{"status": "ok"}, {"status": "ok"}]
    finally:
        store.close()
