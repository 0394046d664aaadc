"""What the engine does for triggers inside its own transactions.

- Registering a playbook version replaces the schedules and hooks its ``schedule:`` and
  ``hooks:`` declare (:func:`sync_triggers`, in the registration's transaction).
- An execution that ends writes its notifications to the outbox in the transaction that writes
  its terminal event (:func:`enqueue_notifications`), for the targets of its playbook's
  ``notify:`` and of the server (``NOETL_NOTIFY``) that match its status. A server delivers
  them later (:mod:`noetl.triggers.notify`); nothing here sends anything or can fail the run.
"""

from __future__ import annotations

import json
import logging
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from noetl.domain.lifecycle import NotificationStatus
from noetl.domain.records import CatalogEntry, now
from noetl.dsl.triggers import hook_specs, notify_specs, schedule_specs
from noetl.errors import Conflict, NoetlError
from noetl.ids import new_id

if TYPE_CHECKING:
    from noetl.engine.unit import Unit
    from noetl.store.base import Tx
    from noetl.store.trigger_rows import ScheduleRow

# The trigger rows and cron are imported where a playbook has triggers: a `noetl run` (a new
# process each time) of one without pays for every module it imports.

log = logging.getLogger("noetl.engine.triggers")


def _spec_key(cron: str | None, interval: float | None, tz: str) -> tuple[Any, ...]:
    return (cron, interval, tz)


def sync_triggers(tx: Tx, entry: CatalogEntry, raw: dict[str, Any]) -> None:
    """The playbook-declared schedules and hooks of ``entry.path`` become those of this
    version. A schedule with the same timing as before keeps its id, history and next fire."""
    t = now()
    old: dict[tuple[Any, ...], list[ScheduleRow]] = {}
    for have in tx.list_schedules(path=entry.path, source="playbook"):
        old.setdefault(_spec_key(have.cron, have.interval, have.timezone), []).append(have)
    specs = schedule_specs(raw)
    if specs:  # (see the imports above)
        from noetl.dsl.cron import make_timing
        from noetl.store.trigger_rows import ScheduleRow
    for spec in specs:
        key = _spec_key(spec["cron"], spec["interval"], spec["timezone"])
        timing = make_timing(spec["cron"], spec["interval"], spec["timezone"])
        same = old.get(key)
        found = same.pop(0) if same else None
        is_new = found is None
        row = found or ScheduleRow(
            schedule_id=new_id(), path=entry.path, version=None, source="playbook",
            cron=timing.cron, interval=timing.interval, timezone=timing.timezone, args=None,
            enabled=True, catchup="skip", overlap="skip", next_run_at=None)
        row.version = str(entry.version)
        row.args, row.name = spec["args"], spec["name"]
        row.catchup, row.overlap = spec["catchup"], spec["overlap"]
        if spec["enabled"] and (not row.enabled or row.next_run_at is None):
            row.next_run_at = timing.next_after(t)
        row.enabled = bool(spec["enabled"])
        row.meta = {**row.meta, "catalog_id": str(entry.catalog_id)}
        if is_new:
            tx.insert_schedule(row)
        else:
            tx.update_schedule(row)
    for rows in old.values():
        for gone in rows:
            tx.delete_schedule(gone.schedule_id)
    _sync_hooks(tx, entry, raw)


def _sync_hooks(tx: Tx, entry: CatalogEntry, raw: dict[str, Any]) -> None:
    declared = {h["name"]: h for h in hook_specs(raw)}
    for row in tx.list_hooks(path=entry.path, source="playbook"):
        if row.name not in declared:
            tx.delete_hook(row.name)
    if declared:
        from noetl.store.trigger_rows import HookRow
    for name, h in declared.items():
        existing = tx.get_hook(name)
        if existing is not None and (existing.source != "playbook" or existing.path != entry.path):
            raise Conflict(f"hooks: a hook named '{name}' already exists ("
                           + (f"playbook '{existing.path}'" if existing.source == "playbook"
                              else "defined through the API") + "); choose another name")
        tx.put_hook(HookRow(name=name, path=entry.path, version=str(entry.version),
                            source="playbook", auth=h["auth"], credential=h["credential"],
                            args=h["args"], delivery_header=h["delivery_header"],
                            enabled=bool(h["enabled"]),
                            created_at=existing.created_at if existing else now()))


def server_targets(text: str) -> list[dict[str, Any]]:
    """The server-level notification targets: ``text`` (``NOETL_NOTIFY``, from the settings),
    a JSON list of targets (the keys of a playbook's ``notify:``) or ``@path`` to a file
    holding it. Raises NoetlError when it is invalid (the server checks it at start)."""
    return list(_server_targets(text.strip()))


@lru_cache(maxsize=4)
def _server_targets(text: str) -> tuple[dict[str, Any], ...]:
    """Read (``@path``) and checked once per process, like the settings it comes from: every
    execution's end asks, inside the transaction writing its terminal event."""
    if not text:
        return ()
    if text.startswith("@"):
        try:
            with open(text[1:], encoding="utf-8") as fh:
                text = fh.read()
        except OSError as exc:
            raise NoetlError(f"NOETL_NOTIFY: cannot read {text[1:]}: {exc.strerror}") from None
    from noetl.dsl.triggers import Problems, check_notify

    try:
        value = json.loads(text)
    except ValueError as exc:
        raise NoetlError(f"NOETL_NOTIFY is not valid JSON: {exc}") from None
    c = Problems()
    check_notify(c, value, None)
    if c.messages:
        raise NoetlError("NOETL_NOTIFY: " + "; ".join(c.messages))
    return tuple(notify_specs(value))


def message(s: Unit) -> dict[str, Any]:
    """What a notification says about the execution that just ended."""
    ex = s.ex
    err = ex.error if isinstance(ex.error, dict) else None
    return {"execution_id": str(ex.execution_id), "path": ex.path, "version": ex.version,
            "status": str(ex.status), "failed_step": err.get("step") if err else None,
            "error": {"message": err.get("message"), "type": err.get("type"),
                      "step": err.get("step")} if err else None,
            "parent_execution_id": None if ex.parent_execution_id is None
            else str(ex.parent_execution_id),
            "started_at": ex.created_at, "ended_at": ex.ended_at,
            "duration": (ex.ended_at - ex.created_at) if ex.ended_at else None}


def enqueue_notifications(s: Unit) -> None:
    """Called as the execution ends, inside the transaction writing its terminal event."""
    declared = s.plan.raw.get("notify")
    try:
        server = server_targets(s.settings.notify)
    except NoetlError as exc:  # checked at server start; a run never fails for it
        log.error("%s (no server-level notification for execution %s)", exc, s.eid)
        server = []
    if declared is None and not server:
        return
    status = str(s.ex.status)
    targets = [t for t in notify_specs(declared) + server if status in t["status"]]
    if not targets:
        return
    from noetl.store.trigger_rows import NotificationRow

    payload = message(s)
    t = now()
    s.outbox = True
    s.tx.add_notifications([
        NotificationRow(notification_id=new_id(), execution_id=s.eid,
                        status=NotificationStatus.PENDING,
                        target=target, payload=payload, max_attempts=target["max_attempts"],
                        next_attempt_at=t) for target in targets])
