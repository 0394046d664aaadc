"""Retries: whether a failed attempt runs again, and when."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

from noetl.domain.records import Job
from noetl.engine import events
from noetl.errors import TemplateError
from noetl.plan import PlanStep
from noetl.templates import evaluate

if TYPE_CHECKING:
    from noetl.engine.unit import Unit

MAX_RETRY_DELAY = 7 * 86400  # seconds; a longer (or NaN, infinite) delay fails the step


def _retry_delay(policy: Any, attempts: int) -> float:
    try:
        return float(policy.delay(attempts, random.uniform(0.5, 1.5)))
    except (OverflowError, ValueError, TypeError):
        return float("inf")


def should_retry(s: Unit, ps: PlanStep, policy: Any, job: Job, outcome: dict[str, Any],
                 message: str) -> bool:
    envelope = outcome.get("envelope") or {}
    data = outcome.get("data")
    status_code = None
    if isinstance(data, dict):
        status_code = data.get("status_code")
    if status_code is None and isinstance(envelope, dict):
        d = envelope.get("data")
        status_code = d.get("status_code") if isinstance(d, dict) else None
    extra = {"result": envelope, "this": envelope, "attempt": job.attempts + 1,
             "error": message, "status_code": status_code, "success": False, "data": data}
    ctx = s.ctx(ps.refs, extra)
    where = f"step '{ps.name}' → retry"
    try:
        if policy.stop_when and evaluate(policy.stop_when, ctx, where + " → stop_when"):
            return False
        if policy.retry_when:
            return evaluate(policy.retry_when, ctx, where + " → retry_when")
    except TemplateError as exc:
        s.emit(events.warning(s.eid, ps.name, ps.type, str(exc), "TemplateError"))
        return False
    return True
