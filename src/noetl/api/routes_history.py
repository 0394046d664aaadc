"""Day-two routes of one execution: its step logs (followable), its inputs and lineage, and
re-running or resuming it."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Query, Request

from noetl.api.deps import engine, parse_id
from noetl.api.schemas import RerunRequest
from noetl.errors import NotFound

router = APIRouter(prefix="/api/executions", tags=["executions"])


@router.get("/{execution_id}/logs", summary="Step logs: stdout, stderr, logging (followable)")
def get_logs(execution_id: str, request: Request, step: str | None = None,
             item: int | None = Query(None, ge=0, le=2**31 - 1,
                                      description="Loop item index"),
             since: int = Query(0, ge=0, le=2**62, description="Only records after this log_id"),
             limit: int = Query(1000, ge=1, le=10000),
             wait: float = Query(0, ge=0, le=30, description="Long-poll: wait up to this many "
                                                             "seconds for a new record")
             ) -> dict[str, Any]:
    """Records in order: `{execution_id, status, items:[{log_id, step, index, run, attempt,
    job_id, stream (stdout|stderr|log|noetl), level, logger, message, worker_id, time}],
    last_id, done}`. Pass `last_id` back as `since` for newer records. With `wait`, the call
    returns as soon as there is one (or the execution ends, or the time is up). `done`: the
    execution has ended and every record it has is in this answer or an earlier one (stop
    following)."""
    eng = engine(request)
    eid = parse_id(execution_id)
    deadline = time.monotonic() + wait
    while True:
        seen = eng.logs.version
        with eng.store.read() as tx:  # the status first: logs committed before it are seen
            ex = tx.get_execution(eid)
            if ex is None:
                raise NotFound(f"execution {eid} not found")
            items = tx.get_logs(eid, since, limit, step, item)
        left = deadline - time.monotonic()
        if items or ex.terminal or left <= 0 or _gone(request):
            break
        # followers re-check at least as often as the store asks (Capabilities)
        eng.logs.wait(seen, min(left, eng.store.capabilities.log_poll_seconds))
    return {"execution_id": str(eid), "status": str(ex.status), "items": items,
            "last_id": items[-1]["log_id"] if items else since,
            "done": ex.terminal and len(items) < limit}


def _gone(request: Request) -> bool:
    from noetl.api.routes_queue import _gone as gone

    return gone(request)


@router.get("/{execution_id}/lineage", summary="Inputs, and rerun/resume links both ways")
def get_lineage(execution_id: str, request: Request) -> dict[str, Any]:
    """`{execution_id, inputs:{args, merge, workload}, origin:{kind (rerun|resume),
    source_execution_id, source_status, overrides, reused:[step], created_at} | null,
    derived:[{execution_id, kind, status, overrides, reused, created_at}]}`: what it was
    started with, what it was made from, and the executions made from it."""
    from noetl.engine.resume import inputs_of

    eid = parse_id(execution_id)
    with engine(request).store.read() as tx:
        ex = tx.get_execution(eid)
        if ex is None:
            raise NotFound(f"execution {eid} not found")
        inputs = inputs_of(tx, ex)
        origin = tx.get_lineage(eid)
        if origin is not None:
            src = tx.get_execution(int(origin["source_execution_id"]))
            origin["source_status"] = None if src is None else str(src.status)
        derived = tx.derived_executions(eid)
    return {"execution_id": str(eid),
            "inputs": {k: inputs[k] for k in ("args", "merge", "workload")},
            "origin": origin, "derived": derived}


def _started(request: Request, kind: str, execution_id: str,
             body: RerunRequest | None) -> dict[str, Any]:
    from noetl.engine import resume as r

    fn = r.rerun if kind == "rerun" else r.resume
    body = body or RerunRequest()
    ex = fn(engine(request), parse_id(execution_id), body.args, body.merge)
    return {"execution_id": str(ex.execution_id), "kind": kind,
            "source_execution_id": str(parse_id(execution_id)), "path": ex.path,
            "version": ex.version, "status": str(ex.status), "start_time": ex.created_at}


@router.post("/{execution_id}/rerun", summary="Start the same playbook version with the same inputs")
def rerun(execution_id: str, request: Request,
          body: RerunRequest | None = None) -> dict[str, Any]:
    """Body (optional) `{args?, merge=false}`: overrides over the inputs the execution was
    started with (top-level keys replaced, or deep-merged with `merge`). → `{execution_id,
    kind:"rerun", source_execution_id, path, version, status, start_time}` of the new
    execution."""
    return _started(request, "rerun", execution_id, body)


@router.post("/{execution_id}/resume", summary="Run a failed/cancelled execution on from where it stopped")
def resume(execution_id: str, request: Request,
           body: RerunRequest | None = None) -> dict[str, Any]:
    """A new execution linked to this FAILED or CANCELLED one: the steps it completed are
    reused (recorded as `step_reused` events, not run again); the steps that failed or were
    cancelled run again, then what follows them. Body (optional) `{args?, merge=false}`:
    overrides over its workload. → as `rerun` (`kind:"resume"`); 409 when the execution is
    running or completed."""
    return _started(request, "resume", execution_id, body)
