"""Retries: whether a failed attempt runs again, and when; one decision (:func:`decide`) for
both ways an attempt can end without a result.

- **An error** (the tool failed, a template would not render, a child execution failed): the
  step's retry policy (``retry:``; for a loop item, its task's) decides. The attempt runs again
  while attempts are left, unless the outcome is ``final`` (it says "do not retry": the tool
  raised a non-retryable error, ``ToolError(retryable=False)`` or an error type its spec lists;
  the worker could not run the job at all; a child execution failed; the engine gave up on the
  report) or the execution has ended, and unless ``stop_when`` holds or ``retry_when`` does not
  (:func:`should_retry`, evaluated only when it could matter). The delay backs off with the
  policy (``initial_delay · backoff_multiplier^(attempt-1)``, at most ``max_delay``, times a
  jitter in [0.5, 1.5) when ``jitter``); a delay that is no number of seconds from 0 to
  :data:`MAX_RETRY_DELAY` fails the step, saying so.
- **A lost lease** (the worker stopped heartbeating): the job runs again at once, whatever its
  policy, until its lease has expired more than ``NOETL_MAX_LEASE_EXPIRIES`` times.

:func:`decide` is pure: the clock (``now``), the jitter and the policy's conditions come in as
arguments, so the rules are tested without a store (``tests/rules/test_retry.py``).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from noetl.domain.lifecycle import JobKind
from noetl.domain.records import Job
from noetl.domain.wire import Outcome
from noetl.dsl.model import RetryPolicy
from noetl.engine import events
from noetl.errors import TemplateError
from noetl.plan import PlanStep
from noetl.templates import evaluate

if TYPE_CHECKING:
    from noetl.engine.unit import Unit

MAX_RETRY_DELAY = 7 * 86400  # seconds; a longer (or NaN, infinite) delay fails the step

Reason = Literal[
    "error",               # retry: the attempt failed and the policy runs it again
    "lease_expired",       # retry: the worker lost its lease; the job runs again at once
    "lease_expiries",      # no retry: the lease expired more often than allowed
    "execution_ended",     # no retry: the execution has ended meanwhile
    "no_policy",           # no retry: the step has no retry policy
    "attempts_exhausted",  # no retry: max_attempts attempts have run
    "final",               # no retry: the outcome says not to retry it
    "condition",           # no retry: stop_when held, or retry_when did not
    "bad_delay",           # no retry: the policy's delay is not a usable number of seconds
]


@dataclass(frozen=True)
class RetryDecision:
    """Whether a failed job runs again, why, and when."""

    retry: bool
    reason: Reason
    delay: float = 0.0  # seconds until the next attempt (a retry), or the unusable delay
    at: float = 0.0  # when the next attempt is due (a retry)
    note: str | None = None  # appended to the error message (a bad delay)


def _yes(policy: RetryPolicy) -> bool:
    return True


def _jitter() -> float:
    return random.uniform(0.5, 1.5)


def policy_of(ps: PlanStep, job: Job) -> RetryPolicy | None:
    """The retry policy of ``job``: a loop item's is its task's, any other job's its step's."""
    return ps.item_retry if job.kind == JobKind.ITEM else ps.retry


def retry_delay(policy: RetryPolicy, attempts: int, rand: float) -> float:
    """The policy's delay after attempt ``attempts`` failed; ``inf`` if it cannot compute one."""
    try:
        return float(policy.delay(attempts, rand))
    except (OverflowError, ValueError, TypeError):
        return float("inf")


def decide(policy: RetryPolicy | None, attempts: int, outcome: Mapping[str, Any] | None = None,
           *, now: float, lease_expired: bool = False, expiries: int = 0,
           max_expiries: int = 0, ended: bool = False,
           wanted: Callable[[RetryPolicy], bool] = _yes,
           jitter: Callable[[], float] = _jitter) -> RetryDecision:
    """Whether the job runs again after attempt ``attempts`` (1-based) ended without a result.

    ``lease_expired``: it ended because its lease ran out, the ``expiries``-th time (of at
    most ``max_expiries``); else it failed with ``outcome``. ``ended``: the execution has ended.
    ``wanted``: the policy's ``retry_when``/``stop_when`` (called only when attempts are left);
    ``jitter``: the factor of a jittered delay (called only for a retry)."""
    if lease_expired:
        if expiries > max_expiries:
            return RetryDecision(False, "lease_expiries")
        return RetryDecision(True, "lease_expired", delay=0.0, at=now)
    if ended:
        return RetryDecision(False, "execution_ended")
    if policy is None:
        return RetryDecision(False, "no_policy")
    if attempts >= policy.max_attempts:
        return RetryDecision(False, "attempts_exhausted")
    if outcome is not None and outcome.get("final"):
        return RetryDecision(False, "final")
    if not wanted(policy):
        return RetryDecision(False, "condition")
    delay = retry_delay(policy, attempts, jitter())
    if not 0 <= delay <= MAX_RETRY_DELAY:  # nan, inf, 1e300
        return RetryDecision(False, "bad_delay", delay=delay, note=(
            f" (not retried: the retry delay {delay!r} is not a number of seconds between 0 "
            f"and {MAX_RETRY_DELAY})"))
    return RetryDecision(True, "error", delay=delay, at=now + delay)


def should_retry(s: Unit, ps: PlanStep, policy: RetryPolicy, job: Job, outcome: Outcome,
                 message: str) -> bool:
    """The policy's ``stop_when`` and ``retry_when``, evaluated on the failed attempt (a
    condition that cannot be evaluated means no retry, with a warning event)."""
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
