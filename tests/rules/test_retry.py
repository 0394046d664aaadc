"""The retry decision (noetl.engine.retry.decide), pure: no store, the clock and the jitter
parameters; policies as the DSL parses them from YAML."""

from __future__ import annotations

import math
import textwrap

import pytest

from noetl.domain.lifecycle import JobKind
from noetl.domain.records import Job
from noetl.dsl import parse_playbook
from noetl.dsl.model import RetryPolicy
from noetl.engine.retry import MAX_RETRY_DELAY, decide, policy_of
from noetl.plan import Plan, compile_plan
from tests.helpers import FakeClock

PLAYBOOK = """
    apiVersion: noetl.io/v1
    kind: Playbook
    metadata: {name: retries}
    workflow:
      - step: start
        type: python
        code: |
          def main():
              return 1
        retry: {max_attempts: 4, initial_delay: 2, backoff_multiplier: 3, max_delay: 30,
                jitter: false}
        next: [{step: each}]
      - step: each
        type: iterator
        collection: [1, 2]
        element: x
        task:
          type: python
          code: |
            def main(x):
                return x
          retry: {max_attempts: 2, initial_delay: 0.5}
        next: [{step: plain}]
      - step: plain
        type: python
        code: |
          def main():
              return 2
"""


@pytest.fixture(scope="module")
def plan() -> Plan:
    return compile_plan(parse_playbook(textwrap.dedent(PLAYBOOK), "<test>"))


def _job(step: str, kind: JobKind = JobKind.STEP, attempts: int = 1) -> Job:
    return Job(queue_id=1, execution_id=1, step=step, run=1, kind=kind, attempts=attempts)


def _error(**more: object) -> dict[str, object]:
    return {"status": "error", "error": {"message": "boom", "type": "ValueError"}, **more}


def test_a_job_has_its_steps_policy_and_a_loop_item_its_tasks(plan: Plan) -> None:
    start, each = plan.step("start"), plan.step("each")
    assert policy_of(start, _job("start")) == RetryPolicy(
        max_attempts=4, initial_delay=2.0, backoff_multiplier=3.0, max_delay=30.0, jitter=False)
    item = policy_of(each, _job("each", JobKind.ITEM))
    assert item is not None and item.max_attempts == 2 and item.initial_delay == 0.5
    assert policy_of(each, _job("each", JobKind.SAVE)) is None  # the loop step has none
    assert policy_of(plan.step("plain"), _job("plain")) is None


def test_attempts_run_until_max_attempts_with_backoff_capped_at_max_delay(plan: Plan) -> None:
    policy = policy_of(plan.step("start"), _job("start"))
    clock = FakeClock()
    got = []
    for attempt in (1, 2, 3):
        d = decide(policy, attempt, _error(), now=clock())
        assert d.retry and d.reason == "error"
        assert d.at == clock() + d.delay
        got.append(d.delay)
        clock.advance(d.delay)
    assert got == [2.0, 6.0, 18.0]  # 2 · 3^(attempt-1), no jitter
    last = decide(policy, 4, _error(), now=clock())
    assert not last.retry and last.reason == "attempts_exhausted"
    capped = RetryPolicy(max_attempts=10, initial_delay=2, backoff_multiplier=3, max_delay=30,
                         jitter=False)
    assert decide(capped, 4, _error(), now=0).delay == 30.0  # 54 capped


def test_jitter_scales_the_delay_and_is_drawn_only_for_a_retry() -> None:
    policy = RetryPolicy(max_attempts=3, initial_delay=4, backoff_multiplier=2, jitter=True)
    draws: list[float] = []

    def jitter() -> float:
        draws.append(0.5)
        return 0.5

    assert decide(policy, 2, _error(), now=100, jitter=jitter).delay == 4.0  # 8 · 0.5
    assert decide(policy, 3, _error(), now=100, jitter=jitter).reason == "attempts_exhausted"
    assert decide(policy, 1, _error(final=True), now=100, jitter=jitter).reason == "final"
    assert draws == [0.5]
    steady = RetryPolicy(max_attempts=3, initial_delay=4, jitter=False)
    assert decide(steady, 1, _error(), now=100, jitter=lambda: 0.5).delay == 4.0


