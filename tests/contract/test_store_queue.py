"""Store contract: the job queue (every backend), including concurrent leasing."""

from __future__ import annotations

import random
import threading

from noetl.domain.lifecycle import JobStatus
from noetl.domain.records import now
from noetl.ids import new_id
from noetl.store import Store
from tests.contract.rows import make_exec, make_job


def _exec(store: Store) -> int:
    ex = make_exec()
    with store.transaction() as tx:
        tx.insert_execution(ex)
    return ex.execution_id


def test_job_add_get_update(store: Store) -> None:
    eid = _exec(store)
    job = make_job(eid, "s", kind="item", index=4, max_attempts=3, run=2)
    with store.transaction() as tx:
        tx.add_jobs([job])
        tx.add_jobs([])
    with store.read() as tx:
        got = tx.get_job(job.queue_id)
        assert got is not None
        assert (got.execution_id, got.step, got.run, got.kind, got.index, got.payload,
                got.status, got.priority, got.attempts, got.max_attempts, got.available_at) == (
            eid, "s", 2, "item", 4, {"p": "s"}, "queued", 50, 0, 3, job.available_at)
        assert tx.get_job(new_id()) is None
    with store.transaction() as tx:
        locked = tx.get_job(job.queue_id, lock=True)
        assert locked is not None
        locked.status = JobStatus.DONE
        locked.result = {"data": [1, "é"]}
        locked.payload["report_id"] = "r1"
        locked.attempts, locked.worker_id, locked.lease_until = 2, "w", 12.5
        tx.update_job(locked)
    with store.read() as tx:
        got = tx.get_job(job.queue_id)
        assert got is not None
        assert (got.status, got.result, got.payload, got.attempts, got.worker_id,
                got.lease_until) == ("done", {"data": [1, "é"]}, {"p": "s", "report_id": "r1"},
                                     2, "w", 12.5)


def test_lease_priority_order_and_bookkeeping(store: Store) -> None:
    eid = _exec(store)
    t = now()
    jobs = [make_job(eid, f"p{p}", priority=p, available_at=t - 1) for p in (10, 90, 50, 90)]
    with store.transaction() as tx:
        tx.add_jobs(jobs)
        leased = tx.lease_jobs("w1", 30.0, 3, t)
    assert [j.priority for j, _, _ in leased] == [90, 90, 50]
    p90 = sorted(j.queue_id for j in jobs if j.priority == 90)
    assert [j.queue_id for j, _, _ in leased[:2]] == p90  # ties: oldest (lowest id) first
    for job, prev, _ in leased:
        assert prev == "queued"
        assert (job.status, job.worker_id, job.attempts, job.lease_until, job.last_heartbeat) \
            == ("leased", "w1", 1, t + 30.0, t)
    with store.read() as tx:
        stored = tx.get_job(leased[0][0].queue_id)
        assert stored is not None
        assert (stored.status, stored.worker_id, stored.attempts, stored.lease_until) == (
            "leased", "w1", 1, t + 30.0)
        assert tx.queue_size() == 1 and tx.queue_size("leased") == 3 and tx.queue_size(None) == 4
    with store.transaction() as tx:
        rest = tx.lease_jobs("w2", 30.0, 5, t)
        assert [(j.priority, p) for j, p, _ in rest] == [(10, "queued")]
        assert tx.lease_jobs("w2", 30.0, 5, t) == []


def test_lease_skips_future_waiting_and_child_jobs(store: Store) -> None:
    eid = _exec(store)
    t = now()
    later = make_job(eid, "later", available_at=t + 60)
    with store.transaction() as tx:
        tx.add_jobs([later, make_job(eid, "w", status=JobStatus.WAITING, available_at=t - 1),
                     make_job(eid, "c", status=JobStatus.CHILD, available_at=t - 1),
                     make_job(eid, "d", status=JobStatus.DONE, available_at=t - 1)])
        assert tx.lease_jobs("w1", 10.0, 10, t) == []
        assert tx.next_available_at() == t + 60
    with store.transaction() as tx:
        got = tx.lease_jobs("w1", 10.0, 10, t + 61)
    assert [(j.step, p) for j, p, _ in got] == [("later", "queued")]
    with store.read() as tx:
        assert tx.next_available_at() == t + 61 + 10.0  # now the lease expiry is next


