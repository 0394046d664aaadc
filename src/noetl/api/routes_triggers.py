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
from noetl.engine.records import now
from noetl.errors import NoetlError, NotFound

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


class _Problems:
    def __init__(self) -> None:
        self.messages: list[str] = []

    def error(self, where: str, message: str, line: int | None) -> None:
        self.messages.append(f"{where}: {message}")

    warn = error


def _checked(check: Any, item: dict[str, Any], what: str) -> None:
    p = _Problems()
    check(p, [item], None)
    if p.messages:
        raise ValueError("; ".join(m.replace(f"{what}[0]", what, 1) for m in p.messages))


def _version(v: str | int | None) -> str | None:
    if v in (None, "", "latest"):
        return None
    if not str(v).isdigit():
        raise ValueError(f"version must be 'latest' or an integer, got {v!r}")
    return str(int(str(v)))


def _need_playbook(tx: Any, path: str, version: str | None) -> None:
    if tx.get_catalog(path=path, version=None if version is None else int(version)) is None:
        raise NotFound(f"playbook '{path}'" + (f" version {version}" if version else "")
                       + " not found")


def _wake(request: Request) -> None:
    t = getattr(state(request), "triggers", None)
    if t is not None:
        t.wake()


# -- schedules --------------------------------------------------------------------------------
@router.get("/schedules", summary="Schedules, with their next fire times")
def list_schedules(request: Request, path: str | None = None,
                   n: int = Query(3, ge=0, le=100)) -> dict[str, Any]:
    """→ `{items:[{schedule_id, path, version, source, cron, interval, timezone, args,
    enabled, catchup, overlap, next_run_at, next_fires, last_run_at, last_status,
    last_execution_id, last_execution_status}]}`."""
    from noetl.triggers.schedules import describe_schedule

    with engine(request).store.read() as tx:
        items = []
        for row in tx.list_schedules(path=path):
            d = describe_schedule(row, n)
            ex = tx.get_execution(row.last_execution_id) if row.last_execution_id else None
            d["last_execution_status"] = str(ex.status) if ex else None
            items.append(d)
    return {"items": items}


@router.post("/schedules", summary="Add a schedule (source: api)")
def add_schedule(body: ScheduleIn, request: Request) -> dict[str, Any]:
    """Body `{path, version?, cron | interval, timezone?, args?, enabled?, catchup?,
    overlap?, name?}` → the schedule. 404 for an unknown playbook, 400 for a bad spec."""
    from noetl.dsl.cron import make_timing
    from noetl.dsl.triggers import check_schedule
    from noetl.ids import new_id
    from noetl.store.triggers import ScheduleRow
    from noetl.triggers.schedules import describe_schedule

    item = body.model_dump(exclude_none=True, exclude={"path", "version"})
    _checked(check_schedule, item, "schedule")
    timing = make_timing(body.cron, body.interval, body.timezone)
    version = _version(body.version)
    row = ScheduleRow(schedule_id=new_id(), path=body.path, version=version, source="api",
                      name=body.name, cron=timing.cron, interval=timing.interval,
                      timezone=timing.timezone, args=body.args, enabled=body.enabled,
                      catchup=body.catchup, overlap=body.overlap,
                      next_run_at=timing.next_after(now()) if body.enabled else None)

    def go(tx: Any) -> None:
        _need_playbook(tx, body.path, version)
        tx.insert_schedule(row)

    engine(request)._tx(go)
    _wake(request)
    return describe_schedule(row)


def _schedule(tx: Any, schedule_id: str, lock: bool = False) -> Any:
    sid = parse_id(schedule_id, "schedule")
    row = tx.get_schedule(sid, lock=lock)
    if row is None:
        raise NotFound(f"schedule {schedule_id} not found")
    return row


@router.get("/schedules/{schedule_id}", summary="One schedule")
def get_schedule(schedule_id: str, request: Request,
                 n: int = Query(5, ge=0, le=100)) -> dict[str, Any]:
    from noetl.triggers.schedules import describe_schedule

    with engine(request).store.read() as tx:
        return describe_schedule(_schedule(tx, schedule_id), n)


def _set_enabled(request: Request, schedule_id: str, enabled: bool) -> dict[str, Any]:
    from noetl.dsl.cron import Timing
    from noetl.triggers.schedules import describe_schedule

    def go(tx: Any) -> Any:
        row = _schedule(tx, schedule_id, lock=True)
        if row.enabled != enabled:
            row.enabled = enabled
            timing = Timing(cron=row.cron, interval=row.interval, timezone=row.timezone)
            # fires while paused are not missed fires: resuming starts from now
            row.next_run_at = timing.next_after(now()) if enabled else None
            tx.update_schedule(row)
        return row

    row = engine(request)._tx(go)
    _wake(request)
    return describe_schedule(row)


