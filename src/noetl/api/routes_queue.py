"""The work queue for remote workers: lease (long-poll), complete, fail, heartbeat, release,
and read-only views. Workers need no database access: the work package carries everything."""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from typing import Any

import anyio.from_thread
from fastapi import APIRouter, Query, Request, Response

from noetl.api import raw
from noetl.api.deps import engine, parse_id, state
from noetl.api.schemas import (
    HeartbeatRequest,
    LeaseRequest,
    Outcome,
    ReleaseRequest,
    ReportBatchRequest,
    ReportRequest,
)
from noetl.domain.lifecycle import EventType, JobStatus
from noetl.domain.records import now
from noetl.domain.wire import (
    HeartbeatResult,
    LeaseResult,
    LogRecord,
    ReportAnswer,
    ReportBatchAnswer,
    Work,
)
from noetl.domain.wire import Outcome as WireOutcome

router = APIRouter(prefix="/api/queue", tags=["queue"])

# The hot routes (lease, report, heartbeat: one or two calls per step) read and answer raw
# bytes (``api/raw.py``); their OpenAPI entries name the same models (``openapi_extra``) and
# the answers' schemas. ``api/hot.py`` dispatches them past FastAPI's router.
WORK_SCHEMA: dict[str, Any] = {
    "type": "object", "description": "A work package (noetl.domain.wire.Work).",
    "required": ["job_id", "execution_id", "step", "kind", "attempt", "action", "ctx"],
    "properties": {"job_id": {"type": "string"}, "execution_id": {"type": "string"},
                   "step": {"type": "string"}, "kind": {"type": "string"},
                   "attempt": {"type": "integer"}, "action": {"type": "object"},
                   "ctx": {"type": "object"}}}
REPORT_STATUS = {"type": "string", "enum": ["ok", "duplicate", "cancelled", "lease_lost",
                                            "not_found", "error"]}


JOBS = {"type": "array", "items": WORK_SCHEMA}


@router.post("/lease", summary="Lease ready jobs (long-poll up to wait_seconds)",
             **raw.doc(LeaseRequest, raw.answer_schema(["status", "jobs"],
                                          status={"type": "string", "enum": ["ok", "empty"]},
                                          jobs=JOBS)))
async def lease(request: Request) -> Response:
    """Body `{worker_id, limit=1, lease_seconds?, wait_seconds=0..30}`. → `{status:"ok",
    jobs:[work package]}` as soon as a job is ready, or `{status:"empty", jobs:[]}` after
    `wait_seconds`. A work package: `{job_id, execution_id, step, run, kind, index, attempt,
    lease_until, action, args, edge_args, save, timeout, ctx:{workload, execution_id, results,
    extra}, path}`."""
    _, body = await raw.body(request, LeaseRequest)
    loop = asyncio.get_running_loop()
    return raw.json(await raw.in_thread(request, lambda: _lease(body, request, loop)))


def _lease(body: LeaseRequest, request: Request, loop: asyncio.AbstractEventLoop) -> LeaseResult:
    st = state(request)
    eng = st.engine
    deadline = time.monotonic() + body.wait_seconds
    while True:
        seen = eng.store.work_version()
        works = eng.lease(body.worker_id, body.limit, body.lease_seconds)
        if works:
            st.metrics.leases.inc(len(works))
            _count_reruns(request, works)
            return {"status": "ok", "jobs": works}
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return {"status": "empty", "jobs": []}
        # re-check the queue at least as often as the store asks (Capabilities.poll_seconds);
        # wake-ups and the next due time (delayed retries, lease expiries) cut the wait short
        wait = min(remaining, eng.store.capabilities.poll_seconds)
        nxt = eng.next_wakeup()
        if nxt is not None:
            wait = min(wait, max(0.02, nxt - now() + 0.001))
        # A worker that hung up (crashed) while we wait must not be handed a job. The first
        # check also lets the server notice a closed connection during the wait.
        if _gone(request, loop):
            return {"status": "empty", "jobs": []}
        eng.store.wait_for_work(seen, wait)
        if _gone(request, loop):
            return {"status": "empty", "jobs": []}


def _gone(request: Request, loop: asyncio.AbstractEventLoop | None = None) -> bool:
    """Whether the client hung up, asked from a thread off ``loop`` (the request's event
    loop; without it, from one of anyio's worker threads, as a plain ``def`` route runs)."""
    try:
        if loop is None:
            return bool(anyio.from_thread.run(request.is_disconnected))
        asked = asyncio.run_coroutine_threadsafe(request.is_disconnected(), loop)
    except RuntimeError:  # no loop to ask (not one of its threads, or it closed): keep on
        return False
    try:
        return bool(asked.result(5))
    except (TimeoutError, concurrent.futures.CancelledError):  # no answer (a busy or
        asked.cancel()  # closing loop): keep on, and drop the question
        return False


