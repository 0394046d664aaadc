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
