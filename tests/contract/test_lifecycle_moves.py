"""Every status change a store makes is a move of the lifecycle tables
(:mod:`noetl.domain.lifecycle`), on every backend.

The store's own status-changing statements (leasing, releasing waiting loop items, cancelling,
marking a step running) run here on rows in every status; each row that changed must have
made a move its table holds. A store cannot declare an illegal move (``SqlMove`` checks it),
and no store writes a status by a literal ``SET status`` outside those declarations."""

from __future__ import annotations

import ast
import itertools
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from noetl.domain.lifecycle import (
    JOB_MOVES,
    STEP_MOVES,
    WORKER_MOVES,
    IllegalMove,
    JobStatus,
    StepStatus,
    WorkerStatus,
    leasable,
)
from noetl.domain.records import Job, now
from noetl.store import Store, Tx
from noetl.store.moves import STORE_MOVES, SqlMove
from tests.contract.rows import make_exec, make_job, make_step

STORE_SRC = Path(__file__).resolve().parents[2] / "src" / "noetl" / "store"


def _jobs_in_every_status(eid: int, t: float) -> list[Job]:
    """Two jobs per status of one loop run (``s``, run 1): one due / lease run out, one not."""
    jobs = []
    for st in JobStatus:
        for due in (True, False):
            j = make_job(eid, "s", status=st, kind="item", index=len(jobs),
                         available_at=t - 1 if due else t + 60)
            if st == JobStatus.LEASED:
                j.worker_id, j.attempts = "w0", 1
                j.lease_until = t - 1 if due else t + 60
            jobs.append(j)
    return jobs


def _state(tx: Tx, eid: int) -> dict[int, tuple[str, int]]:
    return {j.queue_id: (str(j.status), j.attempts)
            for j in tx.list_jobs(execution_id=eid, limit=1000)}


def _moves(before: dict[int, tuple[str, int]], after: dict[int, tuple[str, int]]
           ) -> list[tuple[str, str]]:
    """(from, to) of each row that changed; a new attempt in the same status counts."""
    return [(before[k][0], after[k][0]) for k in before if after[k] != before[k]]


OPERATIONS: dict[str, Callable[[Tx, int, float], object]] = {
    "lease": lambda tx, eid, t: tx.lease_jobs("w1", 30.0, 100, t),
    "release_waiting": lambda tx, eid, t: tx.release_waiting(eid, "s", 1, 100),
    "cancel_step_jobs": lambda tx, eid, t: tx.cancel_step_jobs(eid, "s", 1),
    "cancel_jobs": lambda tx, eid, t: tx.cancel_jobs(eid),
}


def _seed(store: Store) -> tuple[int, float, list[Job]]:
    ex = make_exec()
    t = now()
    jobs = _jobs_in_every_status(ex.execution_id, t)
    with store.transaction() as tx:
        tx.insert_execution(ex)
        tx.add_jobs(jobs)
    return ex.execution_id, t, jobs


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
def test_store_job_moves_are_in_the_table(store: Store, operation: str) -> None:
    eid, t, _ = _seed(store)
    with store.transaction() as tx:
        before = _state(tx, eid)
        OPERATIONS[operation](tx, eid, t)
        after = _state(tx, eid)
    moves = _moves(before, after)
    assert moves, f"{operation} changed no row: the test would prove nothing"
    illegal = [(a, b) for a, b in moves if JobStatus(b) not in JOB_MOVES[JobStatus(a)]]
    assert not illegal, f"{operation} made moves the job table lacks: {illegal}"


def test_store_leases_exactly_the_leasable_jobs(store: Store) -> None:
    """The lease query and :func:`leasable` agree, at any time (the clock is a parameter)."""
    _, t, jobs = _seed(store)
    for at in (t - 120, t, t + 120):  # nothing due yet; the due ones; all of them
        picked: set[int] = set()
        with pytest.raises(_Rollback), store.transaction() as tx:
            picked = {j.queue_id for j, _, _ in tx.lease_jobs("w1", 30.0, 100, at)}
            raise _Rollback  # leave the rows as they were for the next time
        assert picked == {j.queue_id for j in jobs if leasable(j, at)}, at
    assert any(leasable(j, t) for j in jobs) and not any(leasable(j, t - 120) for j in jobs)


