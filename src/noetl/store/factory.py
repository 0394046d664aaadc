"""Open a store from a URL: ``sqlite:///path`` (default ``$NOETL_HOME/noetl.db``) or
``postgresql://...``."""

from __future__ import annotations

import os
from pathlib import Path

from noetl.store.base import Store


def noetl_home() -> Path:
    return Path(os.environ.get("NOETL_HOME") or Path.cwd() / ".noetl")


def default_store_url() -> str:
    return os.environ.get("NOETL_STORE_URL") or f"sqlite:///{noetl_home() / 'noetl.db'}"


def open_store(url: str | None = None) -> Store:
    url = url or default_store_url()
    if url.startswith("sqlite:"):
        from noetl.store.sqlite import SqliteStore

        return SqliteStore(url)
    if url.startswith(("postgresql:", "postgres:")):
        from noetl.store.postgres import PostgresStore

        return PostgresStore(url)
    raise ValueError(f"unknown store URL {url!r} (expected sqlite:///PATH or postgresql://...)")
