"""A plan rebuilt from what the store holds (another process, a worker that leases directly, a
resume or re-run) names a python step's failing line by the playbook file's line, as the plan
compiled from the file does: the stored snapshot keeps the file name and the code lines.

"Another process" here is this one with its plan caches emptied (the module-level caches are
all a process keeps of a plan); tests/distributed and tests/cli do it with real processes."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from noetl.dsl import parse_playbook
from noetl.engine import plans
from noetl.engine.core import Engine
from noetl.engine.resume import rerun, resume
from noetl.errors import PlaybookError
from noetl.local import LocalRunner
from noetl.plan import compiler
from noetl.store import open_store

RAISES = """\
apiVersion: noetl.io/v1
kind: Playbook
metadata: {name: stored_lines, path: tests/stored/lines}
workload: {divisor: 0}
workbook:
  - name: check
    type: python
    code: |
      def main(x):
          assert x < 2, f"item {x} is too big"
          return x
workflow:
  - step: start
    type: python
    args: {d: "{{ workload.divisor }}"}
    code: |
      def ratio(n, d):
          return n / d

      def main(d):
          return ratio(42, d)
    next: [loop]
  - step: loop
    type: iterator
    collection: [1, 2]
    element: x
    task:
      type: workbook
      name: check
      args: {x: "{{ x }}"}
"""

CHILD = """\
apiVersion: noetl.io/v1
kind: Playbook
metadata: {name: stored_child, path: tests/stored/child}
workflow:
  - step: start
    type: python
    code: |
      def main():
          raise ValueError("the child fails")
"""

PARENT = """\
apiVersion: noetl.io/v1
kind: Playbook
metadata: {name: stored_parent, path: tests/stored/parent}
workflow:
  - step: start
    type: playbook
    path: tests/stored/child
