"""SQL for schedules, their fires, webhooks, webhook deliveries and the notification outbox
(tables of migration 0006). Mixed into :class:`noetl.store.base.Tx`; both dialects run the same
statements, PostgreSQL adding ``FOR UPDATE SKIP LOCKED`` where rows are claimed.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from noetl.domain.lifecycle import NotificationStatus
from noetl.domain.records import now
from noetl.store.sqlops import SqlOps

if TYPE_CHECKING:
    from noetl.store.trigger_rows import HookRow, NotificationRow, ScheduleRow


def _jd(value: Any) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _jl(text: Any) -> Any:
    return json.loads(text) if isinstance(text, str | bytes) else text


SCHED_COLS = ("schedule_id, playbook_path, playbook_version, source, name, cron, "
              "interval_seconds, timezone, input_payload, enabled, catchup, overlap, "
              "next_run_at, last_run_at, last_status, last_execution_id, meta, created_at, "
              "updated_at")
HOOK_COLS = ("name, playbook_path, playbook_version, source, auth, credential, args, "
             "delivery_header, enabled, meta, created_at, updated_at")
NOTE_COLS = ("notification_id, execution_id, status, target, payload, attempts, max_attempts, "
             "next_attempt_at, last_error, created_at, updated_at")


def _where(path: str | None, source: str | None) -> tuple[str, dict[str, Any]]:
    """The WHERE clause (and its parameters) selecting rows of a playbook path and source."""
    conds = [c for c, v in (("playbook_path = :p", path), ("source = :s", source)) if v]
    return (" WHERE " + " AND ".join(conds)) if conds else "", {"p": path, "s": source}


def _values(cols: str) -> str:
    return ", ".join(":" + c.strip() for c in cols.split(","))


def _schedule(r: Any) -> ScheduleRow:
    from noetl.store.trigger_rows import ScheduleRow  # (see noetl.store.trigger_rows)

    return ScheduleRow(
        schedule_id=int(r[0]), path=r[1], version=r[2], source=r[3], name=r[4], cron=r[5],
        interval=r[6], timezone=r[7], args=_jl(r[8]), enabled=bool(r[9]), catchup=r[10],
        overlap=r[11], next_run_at=r[12], last_run_at=r[13], last_status=r[14],
        last_execution_id=None if r[15] is None else int(r[15]), meta=_jl(r[16]) or {},
        created_at=r[17], updated_at=r[18])


def _schedule_params(s: ScheduleRow) -> dict[str, Any]:
    return {"schedule_id": s.schedule_id, "playbook_path": s.path, "playbook_version": s.version,
            "source": s.source, "name": s.name, "cron": s.cron, "interval_seconds": s.interval,
            "timezone": s.timezone, "input_payload": _jd(s.args), "enabled": int(s.enabled),
            "catchup": s.catchup, "overlap": s.overlap, "next_run_at": s.next_run_at,
            "last_run_at": s.last_run_at, "last_status": s.last_status,
            "last_execution_id": s.last_execution_id, "meta": _jd(s.meta),
            "created_at": s.created_at, "updated_at": s.updated_at}


def _hook(r: Any) -> HookRow:
    from noetl.store.trigger_rows import HookRow

    return HookRow(name=r[0], path=r[1], version=r[2], source=r[3], auth=r[4], credential=r[5],
                   args=_jl(r[6]), delivery_header=r[7], enabled=bool(r[8]),
                   meta=_jl(r[9]) or {}, created_at=r[10], updated_at=r[11])


def _note(r: Any) -> NotificationRow:
    from noetl.store.trigger_rows import NotificationRow

    return NotificationRow(
        notification_id=int(r[0]), execution_id=int(r[1]),
        status=NotificationStatus(r[2]), target=_jl(r[3]),
        payload=_jl(r[4]), attempts=r[5], max_attempts=r[6], next_attempt_at=r[7],
        last_error=r[8], created_at=r[9], updated_at=r[10])


def _note_params(n: NotificationRow) -> dict[str, Any]:
    return {"notification_id": n.notification_id, "execution_id": n.execution_id,
            "status": str(n.status), "target": _jd(n.target), "payload": _jd(n.payload),
            "attempts": n.attempts, "max_attempts": n.max_attempts,
            "next_attempt_at": n.next_attempt_at, "last_error": n.last_error,
            "created_at": n.created_at, "updated_at": n.updated_at}


class TriggerSql(SqlOps):
    """Schedules, hooks and notifications. Needs ``_x``/``_all``/``_one`` of the SQL backend."""

    # schedules ----------------------------------------------------------------------------
    def insert_schedule(self, s: ScheduleRow) -> None:
        self._x(f"INSERT INTO schedule ({SCHED_COLS}) VALUES ({_values(SCHED_COLS)})",
                _schedule_params(s))

    def update_schedule(self, s: ScheduleRow) -> None:
        s.updated_at = now()
        sets = ", ".join(f"{c.strip()} = :{c.strip()}" for c in SCHED_COLS.split(",")[1:])
        self._x(f"UPDATE schedule SET {sets} WHERE schedule_id = :schedule_id",
                _schedule_params(s))

    def get_schedule(self, schedule_id: int, lock: bool = False) -> ScheduleRow | None:
        r = self._one(f"SELECT {SCHED_COLS} FROM schedule WHERE schedule_id = :id"
                      + (self.for_update if lock else ""), {"id": schedule_id})
        return _schedule(r) if r else None

    def list_schedules(self, path: str | None = None,
                       source: str | None = None) -> list[ScheduleRow]:
        w, p = _where(path, source)
        rows = self._all(f"SELECT {SCHED_COLS} FROM schedule{w} ORDER BY playbook_path, "
                         "schedule_id", p)
        return [_schedule(r) for r in rows]

    def delete_schedule(self, schedule_id: int) -> bool:
        return bool(self._x("DELETE FROM schedule WHERE schedule_id = :id",
                            {"id": schedule_id}).rowcount)

    def claim_due_schedule(self, t: float) -> ScheduleRow | None:
        """The enabled schedule due longest ago (``next_run_at <= t``), locked; rows another
        server holds are skipped (PostgreSQL), so each due fire is claimed by one server."""
        r = self._one(f"SELECT {SCHED_COLS} FROM schedule WHERE enabled = 1 AND "
                      "next_run_at <= :t ORDER BY next_run_at LIMIT 1" + self._skip_locked,
                      {"t": t})
        return _schedule(r) if r else None

    def next_schedule_at(self) -> float | None:
        r = self._one("SELECT MIN(next_run_at) FROM schedule WHERE enabled = 1")
        return None if r is None or r[0] is None else float(r[0])

    def add_schedule_run(self, schedule_id: int, nominal_at: float, fired_at: float,
                         outcome: str, execution_id: int | None = None,
                         detail: dict[str, Any] | None = None) -> None:
        """One nominal fire time, once (the primary key refuses a second row for it)."""
        self._x("INSERT INTO schedule_run (schedule_id, nominal_at, fired_at, outcome, "
                "execution_id, detail) VALUES (:s, :n, :f, :o, :e, :d)",
                {"s": schedule_id, "n": nominal_at, "f": fired_at, "o": outcome,
                 "e": execution_id, "d": _jd(detail)})

    def schedule_runs(self, schedule_id: int, limit: int = 100,
                      before: float | None = None) -> list[dict[str, Any]]:
        p: dict[str, Any] = {"s": schedule_id, "n": limit}
        cond = ""
        if before is not None:
            cond = " AND r.nominal_at < :b"
            p["b"] = before
        rows = self._all("SELECT r.nominal_at, r.fired_at, r.outcome, r.execution_id, r.detail, "
                         "e.status FROM schedule_run r LEFT JOIN execution e ON "
                         "e.execution_id = r.execution_id WHERE r.schedule_id = :s"
                         f"{cond} ORDER BY r.nominal_at DESC LIMIT :n", p)
        return [{"nominal_at": r[0], "fired_at": r[1], "outcome": r[2],
                 "execution_id": None if r[3] is None else str(r[3]), "detail": _jl(r[4]),
                 "status": r[5], "lag": None if r[3] is None else r[1] - r[0]} for r in rows]

    # hooks --------------------------------------------------------------------------------
    def put_hook(self, h: HookRow) -> None:
        h.updated_at = now()
        sets = ", ".join(f"{c.strip()} = excluded.{c.strip()}"
                         for c in HOOK_COLS.split(",")[1:] if c.strip() != "created_at")
        p = {"name": h.name, "playbook_path": h.path, "playbook_version": h.version,
             "source": h.source, "auth": h.auth, "credential": h.credential,
             "args": _jd(h.args), "delivery_header": h.delivery_header,
             "enabled": int(h.enabled), "meta": _jd(h.meta), "created_at": h.created_at,
             "updated_at": h.updated_at}
        self._x(f"INSERT INTO hook ({HOOK_COLS}) VALUES ({_values(HOOK_COLS)}) "
                f"ON CONFLICT (name) DO UPDATE SET {sets}", p)

    def get_hook(self, name: str) -> HookRow | None:
        r = self._one(f"SELECT {HOOK_COLS} FROM hook WHERE name = :n", {"n": name})
        return _hook(r) if r else None

    def list_hooks(self, path: str | None = None, source: str | None = None) -> list[HookRow]:
        w, p = _where(path, source)
        return [_hook(r) for r in self._all(f"SELECT {HOOK_COLS} FROM hook{w} ORDER BY name", p)]

    def delete_hook(self, name: str) -> bool:
        return bool(self._x("DELETE FROM hook WHERE name = :n", {"n": name}).rowcount)

    def claim_delivery(self, hook: str, delivery_id: str) -> bool:
        """Record a delivery id; False when it was recorded before (a replay). A concurrent
        insert of the same id waits for the other transaction and then sees it."""
        cur = self._x("INSERT INTO hook_delivery (hook, delivery_id, received_at) VALUES "
                      "(:h, :d, :t) ON CONFLICT (hook, delivery_id) DO NOTHING",
                      {"h": hook, "d": delivery_id, "t": now()})
        return bool(cur.rowcount)

    def set_delivery_execution(self, hook: str, delivery_id: str, execution_id: int) -> None:
        self._x("UPDATE hook_delivery SET execution_id = :e WHERE hook = :h AND "
                "delivery_id = :d", {"h": hook, "d": delivery_id, "e": execution_id})

    def delivery_execution(self, hook: str, delivery_id: str) -> int | None:
        r = self._one("SELECT execution_id FROM hook_delivery WHERE hook = :h AND "
                      "delivery_id = :d", {"h": hook, "d": delivery_id})
        return None if r is None or r[0] is None else int(r[0])

    # notifications ------------------------------------------------------------------------
    def add_notifications(self, rows: list[NotificationRow]) -> None:
        for n in rows:
            self._x(f"INSERT INTO notification ({NOTE_COLS}) VALUES ({_values(NOTE_COLS)})",
                    _note_params(n))

    def claim_notifications(self, t: float, limit: int, hold: float) -> list[NotificationRow]:
        """Due pending notifications, their next attempt pushed ``hold`` seconds ahead (a lease:
        a server that dies while sending leaves them to another) and the attempt counted."""
        rows = self._all(
            f"UPDATE notification SET next_attempt_at = :until, attempts = attempts + 1, "
            f"updated_at = :t WHERE notification_id IN (SELECT notification_id FROM "
            f"notification WHERE status = 'pending' AND next_attempt_at <= :t ORDER BY "
            f"next_attempt_at LIMIT :n{self._skip_locked}) RETURNING {NOTE_COLS}",
            {"t": t, "until": t + hold, "n": limit})
        return [_note(r) for r in rows]

    def update_notification(self, n: NotificationRow) -> None:
        n.updated_at = now()
        self._x("UPDATE notification SET status = :status, attempts = :attempts, "
                "next_attempt_at = :next_attempt_at, last_error = :last_error, "
                "updated_at = :updated_at WHERE notification_id = :notification_id",
                _note_params(n))

    def next_notification_at(self) -> float | None:
        r = self._one("SELECT MIN(next_attempt_at) FROM notification WHERE status = 'pending'")
        return None if r is None or r[0] is None else float(r[0])

    def notifications(self, execution_id: int) -> list[NotificationRow]:
        rows = self._all(f"SELECT {NOTE_COLS} FROM notification WHERE execution_id = :e "
                         "ORDER BY notification_id", {"e": execution_id})
        return [_note(r) for r in rows]
