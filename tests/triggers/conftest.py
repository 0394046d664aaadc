"""Real API servers (uvicorn on loopback, in a thread) for the trigger tests."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.api.conftest import Running, start_server


@pytest.fixture
def serve() -> Iterator[Callable[..., Running]]:
    started: list[Running] = []

    def go(store_url: str, **kwargs: Any) -> Running:
        r = start_server(store_url, **kwargs)
        started.append(r)
        return r

    yield go
    for r in started:
        r.stop()


def wait_for(cond: Callable[[], Any], timeout: float, what: str, tick: float = 0.05) -> Any:
    """Poll ``cond`` until it returns something truthy; fail naming ``what`` at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        got = cond()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(tick)
