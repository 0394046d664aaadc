"""The lifecycle tables and move(), pure: no store, no engine, the clock a parameter."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

from noetl.domain.lifecycle import (
    EXECUTION_ENDED,
    EXECUTION_MOVES,
    JOB_MOVES,
    JOB_NEW,
    JOB_UNFINISHED,
    NOTIFICATION_MOVES,
    STEP_MOVES,
    WORKER_MOVES,
    ExecutionStatus,
    IllegalMove,
    JobStatus,
    NotificationStatus,
    StepStatus,
    WorkerStatus,
    allowed,
    leasable,
    move,
    table,
)
from noetl.domain.records import ExecutionRow, Job, StepRow
from tests.helpers import FakeClock

SRC = Path(__file__).resolve().parents[2] / "src" / "noetl"


def _reachable(moves: dict, start: set) -> set:
    seen, todo = set(start), list(start)
    while todo:
        for nxt in moves[todo.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


@pytest.mark.parametrize("kind", [ExecutionStatus, StepStatus, JobStatus, NotificationStatus,
                                  WorkerStatus])
def test_every_status_has_a_row(kind: type) -> None:
    assert set(table(kind)) == set(kind)
    assert all(to in set(kind) for tos in table(kind).values() for to in tos)


def test_ended_things_do_not_move() -> None:
    for st in EXECUTION_ENDED:
        assert not EXECUTION_MOVES[st]
    for st in set(JobStatus) - JOB_UNFINISHED:
        assert not JOB_MOVES[st], st
    assert not STEP_MOVES[StepStatus.CANCELLED] and not STEP_MOVES[StepStatus.SKIPPED]


def test_every_status_is_reachable_from_the_start() -> None:
    assert _reachable(dict(EXECUTION_MOVES), {ExecutionStatus.PENDING}) == set(ExecutionStatus)
    # SKIPPED is never stored (describe shows it for a step that never ran)
    assert _reachable(dict(STEP_MOVES), {StepStatus.PENDING}) == set(StepStatus) - {
        StepStatus.SKIPPED}
    assert _reachable(dict(JOB_MOVES), set(JOB_NEW)) == set(JobStatus)
    assert _reachable(dict(NOTIFICATION_MOVES), {NotificationStatus.PENDING}) == set(
        NotificationStatus)
    assert _reachable(dict(WORKER_MOVES), {WorkerStatus.RUNNING}) == set(WorkerStatus)
    for st in (NotificationStatus.DELIVERED, NotificationStatus.FAILED):
        assert not NOTIFICATION_MOVES[st]  # a notification sent or given up stays so


def test_every_unfinished_job_can_be_cancelled_and_every_run_can_end() -> None:
    for st in JOB_UNFINISHED:
        assert JobStatus.CANCELLED in JOB_MOVES[st]
    for st in (StepStatus.QUEUED, StepStatus.RUNNING):
        assert {StepStatus.COMPLETED, StepStatus.FAILED, StepStatus.CANCELLED} <= STEP_MOVES[st]


def test_move_sets_a_legal_status_and_refuses_an_illegal_one() -> None:
    job = Job(queue_id=7, execution_id=1, step="s", run=1)
    move(job, JobStatus.LEASED)
    assert job.status == JobStatus.LEASED
    move(job, JobStatus.LEASED)  # its lease expired: leased again
    move(job, JobStatus.DONE)
    with pytest.raises(IllegalMove, match=r"Job 7: done → queued"):
        move(job, JobStatus.QUEUED)
    assert job.status == JobStatus.DONE  # unchanged

    row = StepRow(execution_id=1, step="a")
    with pytest.raises(IllegalMove, match="StepRow a: PENDING → RUNNING"):
        move(row, StepStatus.RUNNING)
    move(row, StepStatus.QUEUED)
    move(row, StepStatus.RUNNING)
    move(row, StepStatus.QUEUED)  # activated again while the first run runs
    move(row, StepStatus.CANCELLED)
    with pytest.raises(IllegalMove):
        move(row, StepStatus.QUEUED)

    ex = ExecutionRow(execution_id=3, path="p", version=None, status=ExecutionStatus.PENDING,
                      playbook={}, workload={})
    with pytest.raises(IllegalMove, match="PENDING → COMPLETED"):
        move(ex, ExecutionStatus.COMPLETED)
    move(ex, ExecutionStatus.RUNNING)
    move(ex, ExecutionStatus.CANCELLED)
    assert ex.terminal


def test_allowed_reads_stored_strings() -> None:
    assert allowed("queued", JobStatus.LEASED)
    assert not allowed("dead", JobStatus.QUEUED)
    assert not allowed("no-such-status", JobStatus.QUEUED)
    assert allowed("RUNNING", ExecutionStatus.FAILED)


@dataclass
class _J:
    status: JobStatus
    available_at: float = 0.0
    lease_until: float | None = None


def test_leasable_follows_the_clock() -> None:
    clock = FakeClock()
    delayed = _J(JobStatus.QUEUED, available_at=clock() + 10)  # a retry 10 s from now
    held = _J(JobStatus.LEASED, lease_until=clock() + 5)
    waiting = _J(JobStatus.WAITING, available_at=clock() - 1)
    assert not leasable(delayed, clock()) and not leasable(held, clock())
    clock.advance(5)
    assert not leasable(held, clock())  # lease_until itself: still held
    clock.advance(0.001)
    assert leasable(held, clock()) and not leasable(delayed, clock())
    clock.advance(5)
    assert leasable(delayed, clock())  # due at last
    assert not leasable(waiting, clock())
    for st in (JobStatus.CHILD, JobStatus.DONE, JobStatus.DEAD, JobStatus.CANCELLED):
        assert not leasable(_J(st, available_at=0, lease_until=0), clock())


def _status_assignments(path: Path) -> list[str]:
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        targets = node.targets if isinstance(node, ast.Assign) else \
            [node.target] if isinstance(node, ast.AnnAssign | ast.AugAssign) else []
        for t in targets:
            if isinstance(t, ast.Attribute) and t.attr == "status":
                out.append(f"{path.relative_to(SRC)}:{node.lineno} {ast.unparse(t)}")
    return out


# `status` attributes that are not a row's lifecycle status
NOT_A_ROW = {
    "worker/combine.py": {"s.status", "self.status"},  # a report's answer (ok, lease_lost, ...)
    "engine/reports.py": {"self.status"},  # _Refused: why a report was refused
}


def test_every_status_change_goes_through_move() -> None:
    """No module assigns a row's ``.status`` but lifecycle.move()."""
    found = []
    for p in sorted(SRC.rglob("*.py")):
        rel = str(p.relative_to(SRC))
        if rel == "domain/lifecycle.py":
            continue
        found += [a for a in _status_assignments(p)
                  if a.split(" ", 1)[1] not in NOT_A_ROW.get(rel, set())]
    assert not found, f"status set without move(): {found}"
    assert _status_assignments(SRC / "domain" / "lifecycle.py")  # the scan does see them


def test_jobs_are_created_in_a_new_status() -> None:
    """``Job(..., status=X)`` in the source: X is one of JOB_NEW."""
    used: set[str] = set()
    for p in sorted(SRC.rglob("*.py")):
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Job":
                for kw in node.keywords:
                    if kw.arg == "status":
                        used |= {a.attr for a in ast.walk(kw.value) if isinstance(a, ast.Attribute)}
    assert used, "the scan finds the job constructors"
    assert {getattr(JobStatus, n) for n in used} <= JOB_NEW
