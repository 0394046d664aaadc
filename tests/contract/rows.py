"""Row builders for the store contract tests."""

from __future__ import annotations

from typing import Any

from noetl.domain.lifecycle import JobStatus
from noetl.domain.records import ExecutionRow, Job, StepRow, now
from noetl.ids import new_id


def make_exec(path: str = "a/b", status: str = "RUNNING", parent: int | None = None,
              **kw: Any) -> ExecutionRow:
    return ExecutionRow(execution_id=new_id(), path=path, version="1", status=status,
                        playbook={"metadata": {"path": path}}, workload={"x": 1, "s": "é"},
                        parent_execution_id=parent, state={"active": {}, "joins": []}, **kw)


def make_job(execution_id: int, step: str = "s", *, status: str = JobStatus.QUEUED,
             priority: int = 50, available_at: float | None = None, run: int = 1,
             kind: str = "step", index: int | None = None, **kw: Any) -> Job:
    return Job(queue_id=new_id(), execution_id=execution_id, step=step, run=run, kind=kind,
               index=index, payload={"p": step}, status=status, priority=priority,
               available_at=now() if available_at is None else available_at, **kw)


def make_step(execution_id: int, name: str, **kw: Any) -> StepRow:
    return StepRow(execution_id=execution_id, step=name, **kw)


def add_finished_executions(tx: Any, n: int = 20000) -> None:
    """``n`` finished executions (ids 1..n, below any the engine draws) in a PostgreSQL
    transaction: a table of the size a server soon has, for tests that explain a statement
    over it (with no statistics, as autovacuum is off in CI)."""
    tx.conn.execute("INSERT INTO execution (execution_id, path, status, playbook, workload, "
                    "state, created_at, updated_at) SELECT g, 'p', 'COMPLETED', '{}', '{}', "
                    "'{}', 0, 0 FROM generate_series(1, %s) AS g", (n,))