"""


def line_of(text: str, needle: str) -> int:
    lines = [i for i, line in enumerate(text.splitlines(), 1) if needle in line]
    assert len(lines) == 1, needle
    return lines[0]


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'noetl.db'}"
    else:
        yield request.getfixturevalue("pg_url")


def forget_plans() -> None:
    """As a process that never compiled these plans: nothing cached, rebuilt from the store."""
    with plans._by_execution.lock:
        plans._by_execution.items.clear()
    compiler._plan_cached.cache_clear()


def started_elsewhere(store_url: str, pb: object) -> int:
    """An execution started by an engine without workers, whose plans are then forgotten."""
    store = open_store(store_url)
    try:
        eid = Engine(store).start(pb).execution_id  # type: ignore[arg-type]
    finally:
        store.close()
    forget_plans()
    return eid


def test_rebuilt_plan_names_the_file_line(store_url: str, tmp_path: Path) -> None:
    f = tmp_path / "raises.yaml"
    f.write_text(RAISES)
    raised, called = line_of(RAISES, "return n / d"), line_of(RAISES, "return ratio(42, d)")
    eid = started_elsewhere(store_url, parse_playbook(RAISES, str(f)))
    with LocalRunner(store_url, concurrency=2) as runner:
        desc = runner.wait(eid, 60)
        assert desc["status"] == "FAILED"
        err = desc["steps"]["start"]["error"]
        assert err["at"] == f"{f}, line {raised}", err
        assert f'File "{f}", line {raised}, in ratio' in err["user_traceback"]
        assert f'File "{f}", line {called}, in main' in err["user_traceback"]
        assert "<step code" not in err["user_traceback"]
        # a re-run and a resume compile the old execution's snapshot again: the same lines
        for again in (rerun, resume):
            forget_plans()
            ex = again(runner.engine, eid)
            forget_plans()
            err = runner.wait(ex.execution_id, 60)["steps"]["start"]["error"]
            assert err["at"] == f"{f}, line {raised}", (again.__name__, err)
        # resumed with the fix (divisor 1): the loop's item 2 fails in its workbook task's code
        forget_plans()
        ex = resume(runner.engine, eid, {"divisor": 1})
        forget_plans()
        desc = runner.wait(ex.execution_id, 60)
        assert desc["steps"]["start"]["status"] == "COMPLETED", desc
        err = desc["steps"]["loop"]["error"]
        assert err["at"] == f"{f}, line {line_of(RAISES, 'assert x < 2')}", err


def test_catalog_sub_playbook_names_its_catalog_path_and_line(store_url: str) -> None:
    with LocalRunner(store_url, concurrency=2) as runner:
        runner.engine.register(CHILD)
        runner.engine.register(PARENT)
        eid = runner.engine.start(path="tests/stored/parent").execution_id
        desc = runner.wait(eid, 60)
        with runner.store.read() as tx:
            (child,), _ = tx.list_executions(parent_execution_id=eid)
        err = runner.engine.describe(child.execution_id)["steps"]["start"]["error"]
    assert desc["status"] == "FAILED"
    assert err["at"] == f"tests/stored/child, line {line_of(CHILD, 'raise ValueError')}", err


def test_a_snapshot_stored_without_lines_still_runs(tmp_path: Path) -> None:
    """A snapshot stored before it carried the lines: it compiles and runs, its traceback
    names the code by its hash, as before."""
    url = f"sqlite:///{tmp_path / 'noetl.db'}"
    pb = parse_playbook(RAISES, "raises.yaml")
    eid = started_elsewhere(url, pb)
    with sqlite3.connect(tmp_path / "noetl.db") as c:
        stored = json.loads(c.execute("SELECT playbook FROM execution WHERE execution_id = ?",
                                      (eid,)).fetchone()[0])
        assert stored[compiler.SNAPSHOT_KEY]["source"] == "raises.yaml"
        old = {k: v for k, v in stored.items() if k != compiler.SNAPSHOT_KEY}
        assert old == pb.raw
        c.execute("UPDATE execution SET playbook = ? WHERE execution_id = ?",
                  (json.dumps(old), eid))
    forget_plans()
    with LocalRunner(url, concurrency=2) as runner:
        desc = runner.wait(eid, 60)
    err = desc["steps"]["start"]["error"]
    assert desc["status"] == "FAILED" and err["type"] == "ZeroDivisionError"
    assert "at" not in err and "<step code" in err["user_traceback"]


SIMPLE = """\
apiVersion: noetl.io/v1
kind: Playbook
metadata: {name: stored_simple, path: tests/stored/simple}
workload: {n: 2}
workflow:
  - step: start
    type: python
    args: {n: "{{ workload.n }}"}
    code: |
      def main(n):
          return n * 21
"""


def test_runs_of_one_catalog_entry_share_its_plan(store_url: str) -> None:
    """A process plans a run of a catalog entry it has a plan of (it started a run of it, or
    planned one from its stored playbook) without reading the run's playbook: shown by a run
    whose stored playbook is replaced by one that does not compile, which a read would hit."""
    store = open_store(store_url)  # runs started elsewhere: another server process
    try:
        engine = Engine(store)
        engine.register(SIMPLE)
        eids = [engine.start(path="tests/stored/simple", args={"n": n}).execution_id
                for n in (1, 3)]
        with store.transaction() as tx:
            tx._x("UPDATE execution SET playbook = '{}' WHERE execution_id = :id",  # type: ignore[attr-defined]
                  {"id": eids[1]})
    finally:
        store.close()
    with plans._by_catalog.lock:  # this process knows neither the runs nor the entry's plan
        plans._by_catalog.items.clear()
    forget_plans()
    with LocalRunner(store_url, concurrency=2) as runner:
        runner.adopt(eids[0])
        assert runner.wait(eids[0], 60)["result"] == 21  # planned from its stored playbook
        runner.adopt(eids[1])
        assert runner.wait(eids[1], 60)["result"] == 63  # the same entry's plan: not read
        forget_plans()
        with plans._by_catalog.lock:
            plans._by_catalog.items.clear()
        with pytest.raises(PlaybookError, match="<stored plan>"):  # read now: no plan in it
            rerun(runner.engine, eids[1])
