"""Stores: SQLite (embedded default) and PostgreSQL, behind :class:`noetl.store.base.Store`."""

from noetl.store.base import Store, Tx
from noetl.store.factory import default_store_url, open_store

__all__ = ["Store", "Tx", "default_store_url", "open_store"]