def _count_reruns(request: Request, works: list[Work]) -> None:
    """Classify attempts > 1 as a retry or a re-run after a lease expiry (for metrics)."""
    st = state(request)
    reruns = [w for w in works if int(w.get("attempt") or 1) > 1]
    if not reruns:
        return
    with st.store.read() as tx:
        for w in reruns:
            evs = tx.get_events(int(w["execution_id"]), 0, 100000, EventType.ACTION_RETRY)
            reason = None
            for e in reversed(evs):
                ctx = e.context if isinstance(e.context, dict) else {}
                if e.node_name == w["step"] and e.current_index == w.get("index") and \
                        ctx.get("next_attempt") == w["attempt"]:
                    reason = ctx.get("reason")
                    break
            if reason == "lease_expired":
                st.metrics.lease_expiries.inc()
            else:
                st.metrics.retries.inc()


# what the report bodies carry besides the outcome (and, in a batch, the job id)
_NOT_OUTCOME = frozenset({"worker_id", "lease_next", "lease_seconds"})
_NOT_OUTCOME_BATCH = _NOT_OUTCOME | {"job_id"}


def _outcome(raw: dict[str, Any], checked: Outcome, status: str,
             exclude: frozenset[str] = _NOT_OUTCOME) -> WireOutcome:
    """The outcome in a checked report body: its keys but who reports it and what to lease,
    none that is null (as ``model_dump(exclude_none=True)`` gave), the checked fields as the
    model read them (a duration sent as text is a number)."""
    outcome: dict[str, Any] = {k: v for k, v in raw.items()
                               if v is not None and k not in exclude}
    for k in ("report_id", "duration"):
        if k in outcome:
            outcome[k] = getattr(checked, k)
    if outcome.get("status", status) != status:
        raise ValueError(f"outcome status {outcome['status']!r} sent to the "
                         f"{'complete' if status == 'ok' else 'fail'} route")
    outcome["status"] = status
    if status == "error" and not outcome.get("error"):
        outcome["error"] = {"message": "the worker reported a failure without an error",
                            "type": "WorkerError"}
    if status == "error" and isinstance(outcome["error"], str):
        outcome["error"] = {"message": outcome["error"], "type": "WorkerError"}
    return outcome  # type: ignore[return-value]  # the keys of an Outcome, checked above


def _report(job_id: str, raw: dict[str, Any], body: ReportRequest, request: Request,
            status: str) -> ReportAnswer:
    jid = parse_id(job_id, "job")
    outcome = _outcome(raw, body, status)
    st = state(request)
    works: list[Work]
    if body.lease_next and body.worker_id:
        res, works = st.engine.report_and_lease(jid, body.worker_id, outcome, body.lease_next,
                                                body.lease_seconds)
    else:
        res, works = st.engine.report(jid, body.worker_id, outcome), []
    st.metrics.observe_report(outcome, res)
    if works:
        st.metrics.leases.inc(len(works))
        _count_reruns(request, works)
    return {"status": res, "id": str(jid), "jobs": works}


@router.post("/report", summary="Report several outcomes (and lease) in one transaction",
             **raw.doc(ReportBatchRequest, raw.answer_schema(
                 ["status", "results", "jobs"], status={"type": "string", "enum": ["ok"]},
                 results={"type": "array", "items": raw.answer_schema(
                     ["status"], id={"type": "string"}, status=REPORT_STATUS,
                     error={"type": "string"})},
                 jobs=JOBS)))
async def report_batch(request: Request) -> Response:
    """Body `{worker_id, reports: [{job_id, status:"ok"|"error", data, error, envelope, meta,
    duration, report_id}], lease_next, lease_seconds}`. → `{status:"ok", results:[{id,
    status, error?}], jobs}`, one result per report in order: `ok`, `duplicate`,
    `cancelled`, `lease_lost` or `not_found` (never recorded: do not retry), or `error`
    (not recorded: retry it). Every report is recorded in one transaction unless one of
    them fails, then each in its own."""
    data, body = await raw.body(request, ReportBatchRequest)
    return raw.json(await raw.in_thread(request, lambda: _report_batch(data["reports"], body, request)))


