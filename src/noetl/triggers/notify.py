"""Delivering notifications from the outbox.

The engine writes one ``notification`` row per target as an execution ends (in the terminal
event's transaction). A server claims due rows (``FOR UPDATE SKIP LOCKED``; the claim pushes the
row's next attempt ahead, so a server that dies while sending leaves it to another), POSTs the
message outside any transaction, then records the attempt: the row's new state and one event on
the execution, ``notification_sent`` or ``notification_failed`` (with ``will_retry``). A failed
attempt is retried with exponential backoff (``NOETL_NOTIFY_RETRY_DELAY`` seconds, doubling, at
most 5 minutes apart) until the target's ``max_attempts``. These events come after the
execution's terminal event; they never change its status.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from noetl.domain.lifecycle import EventType, NotificationStatus, move
from noetl.domain.records import Event, now
from noetl.engine import events

if TYPE_CHECKING:
    from noetl.engine.core import Engine
    from noetl.store.trigger_rows import NotificationRow
    from noetl.triggers import TriggerMetrics

log = logging.getLogger("noetl.triggers.notify")
MAX_DELAY = 300.0
SENT, FAILED = EventType.NOTIFICATION_SENT, EventType.NOTIFICATION_FAILED


def slack_text(m: dict[str, Any]) -> str:
    icon = {"FAILED": ":x:", "COMPLETED": ":white_check_mark:",
            "CANCELLED": ":no_entry_sign:"}.get(str(m.get("status")), ":information_source:")
    text = f"{icon} NoETL execution {m['execution_id']} of `{m['path']}` {m['status']}"
    err = m.get("error") or {}
    if err:
        where = f" in step `{err['step']}`" if err.get("step") else ""
        text += f"{where}: {err.get('type') or 'Error'}: {err.get('message')}"
    return text


def body_for(target: dict[str, Any], message: dict[str, Any]) -> dict[str, Any]:
    if target.get("format") == "slack":
        return {"text": slack_text(message)}
    return {"kind": "noetl.execution", **message}


def where_to(target: dict[str, Any], resolve: Any) -> tuple[str, dict[str, str]]:
    """The URL and headers of a target; a credential's data may hold ``url``, ``headers`` and
    ``token`` (sent as a bearer token)."""
    url = target.get("url")
    headers = {str(k): str(v) for k, v in (target.get("headers") or {}).items()}
    if target.get("credential"):
        data = resolve(target["credential"])["data"]
        url = data.get("url") or url
        headers.update({str(k): str(v) for k, v in (data.get("headers") or {}).items()})
        if data.get("token"):
            headers["Authorization"] = f"Bearer {data['token']}"
    if not url:
        raise ValueError(f"credential '{target.get('credential')}' holds no url")
    return str(url), headers


def label(target: dict[str, Any]) -> str:
    """How events name a target: its name, its credential, or the URL's host (a webhook URL's
    path is often its secret)."""
    if target.get("name"):
        return str(target["name"])
    if target.get("credential"):
        return f"credential:{target['credential']}"
    parts = urlsplit(str(target.get("url") or ""))
    return f"{parts.scheme}://{parts.netloc}"


def send(n: NotificationRow, resolve: Any, timeout: float) -> tuple[bool, int | None, str | None]:
    """One attempt: (delivered?, HTTP status, error)."""
    import httpx

    try:
        url, headers = where_to(n.target, resolve)
        r = httpx.post(url, json=body_for(n.target, n.payload), headers=headers,
                       timeout=timeout, follow_redirects=False)
    except Exception as exc:  # unreachable, refused, no credential: retried like a 5xx
        return False, None, f"{type(exc).__name__}: {exc}"
    if 200 <= r.status_code < 300:
        return True, r.status_code, None
    return False, r.status_code, f"HTTP {r.status_code}: {r.text[:200]}"


def backoff(attempts: int, first: float) -> float:
    """The wait before the next attempt: ``first`` (NOETL_NOTIFY_RETRY_DELAY), doubling."""
    return float(min(MAX_DELAY, first * 2 ** max(0, attempts - 1)))


def record(engine: Engine, n: NotificationRow, ok: bool, code: int | None,
           error: str | None) -> Event:
    """The attempt's outcome on the row and as an event on the execution."""
    t = now()
    final = ok or n.attempts >= n.max_attempts
    N = NotificationStatus
    move(n, N.DELIVERED if ok else (N.FAILED if final else N.PENDING))
    n.last_error = error
    if not final:
        n.next_attempt_at = t + backoff(n.attempts, engine.settings.notify_retry_delay)
    ctx = {"notification_id": str(n.notification_id), "target": label(n.target),
           "format": n.target.get("format", "json"), "attempt": n.attempts,
           "max_attempts": n.max_attempts, "status_code": code,
           "execution_status": n.payload.get("status")}
    if not ok:
        ctx["will_retry"] = not final
        if not final:
            ctx["next_attempt_in"] = round(n.next_attempt_at - t, 3)
    ev = events.notification_sent(n.execution_id, ctx, n.attempts) if ok else \
        events.notification_failed(n.execution_id, ctx, error, n.attempts)

    def go(tx: Any) -> None:
        tx.update_notification(n)
        tx.add_events([ev])

    engine._tx(go)
    return ev


def deliver_due(engine: Engine, resolve: Any, metrics: TriggerMetrics,
                limit: int = 20) -> int:
    """Claim due notifications, send each, record each attempt; how many were attempted."""
    timeout = engine.settings.notify_timeout
    batch = engine._tx(lambda tx: tx.claim_notifications(now(), limit, timeout + 5))
    for n in batch:
        ok, code, error = send(n, resolve, timeout)
        final = ok or n.attempts >= n.max_attempts
        try:
            record(engine, n, ok, code, error)
        except Exception:  # the claim expires and another attempt follows
            log.exception("notification %s: cannot record attempt %s", n.notification_id,
                          n.attempts)
        metrics.notification_attempt(ok, final)
        if not ok:
            log.warning("notification %s for execution %s (attempt %d/%d): %s",
                        n.notification_id, n.execution_id, n.attempts, n.max_attempts, error)
    return len(batch)
