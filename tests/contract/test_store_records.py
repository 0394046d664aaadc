"""Store contract: catalog, executions, step state and the event log (every backend)."""

from __future__ import annotations

import datetime
import json
import math
from decimal import Decimal
from typing import Any

from noetl.domain.lifecycle import StepStatus
from noetl.domain.records import Event
from noetl.ids import new_id
from noetl.store import Store
from noetl.templates import dumps
from tests.contract.rows import make_exec, make_step

# -- catalog -------------------------------------------------------------------------------


def test_catalog_versions_count_per_path(store: Store) -> None:
    with store.transaction() as tx:
        a = [tx.register("flows/a", f"content {i}", {"n": i}) for i in range(3)]
        b = tx.register("flows/b", "b", {"n": "b"}, kind="Credential")
    assert [e.version for e in a] == [1, 2, 3]
    assert b.version == 1
    with store.read() as tx:
        latest = tx.get_catalog("flows/a")
        assert latest is not None
        assert (latest.version, latest.content, latest.payload) == (3, "content 2", {"n": 2})
        v2 = tx.get_catalog("flows/a", version=2)
        assert v2 is not None and v2.payload == {"n": 1} and v2.catalog_id == a[1].catalog_id
        by_id = tx.get_catalog(catalog_id=a[0].catalog_id)
        assert by_id is not None and (by_id.path, by_id.version) == ("flows/a", 1)
        assert by_id.meta["registered_at"] == a[0].meta["registered_at"]
        assert by_id.created_at == a[0].created_at
        assert tx.get_catalog("flows/a", version=9) is None
        assert tx.get_catalog("nope") is None
        assert tx.get_catalog(catalog_id=new_id()) is None
        assert [e.version for e in tx.catalog_versions("flows/a")] == [3, 2, 1]
        assert tx.catalog_versions("nope") == []


def test_catalog_list_filters(store: Store) -> None:
    with store.transaction() as tx:
        for i in range(2):
            tx.register("flows/alpha", f"a{i}", {})
        tx.register("flows/beta", "b", {})
        tx.register("secrets/50%_off", "c", {}, kind="Credential")
    with store.read() as tx:
        everything = tx.list_catalog()
        assert len(everything) == 4
        latest = tx.list_catalog(latest_only=True)
        assert sorted((e.path, e.version) for e in latest) == [
            ("flows/alpha", 2), ("flows/beta", 1), ("secrets/50%_off", 1)]
        assert {e.path for e in tx.list_catalog(kind="playbook")} == {"flows/alpha", "flows/beta"}
        assert [e.path for e in tx.list_catalog(kind="Credential")] == ["secrets/50%_off"]
        assert {(e.path, e.version) for e in tx.list_catalog(query="ALPHA")} == {
            ("flows/alpha", 1), ("flows/alpha", 2)}
        # a literal '%' in the query is a parameter, not SQL
        assert [e.path for e in tx.list_catalog(query="50%")] == ["secrets/50%_off"]
        assert tx.list_catalog(query="gamma") == []


# -- executions ----------------------------------------------------------------------------


def test_execution_insert_get_update(store: Store) -> None:
    ex = make_exec("flows/x", "PENDING")
    with store.transaction() as tx:
        tx.insert_execution(ex)
    with store.read() as tx:
        got = tx.get_execution(ex.execution_id)
        assert got is not None
        assert (got.path, got.version, got.status, got.workload, got.state) == (
            "flows/x", "1", "PENDING", {"x": 1, "s": "é"}, {"active": {}, "joins": []})
        assert got.created_at == ex.created_at and got.ended_at is None
        assert got.playbook == {}  # rows come without the snapshot ...
        assert tx.get_playbook(ex.execution_id) == {"metadata": {"path": "flows/x"}}  # ... here
        assert tx.get_execution(new_id()) is None and tx.get_playbook(new_id()) is None
    with store.transaction() as tx:
        locked = tx.get_execution(ex.execution_id, lock=True)
        assert locked is not None
        locked.status = "COMPLETED"
        locked.result = {"r": [1, 2.5, None]}
        locked.error = None
        locked.state = {"active": {"a": 1}, "joins": ["j"], "last": "end"}
        locked.ended_at = locked.created_at + 1.5
        tx.update_execution(locked)
    with store.read() as tx:
        got = tx.get_execution(ex.execution_id)
        assert got is not None and got.terminal
        assert (got.status, got.result, got.state, got.ended_at) == (
            "COMPLETED", {"r": [1, 2.5, None]}, {"active": {"a": 1}, "joins": ["j"], "last": "end"},
            ex.created_at + 1.5)
        assert got.updated_at >= ex.created_at