@router.post("/schedules/{schedule_id}/pause", summary="Pause a schedule")
def pause_schedule(schedule_id: str, request: Request) -> dict[str, Any]:
    return _set_enabled(request, schedule_id, False)


@router.post("/schedules/{schedule_id}/resume", summary="Resume a schedule (next fire from now)")
def resume_schedule(schedule_id: str, request: Request) -> dict[str, Any]:
    return _set_enabled(request, schedule_id, True)


@router.delete("/schedules/{schedule_id}", summary="Delete a schedule")
def delete_schedule(schedule_id: str, request: Request) -> dict[str, Any]:
    sid = parse_id(schedule_id, "schedule")
    if not engine(request)._tx(lambda tx: tx.delete_schedule(sid)):
        raise NotFound(f"schedule {schedule_id} not found")
    _wake(request)
    return {"status": "ok", "schedule_id": str(sid)}


@router.get("/schedules/{schedule_id}/runs", summary="A schedule's fires, newest first")
def schedule_runs(schedule_id: str, request: Request, limit: int = Query(100, ge=1, le=10000),
                  before: float | None = None) -> dict[str, Any]:
    """→ `{schedule_id, items:[{nominal_at, fired_at, outcome (started | caught_up | skipped |
    missed | error), execution_id, status, lag, detail}]}`."""
    with engine(request).store.read() as tx:
        row = _schedule(tx, schedule_id)
        runs = tx.schedule_runs(row.schedule_id, limit, before)
    return {"schedule_id": str(row.schedule_id), "items": runs}


# -- hooks ------------------------------------------------------------------------------------
@router.get("/hooks", summary="Webhooks")
def list_hooks(request: Request, path: str | None = None) -> dict[str, Any]:
    with engine(request).store.read() as tx:
        return {"items": [h.to_dict() for h in tx.list_hooks(path=path)]}


@router.put("/hooks/{name}", summary="Create or replace a webhook (source: api)")
def put_hook(name: str, body: HookIn, request: Request) -> dict[str, Any]:
    """Body `{path, version?, auth: hmac|bearer, secret | credential, args?,
    delivery_header?, enabled?}`. A `secret` is stored in the credential store as
    `hook.<name>` (encrypted); `credential` names an existing one whose data holds `secret`."""
    from noetl.credentials import put_credential
    from noetl.dsl.triggers import check_hooks
    from noetl.store.triggers import HookRow

    if (body.secret is None) == (body.credential is None):
        raise ValueError("give exactly one of 'secret' (stored as credential hook.NAME) or "
                         "'credential' (an existing credential holding 'secret')")
    cred = body.credential or f"hook.{name}"
    item = {"name": name, "credential": cred, "auth": body.auth, "enabled": body.enabled,
            **({"args": body.args} if body.args is not None else {})}
    _checked(check_hooks, item, "hook")
    version = _version(body.version)
    eng = engine(request)
    with eng.store.read() as tx:
        _need_playbook(tx, body.path, version)
        existing = tx.get_hook(name)
    if existing is not None and existing.source == "playbook":
        raise ValueError(f"hook '{name}' is declared by playbook '{existing.path}' (change it "
                         "there)")
    if body.secret is not None:
        put_credential(eng.store, cred, "webhook_secret", {"secret": body.secret},
                       description=f"secret of webhook '{name}'")
    hook = HookRow(name=name, path=body.path, version=version, source="api", auth=body.auth,
                   credential=cred, args=body.args, delivery_header=body.delivery_header,
                   enabled=body.enabled,
                   created_at=existing.created_at if existing else now())
    eng._tx(lambda tx: tx.put_hook(hook))
    return hook.to_dict()


@router.get("/hooks/{name}", summary="One webhook")
def get_hook(name: str, request: Request) -> dict[str, Any]:
    with engine(request).store.read() as tx:
        hook = tx.get_hook(name)
    if hook is None:
        raise NotFound(f"hook '{name}' not found")
    return hook.to_dict()


@router.delete("/hooks/{name}", summary="Delete a webhook")
def delete_hook(name: str, request: Request) -> dict[str, Any]:
    if not engine(request)._tx(lambda tx: tx.delete_hook(name)):
        raise NotFound(f"hook '{name}' not found")
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
        first = tx.get_events(eid, 0, 1, "execution_started")
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