def test_expired_lease_is_leased_again(store: Store) -> None:
    eid = _exec(store)
    t = now()
    job = make_job(eid, "s", available_at=t - 1)
    with store.transaction() as tx:
        tx.add_jobs([job])
        [(first, prev, _)] = tx.lease_jobs("w1", 5.0, 1, t)
        assert prev == "queued" and first.attempts == 1
        assert tx.lease_jobs("w2", 5.0, 1, t + 4.9) == []  # still held
    with store.transaction() as tx:
        [(again, prev2, _)] = tx.lease_jobs("w2", 5.0, 1, t + 5.5)
    assert again.queue_id == job.queue_id and prev2 == "leased"
    assert (again.attempts, again.worker_id, again.lease_until) == (2, "w2", t + 10.5)
    with store.read() as tx:
        assert tx.list_jobs(worker_id="w2")[0].attempts == 2
        assert tx.list_jobs(worker_id="w1") == []


def test_release_waiting_lowest_index_first(store: Store) -> None:
    eid = _exec(store)
    idx = list(range(6))
    random.Random(7).shuffle(idx)
    items = [make_job(eid, "loop", kind="item", index=i, status=JobStatus.WAITING, run=1)
             for i in idx]
    other_run = make_job(eid, "loop", kind="item", index=0, status=JobStatus.WAITING, run=2)
    with store.transaction() as tx:
        tx.add_jobs([*items, other_run])
        assert tx.release_waiting(eid, "loop", 1, 0) == []
        first = tx.release_waiting(eid, "loop", 1, 2)
        assert [j.index for j in first] == [0, 1] and all(j.status == "queued" for j in first)
        second = tx.release_waiting(eid, "loop", 1, 10)
        assert [j.index for j in second] == [2, 3, 4, 5]
        assert tx.release_waiting(eid, "loop", 1, 1) == []
    with store.read() as tx:
        assert tx.queue_size("queued") == 6 and tx.queue_size("waiting") == 1
        j = tx.get_job(first[0].queue_id)
        assert j is not None and j.status == "queued" and j.available_at == first[0].available_at


def test_cancel_jobs_and_step_jobs(store: Store) -> None:
    eid, other = _exec(store), _exec(store)
    t = now()
    by_status = {s: make_job(eid, "a", status=s, available_at=t - 1)
                 for s in ("queued", "waiting", "child", "done", "dead")}
    with store.transaction() as tx:
        tx.add_jobs([*by_status.values(), make_job(other, "a", available_at=t - 1)])
        [(leased, _, _)] = tx.lease_jobs("w", 30.0, 1, t)
    assert leased.queue_id == by_status["queued"].queue_id
    with store.transaction() as tx:
        cancelled = tx.cancel_jobs(eid)
    assert {j.queue_id for j in cancelled} == {by_status[s].queue_id
                                               for s in ("queued", "waiting", "child")}
    with store.read() as tx:
        st = {j.queue_id: j for j in tx.list_jobs(execution_id=eid)}
        assert [st[by_status[s].queue_id].status for s in ("queued", "waiting", "child", "done",
                                                           "dead")] == [
            "cancelled", "cancelled", "cancelled", "done", "dead"]
        assert st[leased.queue_id].lease_until is None
        assert [j.status for j in tx.list_jobs(execution_id=other)] == ["queued"]
        assert tx.cancel_jobs(eid) == []
    # one run of one step: only queued/waiting jobs are cancelled
    e2 = _exec(store)
    q1 = make_job(e2, "s", run=1, priority=99)
    w1 = make_job(e2, "s", run=1, status=JobStatus.WAITING)
    q2, o1 = make_job(e2, "s", run=2), make_job(e2, "t", run=1)
    with store.transaction() as tx:
        tx.add_jobs([q1, w1, q2, o1])
        [(l1, _, _)] = tx.lease_jobs("w", 30.0, 1, now() + 1)
        assert l1.queue_id == q1.queue_id
        q1b = make_job(e2, "s", run=1)
        tx.add_jobs([q1b])
        tx.cancel_step_jobs(e2, "s", 1)
    with store.read() as tx:
        got = {j.queue_id: j.status for j in tx.list_jobs(execution_id=e2)}
    assert got == {q1.queue_id: "leased", w1.queue_id: "cancelled", q1b.queue_id: "cancelled",
                   q2.queue_id: "queued", o1.queue_id: "queued"}


def test_item_results_in_index_order(store: Store) -> None:
    eid = _exec(store)
    order = [3, 0, 2, 1]
    items = [make_job(eid, "loop", kind="item", index=i, run=1) for i in order]
    with store.transaction() as tx:
        tx.add_jobs([*items, make_job(eid, "loop", kind="step", run=1),
                     make_job(eid, "loop", kind="item", index=0, run=2)])
        for j in items:
            j.status, j.result = JobStatus.DONE, {"i": j.index}
            tx.update_job(j)
        items[0].result = None  # an item without a result keeps its place
        tx.update_job(items[0])
    with store.read() as tx:
        assert tx.item_results(eid, "loop", 1) == [{"i": 0}, {"i": 1}, {"i": 2}, None]
        assert tx.item_results(eid, "loop", 3) == []


