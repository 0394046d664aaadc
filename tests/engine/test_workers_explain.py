"""The worker registry, the lease reaper and the explainer of waiting steps, on both stores.

Each test drives the engine by hand (lease, report, worker heartbeats) so every state the
explainer names is reached on purpose; the explanations are read through ``describe``, the
function every surface uses."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from noetl.dsl import parse_playbook
from noetl.engine.core import Engine
from noetl.engine.explain import clock
from noetl.engine.workers import beat, stopped, workers_view
from noetl.errors import LeaseLost
from noetl.local import LocalBackend
from noetl.store import open_store
from noetl.worker.pool import WorkerPool
from noetl.worker.runner import run_work
from tests.helpers import wait_until


@pytest.fixture(params=["sqlite", "postgres"])
def engine(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[Engine]:
    """An engine over an empty store (the registry is store-wide: no other test's workers)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'noetl.db'}"
        store = open_store(url)
    else:
        url = request.getfixturevalue("fresh_pg_url")
        store = open_store(url)
    try:
        yield Engine(store)
    finally:
        store.close()


def pb(text: str) -> Any:
    return parse_playbook("apiVersion: noetl.io/v1\nkind: Playbook\nmetadata: {name: t, path: t}\n"
                          + text)


ONE = pb("""
workflow:
  - step: start
    next: [{step: work}]
  - step: work
    type: python
    code: |
      def main():
          return 1
""")


def waiting(engine: Engine, eid: int, step: str) -> dict[str, Any] | None:
    why = engine.describe(eid)["steps"][step].get("waiting")
    return None if why is None else dict(why)


def alive(engine: Engine, worker: str, concurrency: int = 4, running: int = 0,
          lease: float = 30.0) -> None:
    beat(engine.store, {"worker_id": worker, "session": f"s-{worker}", "mode": "remote",
                        "hostname": "h", "pid": 1, "concurrency": concurrency,
                        "running": running, "jobs_done": 0, "lease_seconds": lease})


def test_queued_step_says_whether_a_worker_can_take_it(engine: Engine) -> None:
    eid = engine.start(ONE).execution_id
    why = waiting(engine, eid, "work")
    assert why is not None and why["reason"] == "no_worker" and why["stuck"] is True
    assert why["message"].startswith("no worker has polled yet")
    alive(engine, "w-1", concurrency=2, running=2)
    why = waiting(engine, eid, "work")
    assert why is not None and (why["reason"], why["stuck"]) == ("busy", False)
    assert why["message"] == "all 1 live worker busy (2 of 2 threads)"
    alive(engine, "w-1", concurrency=2, running=1)
    assert waiting(engine, eid, "work") == {"reason": "queued", "stuck": False,
                                            "message": "ready for a worker (1 alive)"}
    # the worker goes silent for longer than its lease: no longer alive
    alive(engine, "w-1", lease=0.05)
    time.sleep(0.1)
    why = waiting(engine, eid, "work")
    assert why is not None and why["reason"] == "no_worker"
    assert why["message"].startswith("no worker has polled for ")
    assert why["message"].endswith("(last: w-1, lost)")
    # nothing to explain once it ends
    work = engine.lease("w-1")[0]
    engine.report(int(work["job_id"]), "w-1", run_work(work))
    assert all("waiting" not in s for s in engine.describe(eid)["steps"].values())


def test_leased_step_names_its_worker_and_lease(engine: Engine) -> None:
    eid = engine.start(ONE).execution_id
    alive(engine, "w-2")
    work = engine.lease("w-2")[0]
    why = waiting(engine, eid, "work")
    assert why == {"reason": "leased", "worker_id": "w-2", "until": work["lease_until"],
                   "stuck": False, "message": f"leased by w-2 until {clock(work['lease_until'])}"}
    # its worker stops heartbeating (lease not yet run out): said so
    alive(engine, "w-2", lease=0.05)
    time.sleep(0.1)
    why = waiting(engine, eid, "work")
    assert why is not None and why["reason"] == "worker_lost" and why["stuck"] is True
    assert "w-2 has not been heard from for" in why["message"]


def test_reaper_requeues_an_expired_lease_without_any_worker_polling(engine: Engine) -> None:
    eid = engine.start(ONE).execution_id
    work = engine.lease("w-1", lease_seconds=0.1)[0]
    reaped_early = engine.reap_expired()  # 0 unless this thread stalled past the lease
    assert reaped_early == 0 or time.time() >= work["lease_until"]  # never before it ends
    if reaped_early:  # the stall let it run out: take it again, to see it run out once
        work = engine.lease("w-1", lease_seconds=0.1)[0]
    time.sleep(0.15)
    why = waiting(engine, eid, "work")  # ran out, not yet reaped
    assert why is not None and why["reason"] == "lease_expired"
    assert why["message"].startswith("the lease of w-1 expired at ")
    assert engine.reap_expired() == 1
    with engine.store.read() as tx:
        job = tx.get_job(int(work["job_id"]))
    assert job is not None and job.status == "queued" and job.worker_id == "w-1"
    why = waiting(engine, eid, "work")
    assert why is not None and why["reason"] == "lease_expired" and why["stuck"] is True
    assert why["message"] == (f"the lease of w-1 expired at {clock(work['lease_until'])} "
                              "(worker stopped heartbeating); re-queued: no worker has polled "
                              "yet (start one: noetl worker start; noetl server start "
                              "runs its own by default on SQLite, on PostgreSQL with "
                              "--workers)")
    # the late report of the lost worker is refused; a new worker runs attempt 2
    with pytest.raises(LeaseLost):
        engine.report(int(work["job_id"]), "w-1", run_work(work))
    again = engine.lease("w-2")[0]
    assert again["job_id"] == work["job_id"] and again["attempt"] == 2
    assert again["lease_expiries"] == 1
    assert engine.report(int(again["job_id"]), "w-2", run_work(again)) == "ok"
    desc = engine.describe(eid)
    assert desc["status"] == "COMPLETED" and desc["steps"]["work"]["attempts"] == 2
    with engine.store.read() as tx:
        evs = tx.get_events(eid)
    retry = [e for e in evs if e.event_type == "action_retry"]
    assert len(retry) == 1  # the lease that picked it up did not count the expiry again
    assert retry[0].context == {"reason": "lease_expired", "next_attempt": 2,
                                "lease_expiries": 1, "worker_id": "w-1"}
    assert retry[0].attempt == 1


def test_reaper_fails_the_step_after_too_many_expiries(engine: Engine) -> None:
    eid = engine.start(ONE).execution_id
    limit = engine.settings.max_lease_expiries
    for i in range(limit + 1):
        assert engine.lease(f"w-{i}", lease_seconds=0.05)
        time.sleep(0.07)
        assert engine.reap_expired() == 1
    desc = engine.describe(eid)
    assert desc["status"] == "FAILED"
    assert desc["error"]["type"] == "LeaseExpired"
    assert f"expired {limit + 1} times" in desc["error"]["message"]


RETRY = pb("""
workflow:
  - step: start
    type: python
    retry: {max_attempts: 2, initial_delay: 60}
    code: |
      def main():
          raise ValueError("no")
""")


def test_retry_delay_is_explained(engine: Engine) -> None:
    eid = engine.start(RETRY).execution_id
    work = engine.lease("w-1")[0]
    engine.report(int(work["job_id"]), "w-1", run_work(work))
    with engine.store.read() as tx:
        job = tx.get_job(int(work["job_id"]))
    assert job is not None
    assert waiting(engine, eid, "start") == {
        "reason": "retry", "until": job.available_at, "stuck": False,
        "message": f"waiting for retry until {clock(job.available_at)}"}


JOIN = pb("""
workflow:
  - step: start
    next: [{step: a}, {step: b}, {step: c}]
  - step: a
    type: python
    code: |
      def main():
          return "a"
    next: [{step: j}]
  - step: b
    type: python
    code: |
      def main():
          return "b"
    next: [{step: j}]
  - step: c
    type: python
    code: |
      def main():
          return "c"
    next: [{step: j}]
  - step: j
    type: python
    code: |
      def main():
          return "j"
""")


def test_join_names_the_branches_it_waits_for(engine: Engine) -> None:
    eid = engine.start(JOIN).execution_id
    works = {w["step"]: w for w in engine.lease("w-1", 3)}
    assert set(works) == {"a", "b", "c"}
    engine.report(int(works["a"]["job_id"]), "w-1", run_work(works["a"]))
    assert waiting(engine, eid, "j") == {"reason": "join", "stuck": False, "steps": ["b", "c"],
                                         "message": "waiting for join: b, c"}
    engine.report(int(works["c"]["job_id"]), "w-1", run_work(works["c"]))
    assert waiting(engine, eid, "j")["message"] == "waiting for join: b"  # type: ignore[index]
    engine.report(int(works["b"]["job_id"]), "w-1", run_work(works["b"]))
    why = waiting(engine, eid, "j")  # the join now runs as a queued step
    assert why is not None and why["reason"] == "no_worker"


LOOP = pb("""
workflow:
  - step: start
    type: iterator
    collection: [1, 2, 3, 4]
    element: x
    mode: async
    concurrency: 2
    task:
      type: python
      args: {x: "{{ x }}"}
      code: |
        def main(x):
            return x
""")


def test_loop_counts_items_by_what_they_wait_for(engine: Engine) -> None:
    eid = engine.start(LOOP).execution_id
    alive(engine, "w-1")
    why = waiting(engine, eid, "start")
    assert why is not None and why["reason"] == "queued"
    assert why["message"] == ("2 items queued: ready for a worker (1 alive); "
                              "2 items waiting for a free slot (the loop's concurrency)")
    engine.lease("w-1")
    why = waiting(engine, eid, "start")
    assert why is not None and why["reason"] == "leased"
    assert why["message"].startswith("1 item leased by w-1 until ")
    assert "1 item queued: ready for a worker (1 alive); 2 items waiting" in why["message"]


def test_registry_states_and_the_local_pool(engine: Engine) -> None:
    alive(engine, "r-1", concurrency=8, running=3)
    view = workers_view_of(engine)
    assert view["counts"] == {"alive": 1, "lost": 0, "stopped": 0}
    (r1,) = view["items"]
    assert (r1["worker_id"], r1["mode"], r1["concurrency"], r1["running"], r1["state"]) == (
        "r-1", "remote", 8, 3, "alive")
    started = r1["started_at"]
    alive(engine, "r-1")  # a heartbeat of the same session keeps its start time
    assert workers_view_of(engine)["items"][0]["started_at"] == started
    assert stopped(engine.store, "r-1")
    assert workers_view_of(engine)["counts"] == {"alive": 0, "lost": 0, "stopped": 1}
    # a pool registers on start, shows the jobs it holds, and (local) is forgotten on stop
    eid = engine.start(pb("""
workflow:
  - step: start
    type: python
    code: |
      import time
      def main():
          time.sleep(0.5)
          return 1
""")).execution_id
    pool = WorkerPool(LocalBackend(engine), 2, worker_id="local-1")
    with pool:
        def holding() -> bool:
            w = {x["worker_id"]: x for x in workers_view_of(engine)["items"]}.get("local-1")
            return bool(w and w["state"] == "alive" and w["mode"] == "local" and w["jobs"])
        wait_until(holding, 10, "the pool registered, holding its job")
        wait_until(lambda: engine.is_terminal(eid), 10, "the execution to end")
    assert {w["worker_id"] for w in workers_view_of(engine)["items"]} == {"r-1"}


def workers_view_of(engine: Engine) -> dict[str, Any]:
    with engine.store.read() as tx:
        return workers_view(tx)


CHILD = """\
apiVersion: noetl.io/v1
kind: Playbook
metadata: {name: kid, path: t/kid}
workflow:
  - step: start
    type: python
    code: |
      def main():
          return 1
"""


def test_sub_playbook_step_names_its_child(engine: Engine) -> None:
    engine.register(CHILD)
    eid = engine.start(pb("""
workflow:
  - step: start
    next: [{step: call}]
  - step: call
    type: playbook
    path: t/kid
""")).execution_id
    (kid,) = engine.describe(eid)["children"]
    assert waiting(engine, eid, "call") == {
        "reason": "child", "stuck": False, "execution_id": kid["execution_id"],
        "message": f"waiting for sub-playbook execution {kid['execution_id']} (RUNNING)"}
    # and the child's own step says why it waits
    why = waiting(engine, int(kid["execution_id"]), "start")
    assert why is not None and why["reason"] == "no_worker"


def test_with_only_embedded_runs_alive_it_says_resume_carries_it_on(engine: Engine) -> None:
    """No server (whose reaper re-queues) and no worker that takes any job: only noetl runs,
    which run their own executions. What waits says so, and how it goes on."""
    from noetl.domain.records import now

    eid = engine.start(ONE).execution_id
    beat(engine.store, {"worker_id": "run-1", "session": "s", "mode": "local",
                        "hostname": "h", "pid": 1, "concurrency": 4, "running": 0,
                        "jobs_done": 0, "lease_seconds": 30.0})
    why = waiting(engine, eid, "work")
    assert why is not None and why["reason"] == "queued"
    assert why["message"] == ("ready for its noetl run's workers; nothing else runs it without "
                              f"a server: if its noetl run has stopped, `noetl resume {eid}` "
                              "carries it on")
    work = engine.lease("run-1")[0]
    with engine.store.transaction() as tx:  # its lease runs out (its run was killed)
        job = tx.get_job(int(work["job_id"]), lock=True)
        assert job is not None
        job.lease_until = now() - 1
        tx.update_job(job)
    why = waiting(engine, eid, "work")
    assert why is not None and (why["reason"], why["stuck"]) == ("lease_expired", True)
    assert why["message"].endswith(f"(worker stopped heartbeating); nothing else runs it "
                                   f"without a server: if its noetl run has stopped, "
                                   f"`noetl resume {eid}` carries it on")
    alive(engine, "w-1")  # a worker of a server: its reaper re-queues the job
    why = waiting(engine, eid, "work")
    assert why is not None and why["message"].endswith("; about to be re-queued")


def test_an_execution_whose_stored_plan_no_longer_compiles_is_described(
        engine: Engine) -> None:
    """Its status, times and step rows, with ``plan_error`` saying why there is no plan: not
    an error (an invalid playbook) in place of the execution."""
    from noetl.domain.lifecycle import StepStatus
    from noetl.domain.records import ExecutionRow, StepRow, now
    from noetl.ids import new_id

    ex = ExecutionRow(execution_id=new_id(), path="old/one", version="1", status="RUNNING",
                      playbook={"metadata": {"path": "old/one"}}, workload={},
                      state={"active": {}, "joins": []}, created_at=now())
    with engine.store.transaction() as tx:
        tx.insert_execution(ex)
        tx.save_steps([StepRow(ex.execution_id, "start", status=StepStatus.COMPLETED, runs=1)])
    d = engine.describe(ex.execution_id)
    assert d["status"] == "RUNNING" and d["path"] == "old/one"
    assert "apiVersion" in d["plan_error"]
    assert d["steps"]["start"]["status"] == "COMPLETED" and d["steps"]["start"]["type"] is None
    assert d["children"] == []
