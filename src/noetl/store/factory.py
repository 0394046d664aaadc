"""Open a store from a URL: ``sqlite:///path`` (default ``$NOETL_HOME/noetl.db``) or
``postgresql://...``."""

from __future__ import annotations

from pathlib import Path

from noetl.settings import Settings
from noetl.store.base import Store


def noetl_home(settings: Settings | None = None) -> Path:
    return (settings or Settings.from_env()).home_dir()


def default_store_url(settings: Settings | None = None) -> str:
    return (settings or Settings.from_env()).default_store_url()


def open_store(url: str | None = None, settings: Settings | None = None) -> Store:
    """The store at ``url`` (default: the settings' ``NOETL_STORE_URL``, else the embedded
    SQLite file under ``NOETL_HOME``). ``settings``: the process's (default: read from the
    environment now); the store keeps them (``store.settings``)."""
    settings = settings or Settings.from_env()
    url = url or settings.default_store_url()
    if url.startswith("sqlite:"):
        from noetl.store.sqlite import SqliteStore

        return SqliteStore(url, settings)
    if url.startswith(("postgresql:", "postgres:")):
        from noetl.store.postgres import PostgresStore

        return PostgresStore(url, settings=settings)
    raise ValueError(f"unknown store URL {url!r} (expected sqlite:///PATH or postgresql://...)")
