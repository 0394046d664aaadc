"""The worker that lost a job is on the ``action_retry`` event of its lease's expiry (context
``worker_id``, meta ``lost_worker_id``), by both ways an expiry is seen: a lease that takes the
expired job over, and the reaper. On every backend, through the engine."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from noetl.domain.records import Event, now
from noetl.dsl import parse_playbook
from noetl.engine.core import Engine
from noetl.store import open_store
from noetl.worker.runner import run_work
from tests.helpers import wait_until

ONE = parse_playbook("apiVersion: noetl.io/v1\nkind: Playbook\nmetadata: {name: t, path: t}\n"
                     "workflow:\n  - step: start\n    type: python\n    code: |\n"
                     "      def main():\n          return 1\n")


@pytest.fixture
def engine(store_url: str) -> Iterator[Engine]:
    store = open_store(store_url)
    try:
        yield Engine(store)
    finally:
        store.close()


def _lose(engine: Engine, worker: str) -> None:
    """Lease the job and let its lease run out (a worker that died)."""
    works = engine.lease(worker, lease_seconds=0.001)
    assert len(works) == 1
    until = now() + 0.001
    wait_until(lambda: now() > until, timeout=5)


def _retries(engine: Engine, eid: int) -> list[Event]:
    with engine.store.read() as tx:
        return [e for e in tx.get_events(eid) if e.event_type == "action_retry"]


def test_a_lease_that_takes_an_expired_job_over_names_the_worker_that_lost_it(
        engine: Engine) -> None:
    eid = engine.start(ONE).execution_id
    _lose(engine, "w-lost")
    [work] = engine.lease("w-2")  # no reaper ran: this lease sees the expiry
    assert work["attempt"] == 2
    [retry] = _retries(engine, eid)
    assert retry.context == {"reason": "lease_expired", "next_attempt": 2, "lease_expiries": 1,
                             "worker_id": "w-lost"}
    assert retry.meta == {"lost_worker_id": "w-lost"} and retry.attempt == 1
    assert engine.report(int(work["job_id"]), "w-2", run_work(work)) == "ok"
    assert engine.describe(eid)["status"] == "COMPLETED"


def test_the_reaper_names_the_worker_that_lost_the_job(engine: Engine) -> None:
    eid = engine.start(ONE).execution_id
    _lose(engine, "w-a")
    assert engine.reap_expired() == 1
    [work] = engine.lease("w-b")
    [retry] = _retries(engine, eid)  # the lease after the reaper records nothing more
    assert retry.context is not None and retry.context["worker_id"] == "w-a"
    assert retry.meta == {"lost_worker_id": "w-a"}
    assert work["attempt"] == 2


def test_the_lease_that_fails_a_job_lost_too_often_names_the_last_worker(
        engine: Engine) -> None:
    eid = engine.start(ONE).execution_id
    limit = engine.settings.max_lease_expiries
    for i in range(limit + 1):  # the last expiry is one too many: that lease fails the step
        _lose(engine, f"w-{i}")
    assert engine.lease("w-last") == []
    retries = _retries(engine, eid)
    assert [e.meta for e in retries] == [{"lost_worker_id": f"w-{i}"} for i in range(limit + 1)]
    desc = engine.describe(eid)
    assert desc["status"] == "FAILED" and desc["steps"]["start"]["error"]["type"] == "LeaseExpired"