def test_execution_list_filters_pagination_counts_children(store: Store) -> None:
    rows = [make_exec("p/one" if i % 2 else "p/two", "COMPLETED" if i < 3 else "RUNNING")
            for i in range(7)]
    parent = rows[0]
    kids = [make_exec("p/child", "RUNNING", parent=parent.execution_id) for _ in range(2)]
    with store.transaction() as tx:
        for r in rows + kids:
            tx.insert_execution(r)
    ids_desc = sorted((r.execution_id for r in rows + kids), reverse=True)
    with store.read() as tx:
        page, total = tx.list_executions(limit=4)
        assert total == 9 and [r.execution_id for r in page] == ids_desc[:4]
        page2, total2 = tx.list_executions(limit=4, offset=4)
        assert total2 == 9 and [r.execution_id for r in page2] == ids_desc[4:8]
        # list rows are light: no playbook, workload or state
        assert page[0].playbook == {} and page[0].workload == {} and page[0].state == {}
        done, n_done = tx.list_executions(status="completed")
        assert n_done == 3 and {r.execution_id for r in done} == {r.execution_id for r in rows[:3]}
        two, n_two = tx.list_executions(path="p/two", limit=2)
        assert n_two == 4 and len(two) == 2 and all(r.path == "p/two" for r in two)
        both, n_both = tx.list_executions(status="RUNNING", path="p/one")
        assert n_both == 2 and all(r.path == "p/one" and r.status == "RUNNING" for r in both)
        ch, n_ch = tx.list_executions(parent_execution_id=parent.execution_id)
        assert n_ch == 2 and {r.execution_id for r in ch} == {k.execution_id for k in kids}
        assert tx.list_executions(status="FAILED") == ([], 0)
        assert tx.count_executions_by_status() == {"COMPLETED": 3, "RUNNING": 6}
        children = tx.children(parent.execution_id)
        assert [c.execution_id for c in children] == sorted(k.execution_id for k in kids)
        assert all(c.parent_execution_id == parent.execution_id for c in children)
        assert tx.children(kids[0].execution_id) == []


# -- step state ----------------------------------------------------------------------------


