"""The HTTP API server (FastAPI): catalog, executions, events, the work queue for remote
workers, context rendering, credentials, health and metrics. Build it with
:func:`noetl.api.app.create_app`."""

from __future__ import annotations

from typing import Any


def create_app(store_url: str | None = None, **kwargs: Any) -> Any:
    from noetl.api.app import create_app as _create

    return _create(store_url, **kwargs)


__all__ = ["create_app"]