def test_no_policy_no_retry_and_an_ended_execution_never_retries(plan: Plan) -> None:
    d = decide(None, 1, _error(), now=0)
    assert (d.retry, d.reason) == (False, "no_policy")
    policy = policy_of(plan.step("start"), _job("start"))
    d = decide(policy, 1, _error(), now=0, ended=True)
    assert (d.retry, d.reason) == (False, "execution_ended")


def test_an_outcome_marked_final_is_not_retried_whatever_the_policy() -> None:
    policy = RetryPolicy(max_attempts=5, initial_delay=0)
    assert decide(policy, 1, _error(), now=0).retry
    d = decide(policy, 1, _error(final=True), now=0)  # e.g. ToolError(retryable=False)
    assert (d.retry, d.reason) == (False, "final")


def test_retry_when_and_stop_when_are_asked_only_while_attempts_are_left() -> None:
    policy = RetryPolicy(max_attempts=2, initial_delay=1, jitter=False, retry_when="{{ 1 }}")
    asked: list[RetryPolicy] = []

    def no(p: RetryPolicy) -> bool:
        asked.append(p)
        return False

    d = decide(policy, 1, _error(), now=0, wanted=no)
    assert (d.retry, d.reason) == (False, "condition") and asked == [policy]
    assert decide(policy, 2, _error(), now=0, wanted=no).reason == "attempts_exhausted"
    assert decide(policy, 1, _error(final=True), now=0, wanted=no).reason == "final"
    assert len(asked) == 1
    assert decide(policy, 1, _error(), now=0, wanted=lambda p: True).retry


@pytest.mark.parametrize("policy", [
    RetryPolicy(max_attempts=5, initial_delay=MAX_RETRY_DELAY + 1, max_delay=1e12, jitter=False),
    RetryPolicy(max_attempts=5, initial_delay=1, max_delay=math.nan, jitter=False),
    RetryPolicy(max_attempts=5, initial_delay=1, backoff_multiplier=1e308, max_delay=1e12,
                jitter=False),  # 1e308 ** 2 overflows
    RetryPolicy(max_attempts=5, initial_delay=-5, jitter=False),
], ids=["beyond-a-week", "nan", "overflow", "negative"])
def test_a_delay_that_is_no_number_of_seconds_fails_the_step_saying_so(
        policy: RetryPolicy) -> None:
    d = decide(policy, 3, _error(), now=0)
    assert not d.retry and d.reason == "bad_delay"
    assert d.note is not None and "not retried: the retry delay" in d.note
    assert f"between 0 and {MAX_RETRY_DELAY}" in d.note
    assert repr(d.delay) in d.note


def test_a_lost_lease_runs_again_at_once_until_it_expired_too_often() -> None:
    clock = FakeClock(500.0)
    for n in (1, 2, 3):
        d = decide(None, n, now=clock(), lease_expired=True, expiries=n, max_expiries=3)
        assert (d.retry, d.reason, d.delay, d.at) == (True, "lease_expired", 0.0, 500.0)
    d = decide(None, 4, now=clock(), lease_expired=True, expiries=4, max_expiries=3)
    assert (d.retry, d.reason) == (False, "lease_expiries")


def test_a_lost_lease_is_not_a_failed_attempt_the_policy_counts() -> None:
    """With the same attempts, an error is exhausted while a lost lease still runs again."""
    policy = RetryPolicy(max_attempts=1, initial_delay=10, jitter=False)
    assert decide(policy, 1, _error(), now=0).reason == "attempts_exhausted"
    d = decide(policy, 1, None, now=7, lease_expired=True, expiries=1, max_expiries=3)
    assert d.retry and d.at == 7 and d.delay == 0.0
    # its delay is none of the policy's backoff, and a retry_when is not asked
    d = decide(policy, 1, None, now=7, lease_expired=True, expiries=1, max_expiries=3,
               wanted=lambda p: False)
    assert d.retry
