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


# URL scheme prefixes -> the backend's module and class (imported when used)
BACKENDS: dict[tuple[str, ...], tuple[str, str]] = {
    ("sqlite:",): ("noetl.store.sqlite", "SqliteStore"),
    ("postgresql:", "postgres:"): ("noetl.store.postgres", "PostgresStore"),
}


def backend_for(url: str) -> type[Store]:
    """The store class for ``url`` (its ``capabilities`` can be asked before opening it)."""
    import importlib

    for prefixes, (module, name) in BACKENDS.items():
        if url.startswith(prefixes):
            cls: type[Store] = getattr(importlib.import_module(module), name)
            return cls
    raise ValueError(f"unknown store URL {url!r} (expected sqlite:///PATH or postgresql://...)")


def open_store(url: str | None = None, settings: Settings | None = None) -> Store:
    """The store at ``url`` (default: the settings' ``NOETL_STORE_URL``, else the embedded
    SQLite file under ``NOETL_HOME``). ``settings``: the process's (default: read from the
    environment now); the store keeps them (``store.settings``)."""
    settings = settings or Settings.from_env()
    url = url or settings.default_store_url()
    return backend_for(url)(url, settings=settings)
