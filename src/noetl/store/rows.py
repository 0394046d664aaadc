"""How rows travel between Python and SQL, for both backends: JSON as text (``jd``/``jl``),
the column lists, and the readers and parameter builders of executions, steps, events and
jobs. Below :mod:`noetl.store.sql` and the SQL mixins, which all import it."""

from __future__ import annotations

from typing import Any

import orjson

from noetl.domain.lifecycle import ExecutionStatus, JobKind, JobStatus, StepStatus
from noetl.domain.records import Event, ExecutionRow, Job, StepRow
from noetl.templates import ORJSON_OPTS, dumps, json_default, loadb


def jd(value: Any) -> str | None:
    """Stored JSON text, read back by :func:`jl` as the value :func:`noetl.templates.dumps`
    writes (orjson, some 7 times faster, where it agrees: its text differs only in the
    spelling of some floats, ``0.00001`` for ``1e-05``). :func:`dumps` writes it when orjson
    refuses the value (see :func:`noetl.templates.dumpb`), and when it wrote a ``null`` that
    may be a NaN or an infinity (which :func:`dumps` keeps): one that does not read back as
    the value (a NaN or infinity read back as None makes it unequal)."""
    if value is None:
        return None
    try:
        raw = orjson.dumps(value, default=json_default, option=ORJSON_OPTS)
    except TypeError:  # orjson.JSONEncodeError
        return dumps(value)
    if b"null" in raw and not _reads_back(raw, value):
        return dumps(value)
    return raw.decode()


def _reads_back(raw: bytes, value: Any) -> bool:
    try:
        return bool(orjson.loads(raw) == value)
    except Exception:  # a value that cannot be compared
        return False


def jl(text: Any) -> Any:
    """A stored JSON text's value, exactly as ``json.loads`` reads it (:func:`loadb`)."""
    if text is None:
        return None
    if isinstance(text, str | bytes):
        return loadb(text)
    return text


# stored strings to members (a dict lookup: the Enum call is slower on every row read)
_EXEC_STATUS = {str(s): s for s in ExecutionStatus}
_STEP_STATUS = {str(s): s for s in StepStatus}
_JOB_STATUS = {str(s): s for s in JobStatus}
_JOB_KIND = {str(k): k for k in JobKind}

EXEC_COLS = ("execution_id, catalog_id, path, version, status, playbook, workload, "
             "parent_execution_id, parent_job_id, result, error, state, created_at, ended_at, "
             "updated_at")
EXEC_SELECT = ("execution_id, catalog_id, path, version, status, NULL AS playbook, workload, "
               "parent_execution_id, parent_job_id, result, error, state, created_at, ended_at, "
               "updated_at")
EXEC_LIGHT = ("execution_id, catalog_id, path, version, status, NULL AS playbook, '{}' AS workload, "
              "parent_execution_id, parent_job_id, result, error, '{}' AS state, created_at, "
              "ended_at, updated_at")
STEP_COLS = ("execution_id, step, status, result, error, attempts, runs, active, started_at, "
             "ended_at, loop, arrivals, input, has_result")
EVENT_COLS = ("seq, event_id, execution_id, parent_event_id, event_type, status, node_name, "
              "node_type, context, result, error, error_type, stack_trace, meta, attempt, "
              "current_index, duration, worker_id, created_at")
JOB_COLS = ("queue_id, execution_id, step, run, kind, idx, payload, status, priority, attempts, "
            "max_attempts, available_at, lease_until, worker_id, last_heartbeat, result, "
            "created_at, updated_at")
# the execution's and the job's columns in a join of ``execution e`` and ``queue q``
E_COLS = ", ".join(c.strip() if " AS " in c else "e." + c.strip() for c in EXEC_SELECT.split(","))
Q_COLS = ", ".join("q." + c.strip() for c in JOB_COLS.split(","))
N_EXEC = len(EXEC_SELECT.split(","))


def _exec(r: Any) -> ExecutionRow:
    return ExecutionRow(
        execution_id=int(r[0]), catalog_id=r[1], path=r[2], version=r[3],
        status=_EXEC_STATUS[r[4]],
        playbook=jl(r[5]) if r[5] else {}, workload=jl(r[6]) or {},
        parent_execution_id=r[7], parent_job_id=r[8], result=jl(r[9]), error=jl(r[10]),
        state=jl(r[11]) or {}, created_at=r[12], ended_at=r[13], updated_at=r[14])


def _step(r: Any) -> StepRow:
    return StepRow(
        execution_id=int(r[0]), step=r[1], status=_STEP_STATUS[r[2]], result=jl(r[3]),
        error=jl(r[4]),
        attempts=r[5], runs=r[6], active=r[7], started_at=r[8], ended_at=r[9], loop=jl(r[10]),
        arrivals=jl(r[11]), input=jl(r[12]), has_result=bool(r[13]))


def _event(r: Any) -> Event:
    return Event(
        seq=r[0], event_id=int(r[1]), execution_id=int(r[2]), parent_event_id=r[3],
        event_type=r[4], status=r[5], node_name=r[6], node_type=r[7], context=jl(r[8]),
        result=jl(r[9]), error=r[10], error_type=r[11], stack_trace=r[12], meta=jl(r[13]),
        attempt=r[14], current_index=r[15], duration=r[16], worker_id=r[17], created_at=r[18])


def _job(r: Any) -> Job:
    return Job(
        queue_id=int(r[0]), execution_id=int(r[1]), step=r[2], run=r[3], kind=_JOB_KIND[r[4]],
        index=r[5], payload=jl(r[6]) or {}, status=_JOB_STATUS[r[7]], priority=r[8],
        attempts=r[9], max_attempts=r[10],
        available_at=r[11], lease_until=r[12], worker_id=r[13], last_heartbeat=r[14],
        result=jl(r[15]), created_at=r[16], updated_at=r[17])


def _job_params(j: Job) -> dict[str, Any]:
    return {
        "queue_id": j.queue_id, "execution_id": j.execution_id, "step": j.step, "run": j.run,
        "kind": str(j.kind), "idx": j.index, "payload": jd(j.payload), "status": str(j.status),
        "priority": j.priority, "attempts": j.attempts, "max_attempts": j.max_attempts,
        "available_at": j.available_at, "lease_until": j.lease_until, "worker_id": j.worker_id,
        "last_heartbeat": j.last_heartbeat, "result": jd(j.result), "created_at": j.created_at,
        "updated_at": j.updated_at,
    }


def _step_params(s: StepRow) -> dict[str, Any]:
    return {
        "execution_id": s.execution_id, "step": s.step, "status": str(s.status),
        "result": jd(s.result), "error": jd(s.error), "attempts": s.attempts, "runs": s.runs,
        "active": s.active, "started_at": s.started_at, "ended_at": s.ended_at,
        "loop": jd(s.loop), "arrivals": jd(s.arrivals), "input": jd(s.input),
        "has_result": 1 if s.has_result else 0,
    }


def _event_params(e: Event) -> dict[str, Any]:
    return {
        "event_id": e.event_id, "execution_id": e.execution_id,
        "parent_event_id": e.parent_event_id, "event_type": str(e.event_type), "status": e.status,
        "node_name": e.node_name, "node_type": e.node_type, "context": jd(e.context),
        "result": jd(e.result), "error": e.error, "error_type": e.error_type,
        "stack_trace": e.stack_trace, "meta": jd(e.meta), "attempt": e.attempt,
        "current_index": e.current_index, "duration": e.duration, "worker_id": e.worker_id,
        "created_at": e.created_at,
    }