def _report_batch(raws: list[dict[str, Any]], body: ReportBatchRequest,
                  request: Request) -> ReportBatchAnswer:
    items = [(int(str(r.job_id)), _outcome(raw, r, r.status, _NOT_OUTCOME_BATCH))
             for raw, r in zip(raws, body.reports, strict=True)]
    st = state(request)
    results, works = st.engine.report_batch(items, body.worker_id, body.lease_next,
                                            body.lease_seconds)
    for (jid, outcome), res in zip(items, results, strict=True):
        st.metrics.observe_report(outcome, res["status"])
        res["id"] = str(jid)
    if works:
        st.metrics.leases.inc(len(works))
        _count_reruns(request, works)
    return {"status": "ok", "results": results, "jobs": works}


REPORT_ANSWER = raw.answer_schema(["status", "id", "jobs"], status=REPORT_STATUS, id={"type": "string"},
                        jobs=JOBS)


@router.post("/{job_id}/complete", summary="Report a job's success",
             **raw.doc(ReportRequest, REPORT_ANSWER))
async def complete(job_id: str, request: Request) -> Response:
    """Body: the outcome of `run_work` (`{status:"ok", data, envelope, meta, duration}`) plus
    `worker_id` and `report_id`, and optionally `lease_next` (lease that many ready jobs for
    the worker in the same transaction). → `{status:"ok"|"duplicate"|"cancelled", id, jobs}`;
    a repeated `report_id` is acknowledged once (`duplicate`); 409 when the lease was lost."""
    data, body = await raw.body(request, ReportRequest)
    return raw.json(await raw.in_thread(request, lambda: _report(job_id, data, body, request, "ok")))


@router.post("/{job_id}/fail", summary="Report a job's failure",
             **raw.doc(ReportRequest, REPORT_ANSWER))
async def fail(job_id: str, request: Request) -> Response:
    """Body: `{status:"error", error:{message, type, traceback}, ...}` plus `worker_id` and
    `report_id`. The engine applies the step's retry policy. 409 when the lease was lost."""
    data, body = await raw.body(request, ReportRequest)
    return raw.json(await raw.in_thread(request, lambda: _report(job_id, data, body, request, "error")))


@router.post("/{job_id}/heartbeat", summary="Extend a job's lease",
             **raw.doc(HeartbeatRequest, raw.answer_schema(
                 ["status", "cancelled"], status={"type": "string", "enum": ["ok", "cancelled"]},
                 cancelled={"type": "boolean"}, lease_until={"type": ["number", "null"]})))
async def heartbeat(job_id: str, request: Request) -> Response:
    """→ `{status:"ok", cancelled:false, lease_until}`, or `{status:"cancelled",
    cancelled:true}` when the execution was cancelled (stop the job); 409 when the lease was
    lost."""
    _, body = await raw.body(request, HeartbeatRequest)
    logs: list[LogRecord] | None = body.logs  # the records as sent

    def go() -> HeartbeatResult:
        return engine(request).heartbeat(parse_id(job_id, "job"), body.worker_id,
                                         body.extend_seconds, logs)

    return raw.json(await raw.in_thread(request, go))


@router.post("/{job_id}/release", summary="Give a leased job back unrun")
def release(job_id: str, body: ReleaseRequest, request: Request) -> dict[str, Any]:
    jid = parse_id(job_id, "job")
    engine(request).release(jid, body.worker_id)
    return {"status": "ok", "id": str(jid)}


def _job_status(status: str | None) -> str | None:
    if status in (None, "", "all"):
        return None
    values = [str(s) for s in JobStatus]
    if status not in values:
        raise ValueError(f"unknown queue status {status!r} (one of {', '.join(values)}, all)")
    return status


@router.get("", summary="Queue rows (newest first)")
def list_queue(request: Request, status: str | None = None, execution_id: str | None = None,
               worker_id: str | None = None, limit: int = Query(100, ge=1, le=1000)
               ) -> dict[str, Any]:
    eid = parse_id(execution_id) if execution_id else None
    with engine(request).store.read() as tx:
        jobs = tx.list_jobs(_job_status(status), eid, worker_id, limit)
    return {"status": "ok", "items": [j.to_dict() for j in jobs]}


@router.get("/size", summary="Number of queue rows with a status")
def size(request: Request, status: str = "queued") -> dict[str, Any]:
    with engine(request).store.read() as tx:
        n = tx.queue_size(_job_status(status))
    return {"status": "ok", "count": n}
