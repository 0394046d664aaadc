"""Execution routes: start, list, describe, events (incremental), cancel, posted events."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Query, Request, Response

from noetl.api import raw
from noetl.api.deps import engine, parse_id
from noetl.api.schemas import EventIn, RunRequest
from noetl.domain.lifecycle import StepStatus
from noetl.domain.records import Event
from noetl.errors import Conflict, NoetlError, NotFound

router = APIRouter(prefix="/api", tags=["executions"])

# Event types the engine writes and derives state from; they cannot be posted from outside.
ENGINE_PREFIXES = ("execution_", "workflow_", "step_", "action_", "loop_", "iterator_",
                   "playbook_", "job_", "notification_")


def _iso(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.UTC).isoformat().replace("+00:00", "Z")


def parse_time(text: str | None) -> float | None:
    """Epoch seconds, or an ISO 8601 date/time (UTC unless it names a zone)."""
    if text is None or not text.strip():
        return None
    text = text.strip()
    try:
        value = float(text)
    except ValueError:
        pass
    else:
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(f"since must be a finite number, got {text!r}")
        return value
    try:
        t = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"since must be epoch seconds or an ISO 8601 time, got {text!r}") from None
    return (t if t.tzinfo else t.replace(tzinfo=dt.UTC)).timestamp()


def _start(body: RunRequest, request: Request) -> dict[str, Any]:
    if body.catalog_id is None and not body.path:
        raise ValueError("path or catalog_id is required")
    ex = engine(request).start(path=body.path, version=body.version,
                               catalog_id=int(body.catalog_id) if body.catalog_id else None,
                               args=body.args, merge=body.merge)
    d = ex.to_dict()
    return {"execution_id": d["execution_id"], "catalog_id": d["catalog_id"],
            "path": ex.path, "name": ex.path.rstrip("/").rsplit("/", 1)[-1],
            "version": ex.version, "type": "playbook", "status": d["status"],
            "timestamp": _iso(ex.created_at), "start_time": ex.created_at, "end_time": None,
            "progress": 0, "result": None, "error": None}


_TEXT = {"type": "string"}
RUN_ANSWER = raw.answer_schema(
    ["execution_id", "path", "version", "status"], execution_id=_TEXT,
    catalog_id={"type": ["string", "null"]}, path=_TEXT, name=_TEXT, version=_TEXT,
    type=_TEXT, status=_TEXT, timestamp=_TEXT, start_time={"type": "number"},
    end_time={"type": ["number", "null"]}, progress={"type": "integer"}, result={},
    error={})


@router.post("/run/playbook", summary="Start an execution of a registered playbook",
             **raw.doc(RunRequest, RUN_ANSWER))
async def run_playbook(request: Request) -> Response:
    """Body `{path | catalog_id, version="latest", args?, merge=false}`. `args` replace
    workload keys (deep-merged with `merge=true`). → `{execution_id, catalog_id, path, name,
    version, type:"playbook", status, timestamp (ISO), start_time (epoch), end_time, progress,
    result, error}`; 404 for an unknown playbook. A hot route (``api/hot.py``): every run of
    a playbook, by clients and schedules' callers, comes here."""
    _, body = await raw.body(request, RunRequest)
    return raw.json(await raw.in_thread(request, lambda: _start(body, request)))


@router.post("/run/{resource_type}", summary="Start an execution (resource_type: playbook)")
def run_resource(resource_type: str, body: RunRequest, request: Request) -> dict[str, Any]:
    if resource_type.lower() != "playbook":
        raise NotFound(f"cannot run resource type {resource_type!r} (only 'playbook')")
    return _start(body, request)


@router.get("/executions", summary="List executions, newest first")
def list_executions(request: Request, status: str | None = None, path: str | None = None,
                    parent_execution_id: str | None = None,
                    limit: int = Query(50, ge=1, le=1000),
                    offset: int = Query(0, ge=0, le=2**62),
                    since: str | None = None,
                    q: str | None = Query(None, max_length=200)) -> dict[str, Any]:
    """Filters: `status`, `path` (exact), `parent_execution_id`, `since` (started at or after:
    epoch seconds or ISO 8601), `q` (free text: a case-insensitive substring of the path or
    the error, or the start of the execution id). → `{items:[{execution_id, path, version,
    catalog_id, status, result, error, parent_execution_id, start_time, end_time, duration}],
    total, limit, offset, counts}` where `counts` is the number of executions per status
    (unfiltered)."""
    # the statuses the UI lists (a step's, which include every execution status)
    if status is not None and status.upper() not in StepStatus.__members__:
        raise ValueError(f"unknown status {status!r} (one of {', '.join(StepStatus.__members__)})")
    parent = None
    if parent_execution_id:
        if not parent_execution_id.isdigit() or int(parent_execution_id) >= 2**63:
            raise ValueError("parent_execution_id must be a decimal id")
        parent = int(parent_execution_id)
    with engine(request).store.read() as tx:
        rows, total = tx.list_executions(status=status, path=path, parent_execution_id=parent,
                                         limit=limit, offset=offset, since=parse_time(since),
                                         query=q.strip() if q else None)
        counts = tx.count_executions_by_status()
    return {"items": [r.to_dict() for r in rows], "total": total, "limit": limit,
            "offset": offset, "counts": counts}


