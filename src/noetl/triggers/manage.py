"""Managing schedules and hooks: one implementation for the API routes and for the CLI working
on a store directly. Bad input raises ValueError naming the field; an unknown playbook,
schedule or hook raises NotFound."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from noetl.domain.records import now
from noetl.dsl.cron import Timing, make_timing
from noetl.errors import NotFound
from noetl.ids import new_id
from noetl.store.trigger_rows import HookRow, ScheduleRow

if TYPE_CHECKING:
    from noetl.engine.core import Engine
    from noetl.store.base import Tx

SCHEDULE_FIELDS = frozenset({"path", "version", "cron", "interval", "timezone", "args",
                             "enabled", "catchup", "overlap", "name"})
HOOK_FIELDS = frozenset({"path", "version", "auth", "secret", "credential", "args",
                         "delivery_header", "enabled"})


def _checked(check: Any, item: dict[str, Any], what: str) -> None:
    from noetl.dsl.triggers import Problems

    p = Problems()
    check(p, [item], None)
    if p.messages:
        raise ValueError("; ".join(m.replace(f"{what}[0]", what, 1) for m in p.messages))


def _fields(spec: dict[str, Any], known: frozenset[str], what: str) -> None:
    from noetl.dsl.checks import did_you_mean

    for key in spec:
        if key not in known:
            raise ValueError(f"{what}: unknown field '{key}'{did_you_mean(key, known)}")
    if not isinstance(spec.get("path"), str) or not spec["path"]:
        raise ValueError(f"{what}: 'path' (the playbook's catalog path) is required")


def version_of(v: Any) -> str | None:
    if v in (None, "", "latest"):
        return None
    if not str(v).isdigit():
        raise ValueError(f"version must be 'latest' or an integer, got {v!r}")
    return str(int(str(v)))


def _need_playbook(tx: Tx, path: str, version: str | None) -> None:
    if tx.get_catalog(path=path, version=None if version is None else int(version)) is None:
        raise NotFound(f"playbook '{path}'" + (f" version {version}" if version else "")
                       + " not found")


def parse_schedule_id(value: Any) -> int:
    text = str(value).strip()
    if not text.isdigit() or not 0 < int(text) < 2**63:
        raise NotFound(f"schedule {value!r} not found (ids are positive decimal integers)")
    return int(text)


def describe_schedule(row: ScheduleRow, n: int = 3) -> dict[str, Any]:
    """The row as the API shows it, with its next ``n`` fire times (none while paused)."""
    d = row.to_dict()
    timing = Timing(cron=row.cron, interval=row.interval, timezone=row.timezone)
    d["timing"] = timing.describe()
    if row.enabled and row.next_run_at is not None:
        d["next_fires"] = [row.next_run_at, *timing.upcoming(row.next_run_at, max(0, n - 1))]
    else:
        d["next_fires"] = []
    return d


# -- schedules ----------------------------------------------------------------------------------
def list_schedules(engine: Engine, path: str | None = None, n: int = 3) -> list[dict[str, Any]]:
    with engine.store.read() as tx:
        items = []
        for row in tx.list_schedules(path=path):
            d = describe_schedule(row, n)
            ex = tx.get_execution(row.last_execution_id) if row.last_execution_id else None
            d["last_execution_status"] = str(ex.status) if ex else None
            items.append(d)
    return items


def add_schedule(engine: Engine, spec: dict[str, Any]) -> dict[str, Any]:
    """A schedule of source ``api`` from ``{path, version?, cron | interval, timezone?, args?,
    enabled?, catchup?, overlap?, name?}``."""
    from noetl.dsl.triggers import check_schedule

    _fields(spec, SCHEDULE_FIELDS, "schedule")
    item = {k: v for k, v in spec.items() if k not in ("path", "version") and v is not None}
    _checked(check_schedule, item, "schedule")
    timing = make_timing(spec.get("cron"), spec.get("interval"), spec.get("timezone"))
    version = version_of(spec.get("version"))
    enabled = bool(spec.get("enabled", True))
    row = ScheduleRow(schedule_id=new_id(), path=spec["path"], version=version, source="api",
                      name=spec.get("name"), cron=timing.cron, interval=timing.interval,
                      timezone=timing.timezone, args=spec.get("args") or None, enabled=enabled,
                      catchup=spec.get("catchup") or "skip", overlap=spec.get("overlap") or "skip",
                      next_run_at=timing.next_after(now()) if enabled else None)

    def go(tx: Tx) -> None:
        _need_playbook(tx, row.path, version)
        tx.insert_schedule(row)

    engine._tx(go)
    return describe_schedule(row)


def get_schedule(engine: Engine, schedule_id: Any, n: int = 5) -> dict[str, Any]:
    with engine.store.read() as tx:
        return describe_schedule(_schedule(tx, schedule_id), n)


def _schedule(tx: Tx, schedule_id: Any, lock: bool = False) -> ScheduleRow:
    row = tx.get_schedule(parse_schedule_id(schedule_id), lock=lock)
    if row is None:
        raise NotFound(f"schedule {schedule_id} not found")
    return row


def set_enabled(engine: Engine, schedule_id: Any, enabled: bool) -> dict[str, Any]:
    """Pause or resume. Fires while paused are not missed fires: resuming starts from now."""
    def go(tx: Tx) -> ScheduleRow:
        row = _schedule(tx, schedule_id, lock=True)
        if row.enabled != enabled:
            row.enabled = enabled
            timing = Timing(cron=row.cron, interval=row.interval, timezone=row.timezone)
            row.next_run_at = timing.next_after(now()) if enabled else None
            tx.update_schedule(row)
        return row

    return describe_schedule(engine._tx(go))


def delete_schedule(engine: Engine, schedule_id: Any) -> None:
    sid = parse_schedule_id(schedule_id)
    if not engine._tx(lambda tx: tx.delete_schedule(sid)):
        raise NotFound(f"schedule {schedule_id} not found")


def schedule_runs(engine: Engine, schedule_id: Any, limit: int = 100,
                  before: float | None = None) -> list[dict[str, Any]]:
    with engine.store.read() as tx:
        row = _schedule(tx, schedule_id)
        return tx.schedule_runs(row.schedule_id, limit, before)


def next_fires(engine: Engine, path: str, n: int = 5) -> list[dict[str, Any]]:
    """The next ``n`` fire times of every enabled schedule of ``path``."""
    items = [s for s in list_schedules(engine, path, n) if s["enabled"]]
    if not items:
        with engine.store.read() as tx:
            if tx.get_catalog(path=path) is None:
                raise NotFound(f"playbook '{path}' not found")
    return items


# -- hooks ----------------------------------------------------------------------------------------
def put_hook(engine: Engine, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    """Create or replace a hook of source ``api`` from ``{path, version?, auth, secret |
    credential, args?, delivery_header?, enabled?}``; a ``secret`` is stored as the credential
    ``hook.<name>`` (encrypted)."""
    from noetl.credentials import put_credential
    from noetl.dsl.triggers import check_hooks

    _fields(spec, HOOK_FIELDS, f"hook '{name}'")
    secret, credential = spec.get("secret"), spec.get("credential")
    if (secret is None) == (credential is None):
        raise ValueError("give exactly one of 'secret' (stored as credential hook.NAME) or "
                         "'credential' (an existing credential holding 'secret')")
    if secret is not None and (not isinstance(secret, str) or len(secret) < 8):
        raise ValueError("a hook's secret must be a string of at least 8 characters")
    cred = credential or f"hook.{name}"
    auth = spec.get("auth") or "hmac"
    item = {"name": name, "credential": cred, "auth": auth,
            "enabled": bool(spec.get("enabled", True)),
            **({"args": spec["args"]} if spec.get("args") is not None else {})}
    _checked(check_hooks, item, "hook")
    version = version_of(spec.get("version"))
    with engine.store.read() as tx:
        _need_playbook(tx, spec["path"], version)
        existing = tx.get_hook(name)
    if existing is not None and existing.source == "playbook":
        raise ValueError(f"hook '{name}' is declared by playbook '{existing.path}' (change it "
                         "there)")
    if secret is not None:
        put_credential(engine.store, cred, "webhook_secret", {"secret": secret},
                       description=f"secret of webhook '{name}'")
    hook = HookRow(name=name, path=spec["path"], version=version, source="api", auth=auth,
                   credential=cred, args=spec.get("args"),
                   delivery_header=spec.get("delivery_header"), enabled=item["enabled"],
                   created_at=existing.created_at if existing else now())
    engine._tx(lambda tx: tx.put_hook(hook))
    return hook.to_dict()


def list_hooks(engine: Engine, path: str | None = None) -> list[dict[str, Any]]:
    with engine.store.read() as tx:
        return [h.to_dict() for h in tx.list_hooks(path=path)]


def get_hook(engine: Engine, name: str) -> dict[str, Any]:
    with engine.store.read() as tx:
        hook = tx.get_hook(name)
    if hook is None:
        raise NotFound(f"hook '{name}' not found")
    return hook.to_dict()


def delete_hook(engine: Engine, name: str) -> None:
    if not engine._tx(lambda tx: tx.delete_hook(name)):
        raise NotFound(f"hook '{name}' not found")
