"""The statement primitives every SQL mixin of the store relies on (:class:`SqlOps`), declared
once: :class:`noetl.store.sql.SqlTx` and its dialect subclasses provide them, and the mixins
for logs, workers and triggers only call them."""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Any

PARAM = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")  # a ``:name`` parameter (not a ``::`` cast)
IN_TREE = " AND execution_id IN (SELECT id FROM tree)"  # a queue row of the executions below


def tree_cte(roots: Collection[int], lateral: bool = False) -> tuple[str, dict[str, Any]]:
    """``tree(id) AS (...)`` (for ``WITH RECURSIVE``): the ids of ``roots`` and of every
    execution below them (sub-playbook children, by ``parent_execution_id``), with its
    parameters; :data:`IN_TREE` restricts a ``queue`` query to their rows.

    ``lateral`` (PostgreSQL): each level's children are found through the
    ``parent_execution_id`` index by a LATERAL subquery (OFFSET 0 keeps it from being
    flattened). Joined, PostgreSQL took a level for ten rows and hashed the whole execution
    table for it: every lease of ``noetl run`` on a database with history scanned every
    execution (21 ms at 21,500). SQLite looks each level up by the index either way."""
    names = [f"root{i}" for i in range(len(roots))]
    below = ("SELECT k.execution_id FROM tree t, LATERAL (SELECT e.execution_id FROM "
             "execution e WHERE e.parent_execution_id = t.id OFFSET 0) AS k" if lateral else
             "SELECT e.execution_id FROM execution e JOIN tree t ON e.parent_execution_id = t.id")
    sql = ("tree(id) AS (SELECT execution_id FROM execution WHERE execution_id IN ("
           + (", ".join(f":{n}" for n in names) or "NULL") + f") UNION ALL {below})")
    return sql, {n: int(r) for n, r in zip(names, roots, strict=True)}


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
