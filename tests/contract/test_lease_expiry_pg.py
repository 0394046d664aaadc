"""A job past its lease-expiry limit is never run again, even when a lease finds it while
another transaction holds its execution's row (the lease then cannot fail the step, and
must not wait for the row): it stays expired for the reaper or a later lease to fail. Real
PostgreSQL, the row held by a second connection."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from noetl.domain.records import now
from noetl.dsl import parse_playbook
from noetl.engine.core import Engine
from noetl.store import open_store
from tests.helpers import wait_until

pytestmark = pytest.mark.postgres

ONE = parse_playbook("apiVersion: noetl.io/v1\nkind: Playbook\nmetadata: {name: t, path: t}\n"
                     "workflow:\n  - step: start\n    type: python\n    code: |\n"
                     "      def main():\n          return 1\n")


@pytest.fixture
def engine(fresh_pg_url: str) -> Iterator[Engine]:
    store = open_store(fresh_pg_url)
    try:
        yield Engine(store)
    finally:
        store.close()


def _lease_and_lose(engine: Engine, worker: str) -> None:
    """Lease the job and let its lease run out (a worker that died)."""
    works = engine.lease(worker, lease_seconds=0.001)
    assert len(works) == 1
    until = now() + 0.001
    wait_until(lambda: now() > until, timeout=5)


def _job(url: str, eid: int) -> tuple[str, int, str | None]:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT status, attempts, worker_id FROM noetl.queue "
                           "WHERE execution_id = %s", (eid,)).fetchone()
    assert row is not None
    return row[0], row[1], row[2]


def test_a_poison_job_is_not_run_while_its_execution_is_busy(engine: Engine,
                                                             fresh_pg_url: str) -> None:
    eid = engine.start(ONE).execution_id
    limit = engine.settings.max_lease_expiries
    for i in range(limit):  # the reaper re-queues the first `limit` expiries
        _lease_and_lose(engine, f"w-{i}")
        assert engine.reap_expired() == 1
    _lease_and_lose(engine, "w-last")  # one expiry too many, not yet reaped
    before = _job(fresh_pg_url, eid)

    with psycopg.connect(fresh_pg_url) as holder:  # a report of another job, say
        holder.execute("SELECT 1 FROM noetl.execution WHERE execution_id = %s FOR UPDATE",
                       (eid,))
        assert engine.lease("w-next") == []  # not run once more
        status, attempts, worker = _job(fresh_pg_url, eid)
        assert (status, attempts, worker) == ("leased", before[1], None)
        holder.rollback()

    assert engine.lease("w-after") == []  # the row is free: the step fails
    desc = engine.describe(eid)
    assert desc["status"] == "FAILED"
    assert desc["error"]["type"] == "LeaseExpired"
    assert f"expired {limit + 1} times" in desc["error"]["message"]
    assert _job(fresh_pg_url, eid)[0] == "dead"  # failed for good
    with engine.store.read() as tx:
        events = tx.get_events(eid, 0, 10000)
    retries = [e for e in events if e.event_type == "action_retry"]
    assert len(retries) == limit + 1  # the undone lease recorded no expiry of its own
    assert sum(e.event_type == "action_started" for e in events) == limit + 1
