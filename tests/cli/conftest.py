"""Fixtures of the CLI tests: a real API server on loopback (for ``--server``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api.conftest import Running, start_server


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Running]:
    """A uvicorn server over a fresh SQLite store, with no worker."""
    r = start_server(f"sqlite:///{tmp_path / 'server.db'}")
    try:
        yield r
    finally:
        r.stop()
