"""Test helpers: run playbook text on a real store and read back its events."""

from __future__ import annotations

import textwrap
import time
from collections.abc import Callable
from typing import Any

from noetl.domain.records import Event
from noetl.dsl import parse_playbook
from noetl.local import LocalRunner

TERMINAL_EVENTS = ("execution_completed", "execution_failed", "execution_cancelled")


def run_yaml(text: str, store_url: str, args: dict[str, Any] | None = None,
             concurrency: int = 4, timeout: float = 30) -> tuple[dict[str, Any], list[Event]]:
    pb = parse_playbook(textwrap.dedent(text), "<test>")
    with LocalRunner(store_url, concurrency=concurrency) as runner:
        desc = runner.run(pb, args=args, timeout=timeout)
        eid = int(desc["execution_id"])
        with runner.store.read() as tx:
            events = tx.get_events(eid, 0, 100000)
    assert_one_terminal(events)
    return desc, events


def assert_one_terminal(events: list[Event]) -> None:
    terminal = [e for e in events if e.event_type in TERMINAL_EVENTS]
    assert len(terminal) == 1, [e.event_type for e in terminal]


def types_for(events: list[Event], node: str) -> list[str]:
    return [e.event_type for e in events if e.node_name == node]


def wait_until(fn: Callable[[], Any], timeout: float, what: str = "a condition",
               interval: float = 0.05) -> Any:
    """Poll ``fn`` until it returns something true (returned), else fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what} (last: {last!r})")


class FakeClock:
    """Time that moves only when told to."""

    def __init__(self, t: float = 1_000.0):
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds
