"""The statement primitives every SQL mixin of the store relies on (:class:`SqlOps`), declared
once: :class:`noetl.store.sql.SqlTx` and its dialect subclasses provide them, and the mixins
for logs, workers and triggers only call them."""

from __future__ import annotations

from typing import Any


class SqlOps:
    """``_x`` runs a statement (named ``:params``), ``_xmany`` one statement over many rows,
    ``_all`` / ``_one`` fetch; ``for_update`` is the dialect's row lock (empty on SQLite)."""

    for_update = ""  # " FOR UPDATE" on PostgreSQL

    def _x(self, sql: str, params: dict[str, Any] | None = None) -> Any:
        raise NotImplementedError

    def _xmany(self, sql: str, rows: list[dict[str, Any]]) -> None:
        raise NotImplementedError

    def _all(self, sql: str, params: dict[str, Any] | None = None) -> list[Any]:
        raise NotImplementedError

    def _one(self, sql: str, params: dict[str, Any] | None = None) -> Any:
        raise NotImplementedError

    @property
    def _skip_locked(self) -> str:
        """`` FOR UPDATE SKIP LOCKED`` where rows lock, else nothing."""
        return self.for_update + " SKIP LOCKED" if self.for_update else ""
