"""Store contract: leasing only the jobs of some executions and of the executions below them
(``lease_jobs(..., roots=...)``, what an embedded ``noetl run`` leases), on every backend."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from noetl.domain.records import now
from noetl.store import Store, open_store
from noetl.store.base import Leased
from tests.contract.rows import add_finished_executions, make_exec, make_job


def _tree(store: Store) -> dict[str, int]:
    """a ─ a1 ─ a11 (sub-playbook children), and b ─ b1 beside it."""
    ids: dict[str, int] = {}
    with store.transaction() as tx:
        for name, parent in (("a", None), ("a1", "a"), ("a11", "a1"), ("b", None),
                             ("b1", "b")):
            ex = make_exec(parent=ids[parent] if parent else None)
            tx.insert_execution(ex)
            ids[name] = ex.execution_id
    return ids


def _steps(got: list[Leased]) -> list[tuple[str, str]]:
    return [(j.step, prev) for j, prev, _ in got]


def test_lease_with_roots_takes_only_that_tree_in_the_usual_order(store: Store) -> None:
    ids = _tree(store)
    t = now()
    with store.transaction() as tx:  # one job of each, leased once by a worker now gone
        tx.add_jobs([make_job(ids[n], f"{n}-stale", available_at=t - 9) for n in ids])
        assert len(tx.lease_jobs("gone", 1.0, 10, t - 5)) == 5  # expired at t - 4
        tx.add_jobs([make_job(ids[n], f"{n}-p{p}", priority=p, available_at=t - 1)
                     for n in ids for p in (10, 90)])
        tx.add_jobs([make_job(ids["a"], "a-later", available_at=t + 60)])
    with store.transaction() as tx:
        mine = tx.lease_jobs("w", 30.0, 100, t, roots=[ids["a"]])
    # expired leases first (oldest expiry, then as the unfiltered lease orders them), then
    # ready jobs by priority and age; nothing of b's tree, nothing not yet due
    stale = sorted((j for j, p, _ in mine if p == "leased"), key=lambda j: j.queue_id)
    assert [j.step for j in stale] == ["a-stale", "a1-stale", "a11-stale"]
    assert _steps(mine)[3:] == [("a-p90", "queued"), ("a1-p90", "queued"), ("a11-p90", "queued"),
                                ("a-p10", "queued"), ("a1-p10", "queued"), ("a11-p10", "queued")]
    assert all(j.worker_id == "w" and j.lease_until == t + 30.0 for j, _, _ in mine)
    with store.transaction() as tx:
        assert tx.lease_jobs("w", 30.0, 100, t, roots=[ids["a"]]) == []
        assert tx.lease_jobs("w", 30.0, 100, t, roots=[]) == []
        # a subtree: only b1's jobs, not its parent's
        assert {s for s, _ in _steps(tx.lease_jobs("w", 30.0, 100, t, roots=[ids["b1"]]))} \
            == {"b1-stale", "b1-p90", "b1-p10"}
        rest = tx.lease_jobs("any", 30.0, 100, t)  # unfiltered: the rest, as before
    assert _steps(rest) == [("b-stale", "leased"), ("b-p90", "queued"), ("b-p10", "queued")]


def test_lease_with_several_roots_and_the_limit(store: Store) -> None:
    ids = _tree(store)
    t = now()
    with store.transaction() as tx:
        tx.add_jobs([make_job(ids[n], n, priority=p, available_at=t - 1)
                     for n, p in (("a11", 70), ("b1", 60), ("a", 50), ("b", 80))])
    with store.transaction() as tx:
        assert _steps(tx.lease_jobs("w", 30.0, 2, t, roots=[ids["b"], ids["a1"]])) == [
            ("b", "queued"), ("a11", "queued")]
        assert _steps(tx.lease_jobs("w", 30.0, 1, t, roots=[ids["b"], ids["a1"]])) == [
            ("b1", "queued")]
        assert _steps(tx.lease_jobs("w", 30.0, 5, t)) == [("a", "queued")]


def test_lease_with_roots_inside_a_transaction_holding_event_locks(store: Store) -> None:
    """The report-and-lease path (PostgreSQL leases differently once it holds event locks)."""
    ids = _tree(store)
    t = now()
    with store.transaction() as tx:
        tx.add_jobs([make_job(ids[n], n, available_at=t - 1) for n in ("b", "a1", "a")])
    with store.transaction() as tx:
        tx.lock_events({ids["a"]})
        got = tx.lease_jobs("w", 30.0, 5, t, roots=[ids["a"]])
    assert sorted(s for s, _ in _steps(got)) == ["a", "a1"]
    with store.read() as tx:
        assert [j.step for j in tx.list_jobs(status="queued")] == ["b"]


def test_concurrent_leases_with_roots_never_share_a_job(store: Store) -> None:
    ids = _tree(store)
    m, n = 60, 4
    t = now() - 1
    with store.transaction() as tx:
        tx.add_jobs([make_job(ids["a11" if i % 2 else "a"], f"s{i}", available_at=t)
                     for i in range(m)] + [make_job(ids["b"], "other", available_at=t)])
    got: list[list[int]] = [[] for _ in range(n)]
    errors: list[BaseException] = []
    barrier = threading.Barrier(n)

    def lease(k: int) -> None:
        try:
            barrier.wait()
            while True:
                with store.transaction() as tx:
                    batch = tx.lease_jobs(f"w{k}", 60.0, 3, now(), roots=[ids["a"]])
                if not batch:
                    with store.read() as tx:
                        if tx.queue_size() == 1:  # b's job is all that is left
                            return
                    continue
                got[k].extend(j.queue_id for j, _, _ in batch)
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
        assert [j.step for j in tx.list_jobs(status="queued")] == ["other"]


class _Spy:
    """A connection that records the statements it is given to execute."""

    def __init__(self, conn: Any, sent: list[tuple[str, Any]]):
        self._conn = conn
        self._sent = sent

    def execute(self, sql: Any, params: Any = None, **kw: Any) -> Any:
        self._sent.append((sql, params))
        return self._conn.execute(sql, params, **kw)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


@pytest.mark.postgres
def test_pg_the_tree_of_a_lease_with_roots_is_looked_up_by_index(fresh_pg_url: str) -> None:
    """Each level of the tree is found through ``parent_execution_id``'s index: joined,
    PostgreSQL hashed the whole execution table at every lease of ``noetl run`` on a
    database with history (21 ms at 21,500 executions)."""
    from noetl.store.pg_tx import PgTx

    store = open_store(fresh_pg_url)
    try:
        ids = _tree(store)
        with store.transaction() as tx:  # the history of a database in use
            add_finished_executions(tx)
        sent: list[tuple[str, Any]] = []
        with store.transaction() as tx:  # the lease statement, as lease_jobs sends it
            assert isinstance(tx, PgTx)
            tx.conn = _Spy(tx.conn, sent)
            assert tx.lease_jobs("w", 30.0, 10, now(), roots=[ids["a"]]) == []
        (sql, params), = [(q, p) for q, p in sent if "tree" in q]
        with store.read() as tx:
            assert isinstance(tx, PgTx)
            plan = "\n".join(r[0] for r in tx.conn.execute("EXPLAIN " + sql, params).fetchall())
        assert "Seq Scan on execution" not in plan, plan
        with store.transaction() as tx:  # and the lease with roots still takes that tree
            tx.add_jobs([make_job(ids[n], n, available_at=now() - 1) for n in ids])
        with store.transaction() as tx:
            mine = tx.lease_jobs("w", 30.0, 10, now(), roots=[ids["a"]])
        assert sorted(j.step for j, _, _ in mine) == ["a", "a1", "a11"]
    finally:
        store.close()