@router.get("/executions/{execution_id}", summary="Status, result, error, steps, children")
def get_execution(execution_id: str, request: Request) -> dict[str, Any]:
    """The one status derivation (`Engine.describe`): `{execution_id, path, version,
    catalog_id, status, result, error, parent_execution_id, start_time, end_time, duration,
    steps:{name:{step, type, status, result, error, attempts, runs, ...}}, children:[...]}`."""
    return engine(request).describe(parse_id(execution_id))


@router.get("/executions/{execution_id}/events", summary="Events in order (incremental)")
def get_events(execution_id: str, request: Request, since_event_id: str | None = None,
               since_seq: int = Query(0, ge=0, le=2**62), limit: int = Query(1000, ge=1, le=10000)
               ) -> dict[str, Any]:
    """Events after `since_event_id` (an event id string) or after `since_seq`. →
    `{execution_id, items:[event], last_seq, last_event_id}`; pass `last_event_id` (or
    `last_seq`) back to get only newer events."""
    eid = parse_id(execution_id)
    with engine(request).store.read() as tx:
        if tx.get_execution(eid) is None:
            raise NotFound(f"execution {eid} not found")
        since = since_seq
        if since_event_id:
            seq = tx.event_seq(parse_id(since_event_id, "event"))
            if seq is None:
                raise NotFound(f"event {since_event_id} not found")
            since = max(since, seq)
        evs = tx.get_events(eid, since, limit)
    items = [e.to_dict() for e in evs]
    return {"execution_id": str(eid), "items": items,
            "last_seq": items[-1]["seq"] if items else since,
            "last_event_id": items[-1]["event_id"] if items else since_event_id}


@router.get("/executions/{execution_id}/steps/{step}/items",
            summary="A loop step's items, one page, in index order")
def step_items(execution_id: str, step: str, request: Request,
               offset: int = Query(0, ge=0, le=2**62), limit: int = Query(100, ge=1, le=500),
               status: str | None = None) -> dict[str, Any]:
    """The latest run of a loop step: `{execution_id, step, run, total, done, failed,
    counts:{status: n}, matching, offset, limit, items:[{index, status, attempts,
    max_attempts, started_at, ended_at, duration, item, result, error, retry_at, worker_id,
    child_execution_id}]}`; `status` (COMPLETED, FAILED, RUNNING, QUEUED, PENDING, CANCELLED)
    keeps only those items (`matching` counts them). A step that is not a loop, or has not
    started, has no items."""
    from noetl.engine.status import loop_items

    with engine(request).store.read() as tx:
        return loop_items(tx, parse_id(execution_id), step, offset, limit, status)


@router.post("/executions/{execution_id}/cancel", summary="Cancel an execution and its children")
def cancel(execution_id: str, request: Request) -> dict[str, Any]:
    """→ the execution (without steps) after cancelling; cancelling a finished execution
    changes nothing and returns its final status."""
    eng = engine(request)
    eid = parse_id(execution_id)
    eng.cancel(eid)
    return eng.describe(eid, with_steps=False)


@router.post("/events", summary="Post an informational event to an execution")
def post_event(body: EventIn, request: Request) -> dict[str, Any]:
    """Body `{execution_id, event_type, event_id?, status?, node_name?, node_type?, context?,
    result?, error?, meta?, worker_id?}`. Stored in the execution's event log; it does not drive
    orchestration, so engine event types (`execution_*`, `step_*`, `action_*`, ...) are
    refused with 422. Idempotent on `event_id`: a retried post is stored once and answered
    with `status:"duplicate"`."""
    if body.event_type.lower().startswith(ENGINE_PREFIXES):
        from fastapi import HTTPException

        raise HTTPException(422, f"event type {body.event_type!r} is written by the engine "
                                 "only (workers report through /api/queue/{id}/complete|fail)")
    from noetl.ids import new_id

    eid = int(body.execution_id)
    ev_id = int(body.event_id) if body.event_id else new_id()
    ev = Event(execution_id=eid, event_id=ev_id, event_type=body.event_type,
               status=body.status.upper(), node_name=body.node_name, node_type=body.node_type,
               parent_event_id=int(body.parent_event_id) if body.parent_event_id else None,
               context=body.context, result=body.result, error=body.error, meta=body.meta,
               worker_id=body.worker_id)
    store = engine(request).store
    out = {"event_id": str(ev_id), "execution_id": str(eid), "event_type": ev.event_type,
           "created_at": ev.created_at}
    try:
        with store.transaction() as tx:
            if tx.get_execution(eid) is None:
                raise NotFound(f"execution {eid} not found")
            if tx.has_event(ev_id):
                return {**out, "status": _duplicate(tx, eid, ev_id)}
            tx.add_events([ev])
    except NoetlError:
        raise
    except Exception:
        with store.read() as tx:  # a concurrent retry won the insert
            if tx.has_event(ev_id):
                return {**out, "status": _duplicate(tx, eid, ev_id)}
        raise
    return {**out, "status": "emitted"}


def _duplicate(tx: Any, execution_id: int, event_id: int) -> str:
    """A repeated post of one event is a duplicate; an id taken by another execution is not."""
    seq = tx.event_seq(event_id)
    same = tx.get_events(execution_id, seq - 1, 1) if seq else []
    if not same or same[0].event_id != event_id:
        raise Conflict(f"event id {event_id} is already used by another execution")
    return "duplicate"
