"""Schedules, webhooks, and what an execution was started by and told: ``/api/schedules``,
``/api/hooks`` and ``POST /api/hooks/{name}`` (exempt from the API token: each hook checks
its own secret), ``/api/executions/{id}/trigger`` and ``/notifications``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import ConfigDict, Field

from noetl.api.deps import engine, parse_id, state
from noetl.api.schemas import _Body
from noetl.domain.lifecycle import EventType
from noetl.errors import NoetlError, NotFound
from noetl.triggers import manage

router = APIRouter(prefix="/api", tags=["triggers"])


class ScheduleIn(_Body):
    model_config = ConfigDict(extra="forbid")  # a misspelt key is an error, not ignored
    path: str = Field(..., min_length=1, max_length=1024)
    version: str | int | None = None
    cron: str | None = None
    interval: str | float | None = None
    timezone: str | None = None
    args: dict[str, Any] | None = None
    enabled: bool = True
    catchup: str = "skip"
    overlap: str = "skip"
    name: str | None = Field(None, max_length=256)


class HookIn(_Body):
    model_config = ConfigDict(extra="forbid")
    path: str = Field(..., min_length=1, max_length=1024)
    version: str | int | None = None
    auth: str = "hmac"
    secret: str | None = Field(None, min_length=8, max_length=4096)
    credential: str | None = Field(None, max_length=256)
    args: dict[str, Any] | None = None
    delivery_header: str | None = Field(None, max_length=128)
    enabled: bool = True


def _wake(request: Request) -> None:
    t = getattr(state(request), "triggers", None)
    if t is not None:
        t.wake()


def _spec(body: _Body) -> dict[str, Any]:
    return {k: v for k, v in body.model_dump().items() if v is not None}


# -- schedules --------------------------------------------------------------------------------
@router.get("/schedules", summary="Schedules, with their next fire times")
def list_schedules(request: Request, path: str | None = None,
                   n: int = Query(3, ge=0, le=100)) -> dict[str, Any]:
    """→ `{items:[{schedule_id, path, version, source, cron, interval, timezone, args,
    enabled, catchup, overlap, next_run_at, next_fires, last_run_at, last_status,
    last_execution_id, last_execution_status}]}`."""
    return {"items": manage.list_schedules(engine(request), path, n)}


@router.post("/schedules", summary="Add a schedule (source: api)")
def add_schedule(body: ScheduleIn, request: Request) -> dict[str, Any]:
    """Body `{path, version?, cron | interval, timezone?, args?, enabled?, catchup?,
    overlap?, name?}` → the schedule. 404 for an unknown playbook, 400 for a bad spec."""
    out = manage.add_schedule(engine(request), _spec(body))
    _wake(request)
    return out


@router.get("/schedules/{schedule_id}", summary="One schedule")
def get_schedule(schedule_id: str, request: Request,
                 n: int = Query(5, ge=0, le=100)) -> dict[str, Any]:
    return manage.get_schedule(engine(request), schedule_id, n)


@router.post("/schedules/{schedule_id}/pause", summary="Pause a schedule")
def pause_schedule(schedule_id: str, request: Request) -> dict[str, Any]:
    out = manage.set_enabled(engine(request), schedule_id, False)
    _wake(request)
    return out


@router.post("/schedules/{schedule_id}/resume", summary="Resume a schedule (next fire from now)")
def resume_schedule(schedule_id: str, request: Request) -> dict[str, Any]:
    out = manage.set_enabled(engine(request), schedule_id, True)
    _wake(request)
    return out


@router.delete("/schedules/{schedule_id}", summary="Delete a schedule")
def delete_schedule(schedule_id: str, request: Request) -> dict[str, Any]:
    manage.delete_schedule(engine(request), schedule_id)
    _wake(request)
    return {"status": "ok", "schedule_id": schedule_id}


@router.get("/schedules/{schedule_id}/runs", summary="A schedule's fires, newest first")
def schedule_runs(schedule_id: str, request: Request, limit: int = Query(100, ge=1, le=10000),
                  before: float | None = None) -> dict[str, Any]:
    """→ `{schedule_id, items:[{nominal_at, fired_at, outcome (started | caught_up | skipped |
    missed | error), execution_id, status, lag, detail}]}`."""
    return {"schedule_id": schedule_id,
            "items": manage.schedule_runs(engine(request), schedule_id, limit, before)}


# -- hooks ------------------------------------------------------------------------------------
@router.get("/hooks", summary="Webhooks")
def list_hooks(request: Request, path: str | None = None) -> dict[str, Any]:
    return {"items": manage.list_hooks(engine(request), path)}


@router.put("/hooks/{name}", summary="Create or replace a webhook (source: api)")
def put_hook(name: str, body: HookIn, request: Request) -> dict[str, Any]:
    """Body `{path, version?, auth: hmac|bearer, secret | credential, args?,
    delivery_header?, enabled?}`. A `secret` is stored in the credential store as
    `hook.<name>` (encrypted); `credential` names an existing one whose data holds `secret`."""
    return manage.put_hook(engine(request), name, _spec(body))


@router.get("/hooks/{name}", summary="One webhook")
def get_hook(name: str, request: Request) -> dict[str, Any]:
    return manage.get_hook(engine(request), name)


@router.delete("/hooks/{name}", summary="Delete a webhook")
def delete_hook(name: str, request: Request) -> dict[str, Any]:
    manage.delete_hook(engine(request), name)
    return {"status": "ok", "name": name}


@router.post("/hooks/{name}", summary="Trigger a webhook (its own secret, not the API token)")
async def trigger_hook(name: str, request: Request) -> JSONResponse:
    """Starts the hook's playbook with the JSON body (or the hook's args mapping over
    `body`/`headers`) → 202 `{execution_id, hook, delivery_id, duplicate}`; a replayed
    delivery id → 200 with the first execution and `duplicate: true`. Unknown or disabled
    hook → 404; missing or wrong signature/token → 401; nothing starts."""
    from starlette.concurrency import run_in_threadpool

    body = await request.body()
    headers = {k.lower(): v for k, v in request.headers.items()}
    eid, duplicate, delivery = await run_in_threadpool(_trigger, request, name, body, headers)
    return JSONResponse({"execution_id": str(eid), "hook": name, "delivery_id": delivery,
                         "duplicate": duplicate}, status_code=200 if duplicate else 202)


def _trigger(request: Request, name: str, body: bytes,
             headers: dict[str, str]) -> tuple[int, bool, str | None]:
    from noetl.credentials import get_credential
    from noetl.triggers.hooks import delivery_id, hook_args, secret_of, trigger, verify

    eng = engine(request)
    with eng.store.read() as tx:
        hook = tx.get_hook(name)
    if hook is None or not hook.enabled:
        raise NotFound(f"hook '{name}' not found" + (" (disabled)" if hook else ""))
    try:
        cred = get_credential(eng.store, hook.credential)
    except NotFound:
        raise NoetlError(f"hook '{name}': its credential '{hook.credential}' does not exist "
                         "(nothing started)") from None
    verify(hook, secret_of(cred["data"], name), headers, body)
    delivery = delivery_id(hook, headers)
    args = hook_args(hook, body, headers)
    eid, duplicate = trigger(eng, hook, args, delivery)
    return eid, duplicate, delivery


# -- what started an execution, who was told ----------------------------------------------------
@router.get("/executions/{execution_id}/trigger", summary="What started an execution")
def execution_trigger(execution_id: str, request: Request) -> dict[str, Any]:
    """→ `{execution_id, trigger}`: `{kind: schedule, schedule_id, nominal_at, outcome}`,
    `{kind: hook, hook, delivery_id}`, or null (started by a request or the CLI); read from
    the execution's `execution_started` event, where the trigger is recorded."""
    eid = parse_id(execution_id)
    with engine(request).store.read() as tx:
        if tx.get_execution(eid) is None:
            raise NotFound(f"execution {execution_id} not found")
        first = tx.get_events(eid, 0, 1, EventType.EXECUTION_STARTED)
    ctx = first[0].context if first else None
    return {"execution_id": str(eid),
            "trigger": ctx.get("trigger") if isinstance(ctx, dict) else None}


@router.get("/executions/{execution_id}/notifications", summary="Notifications of an execution")
def execution_notifications(execution_id: str, request: Request) -> dict[str, Any]:
    eid = parse_id(execution_id)
    with engine(request).store.read() as tx:
        if tx.get_execution(eid) is None:
            raise NotFound(f"execution {execution_id} not found")
        return {"execution_id": str(eid),
                "items": [n.to_dict() for n in tx.notifications(eid)]}
