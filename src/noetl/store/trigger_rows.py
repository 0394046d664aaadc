"""The rows of the trigger tables (schedules, webhooks, the notification outbox), as
:mod:`noetl.store.triggers` reads and writes them.

A module of their own, imported where a row is made or read: most runs have no trigger, and
a ``noetl run`` (a new process each time) pays for every dataclass it imports.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from noetl.domain.lifecycle import NotificationStatus
from noetl.domain.records import now


def _sid(v: Any) -> str | None:
    return None if v is None else str(v)


@dataclass
class ScheduleRow:
    """A stored schedule: when a playbook runs, and when it last and next fires."""

    schedule_id: int
    path: str
    version: str | None  # None: the latest version when it fires
    source: str  # playbook | api
    cron: str | None
    interval: float | None
    timezone: str
    args: dict[str, Any] | None
    enabled: bool
    catchup: str  # skip | one
    overlap: str  # skip | allow | cancel_previous
    next_run_at: float | None
    name: str | None = None
    last_run_at: float | None = None
    last_status: str | None = None  # outcome of the last fire
    last_execution_id: int | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    created_at: float = field(default_factory=now)
    updated_at: float = field(default_factory=now)

    def to_dict(self) -> dict[str, Any]:
        return {"schedule_id": str(self.schedule_id), "path": self.path,
                "version": self.version, "source": self.source, "name": self.name,
                "cron": self.cron, "interval": self.interval, "timezone": self.timezone,
                "args": self.args, "enabled": self.enabled, "catchup": self.catchup,
                "overlap": self.overlap, "next_run_at": self.next_run_at,
                "last_run_at": self.last_run_at, "last_status": self.last_status,
                "last_execution_id": _sid(self.last_execution_id), "meta": self.meta,
                "created_at": self.created_at, "updated_at": self.updated_at}


@dataclass
class HookRow:
    """A stored webhook: the playbook a signed or authorized request starts."""

    name: str
    path: str
    version: str | None
    source: str  # playbook | api
    auth: str  # hmac | bearer
    credential: str  # the credential whose data holds `secret`
    args: dict[str, Any] | None  # a mapping rendered over the body; None: the body is the args
    delivery_header: str | None
    enabled: bool
    meta: dict[str, Any] = field(default_factory=dict)
    created_at: float = field(default_factory=now)
    updated_at: float = field(default_factory=now)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "path": self.path, "version": self.version,
                "source": self.source, "auth": self.auth, "credential": self.credential,
                "args": self.args, "delivery_header": self.delivery_header,
                "enabled": self.enabled, "url": f"/api/hooks/{self.name}", "meta": self.meta,
                "created_at": self.created_at, "updated_at": self.updated_at}


@dataclass
class NotificationRow:
    """An outbox row: one message to one target about an ended execution."""

    notification_id: int
    execution_id: int
    status: NotificationStatus
    target: dict[str, Any]
    payload: dict[str, Any]
    max_attempts: int
    next_attempt_at: float
    attempts: int = 0
    last_error: str | None = None
    created_at: float = field(default_factory=now)
    updated_at: float = field(default_factory=now)

    def to_dict(self) -> dict[str, Any]:
        from urllib.parse import urlsplit

        target = {k: v for k, v in self.target.items() if k not in ("headers", "url")}
        if self.target.get("url"):  # a webhook URL's path is often its secret: the host only
            u = urlsplit(str(self.target["url"]))
            target["url"] = f"{u.scheme}://{u.netloc}/…"
        return {"notification_id": str(self.notification_id),
                "execution_id": str(self.execution_id), "status": self.status,
                "target": target, "attempts": self.attempts, "max_attempts": self.max_attempts,
                "next_attempt_at": self.next_attempt_at, "last_error": self.last_error,
                "created_at": self.created_at, "updated_at": self.updated_at}