class _Rollback(Exception):
    pass


def test_mark_step_running_moves_only_queued_steps(store: Store) -> None:
    ex = make_exec()
    stored = [s for s in StepStatus if s != StepStatus.SKIPPED]
    with store.transaction() as tx:
        tx.insert_execution(ex)
        tx.save_steps(make_step(ex.execution_id, f"s_{s}", status=s) for s in stored)
    with store.transaction() as tx:
        before = {n: str(r.status) for n, r in tx.get_steps(ex.execution_id).items()}
        for s in stored:
            tx.mark_step_running(ex.execution_id, f"s_{s}")
        after = {n: str(r.status) for n, r in tx.get_steps(ex.execution_id).items()}
    moves = [(before[n], after[n]) for n in before if after[n] != before[n]]
    assert moves == [("QUEUED", "RUNNING")]
    assert all(StepStatus(b) in STEP_MOVES[StepStatus(a)] for a, b in moves)


def test_a_store_cannot_declare_a_move_the_table_lacks() -> None:
    assert STORE_MOVES, "the stores declare their SQL moves"
    with pytest.raises(IllegalMove, match="done → queued"):
        SqlMove((JobStatus.DONE,), JobStatus.QUEUED)
    with pytest.raises(IllegalMove, match="CANCELLED → RUNNING"):
        SqlMove((StepStatus.CANCELLED,), StepStatus.RUNNING)
    assert all(m.to != JobStatus.QUEUED or m.sources != (JobStatus.DONE,) for m in STORE_MOVES)


def test_worker_registry_moves_are_in_the_table(store: Store) -> None:
    info = {"worker_id": "w-moves", "session": "s1", "mode": "remote", "hostname": "h",
            "pid": 1, "concurrency": 2, "lease_seconds": 5.0}

    def status() -> str | None:
        with store.read() as tx:
            rows = [w for w in tx.list_workers() if w["worker_id"] == "w-moves"]
        return rows[0]["status"] if rows else None

    seen: list[str | None] = [status()]
    for step in ("beat", "beat", "stop", "stop", "beat"):
        with store.transaction() as tx:
            if step == "beat":
                tx.worker_beat(info, now())
            else:
                assert tx.worker_stopped("w-moves", now())  # the row is there: it counts
        seen.append(status())
    assert seen == [None, "running", "running", "stopped", "stopped", "running"]
    assert all(WorkerStatus(b) in WORKER_MOVES[WorkerStatus(a)]
               for a, b in itertools.pairwise(seen[1:]))


def _sql_texts(path: Path) -> list[str]:
    """The string literals of a module, an f-string's fields shown as ``{}``."""
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            out.append(node.value)
        elif isinstance(node, ast.JoinedStr):
            out.append("".join(v.value if isinstance(v, ast.Constant) else "{}"
                               for v in node.values))
    return out


def test_no_store_writes_a_status_outside_its_declared_moves() -> None:
    """A status the store's SQL sets is a declared ``SqlMove`` (``SET {MOVE.set}``) or the
    row's own status, which the engine moved (``SET status = :status``); never a literal."""
    set_clause = re.compile(r"\bSET\b(.*?)(?:\bWHERE\b|\bFROM\b|\bRETURNING\b|$)", re.S | re.I)
    literal = re.compile(r"\bstatus\s*=\s*'", re.I)
    found = [f"{p.name}: {text[:60]!r}" for p in sorted(STORE_SRC.glob("*.py"))
             for text in _sql_texts(p)
             if any(literal.search(m.group(1)) for m in set_clause.finditer(text))]
    assert not found, f"literal status writes: {found}"
    assert any("SET {}" in t for t in _sql_texts(STORE_SRC / "sql.py"))  # the scan sees them