def test_steps_upsert_subset_and_results(store: Store) -> None:
    ex = make_exec()
    with store.transaction() as tx:
        tx.insert_execution(ex)
        tx.save_steps([
            make_step(ex.execution_id, "a", status="COMPLETED", result={"v": 1}, has_result=True,
                      attempts=1, runs=1, started_at=1.0, ended_at=2.5),
            make_step(ex.execution_id, "b", status="RUNNING", active=2,
                      loop={"run": 1, "total": 3, "done": 0}, arrivals=[{"x": 1}],
                      input={"in": "é"}),
            make_step(ex.execution_id, "c", status="COMPLETED", result=None, has_result=True),
        ])
        tx.save_steps([])
    with store.read() as tx:
        all_rows = tx.get_steps(ex.execution_id)
        assert set(all_rows) == {"a", "b", "c"}
        a, b = all_rows["a"], all_rows["b"]
        assert (a.status, a.result, a.has_result, a.attempts, a.runs, a.started_at, a.ended_at) \
            == ("COMPLETED", {"v": 1}, True, 1, 1, 1.0, 2.5)
        assert (b.active, b.loop, b.arrivals, b.input, b.has_result) == (
            2, {"run": 1, "total": 3, "done": 0}, [{"x": 1}], {"in": "é"}, False)
        assert set(tx.get_steps(ex.execution_id, ["a", "zz"])) == {"a"}
        assert tx.get_steps(ex.execution_id, []) == {}
        # only steps that produced a result; a null result counts as a result
        assert tx.step_results(ex.execution_id, ["a", "b", "c", "zz"]) == {"a": {"v": 1},
                                                                          "c": None}
    with store.transaction() as tx:
        b.status, b.result, b.has_result, b.active, b.loop = "COMPLETED", [1], True, 0, None
        tx.save_steps([b])
        tx.mark_step_running(ex.execution_id, "a")  # only QUEUED steps become RUNNING
    with store.read() as tx:
        got = tx.get_steps(ex.execution_id, ["a", "b"])
        assert got["b"].status == "COMPLETED" and got["b"].result == [1] and got["b"].loop is None
        assert got["a"].status == "COMPLETED"
    with store.transaction() as tx:
        tx.save_steps([make_step(ex.execution_id, "q", status="QUEUED")])
        tx.mark_step_running(ex.execution_id, "q")
    with store.read() as tx:
        assert tx.get_steps(ex.execution_id, ["q"])["q"].status == "RUNNING"


def test_stored_json_reads_back_as_the_stdlib_writes_it(store: Store) -> None:
    """The stored JSON (orjson where it agrees with the stdlib, the stdlib where it refuses
    or writes null) reads back as ``json.loads(dumps(value))``: NaN and infinities stay
    themselves (never null), a long integer an integer, a number key a string."""
    values: list[Any] = [
        {"n": math.nan, "i": math.inf, "m": -math.inf}, [math.nan, None], {"x": None},
        10**30, {1: "one", 2.5: "x", False: "f", None: "n"}, 1e-05, 0.1, 1e16, -0.0, 2**64 - 1,
        {"t": datetime.datetime(2024, 1, 2, 3, 4, 5), "d": Decimal("1.5"), "s": {1},
         "tu": (1, "a"), "st": StepStatus.RUNNING, "u": "é\n\u2028\x1f\"\\"},
        {"deep": [[[{"a": [1.5, "b", False]}]]]}, "text", [], {},
    ]
    ex = make_exec()
    with store.transaction() as tx:
        tx.insert_execution(ex)
        tx.save_steps([make_step(ex.execution_id, f"s{i}", result=v, has_result=True)
                       for i, v in enumerate(values)])
    with store.read() as tx:
        rows = tx.get_steps(ex.execution_id)
    for i, v in enumerate(values):
        assert repr(rows[f"s{i}"].result) == repr(json.loads(dumps(v))), v


# -- events --------------------------------------------------------------------------------


def _ev(eid: int, event_type: str, node: str | None = None, **kw: object) -> Event:
    return Event(execution_id=eid, event_id=new_id(), event_type=event_type, status="RUNNING",
                 node_name=node, **kw)  # type: ignore[arg-type]


