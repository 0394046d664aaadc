"""Real API servers (uvicorn on loopback, in a thread) for the trigger tests."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.conftest import serve  # noqa: F401 - the real-server fixture, shared


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Any, noetl_home: Any,
              monkeypatch: pytest.MonkeyPatch) -> str:
    """The test once on SQLite and once on a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'noetl.db'}"
    from cryptography.fernet import Fernet

    monkeypatch.setenv("NOETL_ENCRYPTION_KEY", Fernet.generate_key().decode())
    return str(request.getfixturevalue("fresh_pg_url"))