def test_list_jobs_filters_and_sizes(store: Store) -> None:
    e1, e2 = _exec(store), _exec(store)
    jobs = [make_job(e1, "a"), make_job(e1, "b", status=JobStatus.WAITING), make_job(e2, "c")]
    with store.read() as tx:
        assert tx.next_available_at() is None and tx.list_jobs() == []
        assert tx.queue_size() == 0
    with store.transaction() as tx:
        tx.add_jobs(jobs)
        tx.lease_jobs("wx", 60.0, 1, now() + 1)
    with store.read() as tx:
        assert [j.queue_id for j in tx.list_jobs()] == sorted(j.queue_id for j in jobs)
        assert len(tx.list_jobs(limit=2)) == 2
        assert [j.step for j in tx.list_jobs(execution_id=e1)] == ["a", "b"]
        assert [j.step for j in tx.list_jobs(status="waiting")] == ["b"]
        assert len(tx.list_jobs(worker_id="wx")) == 1
        assert tx.list_jobs(status="queued", execution_id=e2, worker_id="wx") == []
        assert tx.queue_size() == 1 and tx.queue_size(None) == 3


def test_concurrent_leases_never_share_a_job(store: Store) -> None:
    """N threads lease from M jobs at once; each job goes to exactly one of them."""
    eid = _exec(store)
    m, n = 120, 6
    t = now() - 1
    with store.transaction() as tx:
        tx.add_jobs([make_job(eid, f"s{i}", available_at=t, priority=i % 3) for i in range(m)])
    got: list[list[int]] = [[] for _ in range(n)]
    errors: list[BaseException] = []
    barrier = threading.Barrier(n)

    def lease(k: int) -> None:
        try:
            barrier.wait()
            while True:
                with store.transaction() as tx:
                    batch = tx.lease_jobs(f"w{k}", 60.0, 3, now())
                if not batch:
                    with store.read() as tx:
                        if tx.queue_size() == 0:
                            return
                    continue
                got[k].extend(j.queue_id for j, prev, _ in batch if prev == "queued")
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=lease, args=(k,)) for k in range(n)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    assert not errors, errors
    flat = [q for g in got for q in g]
    assert len(flat) == m and len(set(flat)) == m
    with store.read() as tx:
        leased = tx.list_jobs(status="leased", limit=1000)
    assert len(leased) == m and all(j.attempts == 1 for j in leased)
    # every thread's record agrees with the row: the worker that got it holds it
    owner = {q: f"w{k}" for k, g in enumerate(got) for q in g}
    assert all(owner[j.queue_id] == j.worker_id for j in leased)


def test_a_lease_names_the_worker_whose_lease_ran_out(store: Store) -> None:
    """``lost_worker``: for a job re-leased after its lease expired, the worker that held it
    (None for a ready job), whether or not the leasing transaction holds event locks (the
    report-and-lease path, which PostgreSQL leases differently)."""
    eid = _exec(store)
    t = now()
    with store.transaction() as tx:
        tx.add_jobs([make_job(eid, "a", priority=90, available_at=t - 1)])
        tx.lease_jobs("w-lost", 1.0, 1, t)
        tx.add_jobs([make_job(eid, "b", priority=10, available_at=t - 1)])
    with store.transaction() as tx:
        tx.lock_events({eid})
        got = tx.lease_jobs("w2", 30.0, 5, t + 2)
    assert [(j.step, p, lost, j.worker_id) for j, p, lost in got] == [
        ("a", "leased", "w-lost", "w2"), ("b", "queued", None, "w2")]
    with store.transaction() as tx:  # w2 lost both
        got = tx.lease_jobs("w3", 30.0, 5, t + 40)
    assert sorted((j.step, p, lost) for j, p, lost in got) == [("a", "leased", "w2"),
                                                                ("b", "leased", "w2")]
    assert got[0].lost_worker == "w2" and got[0].prev == "leased"


def test_expired_leases_go_before_ready_jobs(store: Store) -> None:
    eid = _exec(store)
    t = now()
    low = make_job(eid, "low", priority=10, available_at=t - 1)
    with store.transaction() as tx:
        tx.add_jobs([low])
        tx.lease_jobs("w1", 1.0, 1, t)
        tx.add_jobs([make_job(eid, "high", priority=90, available_at=t - 1)])
    with store.transaction() as tx:  # w1's lease of `low` has run out: it is recovered first
        [(job, prev, _)] = tx.lease_jobs("w2", 30.0, 1, t + 2)
        assert (job.step, prev, job.attempts) == ("low", "leased", 2)
        both = tx.lease_jobs("w3", 30.0, 5, t + 40)  # w2's lease has run out too
    assert [(j.step, p) for j, p, _ in both] == [("low", "leased"), ("high", "queued")]