def test_events_order_since_type_and_lookup(store: Store) -> None:
    ex, other = make_exec(), make_exec()
    evs = [_ev(ex.execution_id, "execution_started"),
           _ev(ex.execution_id, "action_started", "a", attempt=1, worker_id="w",
               context={"k": [1]}),
           _ev(ex.execution_id, "action_completed", "a", result={"data": {"v": "é"}},
               duration=0.25, meta={"m": 1}),
           _ev(ex.execution_id, "action_started", "b", current_index=3),
           _ev(ex.execution_id, "action_failed", "b", error="boom", error_type="ValueError",
               stack_trace="Traceback ...\n")]
    with store.transaction() as tx:
        tx.add_events(evs[:2])
        tx.add_events([_ev(other.execution_id, "execution_started")])
        tx.add_events(evs[2:])
        tx.add_events([])
    with store.read() as tx:
        got = tx.get_events(ex.execution_id)
        assert [e.event_id for e in got] == [e.event_id for e in evs]
        seqs = [e.seq for e in got]
        assert all(isinstance(s, int) for s in seqs) and seqs == sorted(set(seqs))  # type: ignore
        g = got[1]
        assert (g.event_type, g.node_name, g.attempt, g.worker_id, g.context, g.status) == (
            "action_started", "a", 1, "w", {"k": [1]}, "RUNNING")
        assert (got[2].result, got[2].duration, got[2].meta) == ({"data": {"v": "é"}}, 0.25,
                                                                 {"m": 1})
        assert got[3].current_index == 3
        assert (got[4].error, got[4].error_type, got[4].stack_trace) == (
            "boom", "ValueError", "Traceback ...\n")
        assert got[0].created_at == evs[0].created_at
        since = tx.get_events(ex.execution_id, since_seq=seqs[1])
        assert [e.event_id for e in since] == [e.event_id for e in evs[2:]]
        assert len(tx.get_events(ex.execution_id, limit=2)) == 2
        started = tx.get_events(ex.execution_id, event_type="action_started")
        assert [e.node_name for e in started] == ["a", "b"]
        assert [e.event_type for e in tx.get_events(other.execution_id)] == ["execution_started"]
        assert tx.event_seq(evs[3].event_id) == seqs[3]
        assert tx.has_event(evs[0].event_id) and not tx.has_event(new_id())
        assert tx.event_seq(new_id()) is None


def test_rollback_discards_everything(store: Store) -> None:
    ex = make_exec()
    try:
        with store.transaction() as tx:
            tx.insert_execution(ex)
            tx.add_events([_ev(ex.execution_id, "execution_started")])
            raise RuntimeError("abort")
    except RuntimeError:
        pass
    with store.read() as tx:
        assert tx.get_execution(ex.execution_id) is None
        assert tx.get_events(ex.execution_id) == []


def test_concurrent_registrations_get_distinct_versions(store: Store) -> None:
    import threading

    n = 8
    versions: list[int] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(n)

    def register(i: int) -> None:
        try:
            barrier.wait()
            with store.transaction() as tx:
                versions.append(tx.register("race/path", f"c{i}", {"i": i}).version)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=register, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors
    assert sorted(versions) == list(range(1, n + 1))
    with store.read() as tx:
        assert [e.version for e in tx.catalog_versions("race/path")] == list(range(n, 0, -1))


def test_execution_list_since_and_free_text(store: Store) -> None:
    old = make_exec("etl/Daily_Sales", "COMPLETED", created_at=1000.0)
    new = make_exec("etl/weekly", "FAILED", created_at=2000.0,
                    error={"type": "ValueError", "message": "Bad ROW 7"})
    odd = make_exec("x/100%_done", "RUNNING", created_at=3000.0)
    with store.transaction() as tx:
        for r in (old, new, odd):
            tx.insert_execution(r)
    with store.read() as tx:
        def ids(**kw: object) -> set[int]:
            rows, total = tx.list_executions(**kw)  # type: ignore[arg-type]
            assert total == len(rows)
            return {r.execution_id for r in rows}

        assert ids(since=2000.0) == {new.execution_id, odd.execution_id}
        assert ids(since=3000.5) == set()
        assert ids(query="sales") == {old.execution_id}  # substring, any case
        assert ids(query="ETL/") == {old.execution_id, new.execution_id}
        assert ids(query="bad row") == {new.execution_id}  # the error text
        assert ids(query=str(odd.execution_id)[:12]) >= {odd.execution_id}  # id prefix
        assert ids(query="100%") == {odd.execution_id}  # % and _ are literal
        assert ids(query="%_d") == {odd.execution_id}
        assert ids(query="%") == {odd.execution_id}
        assert ids(query="a_l") == set()  # "_" is no wildcard (it would match "ail")
        assert ids(query="sales", since=1500.0) == set()
        assert ids(query="etl", status="failed") == {new.execution_id}
