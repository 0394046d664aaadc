"""Versioned schema migrations: numbered ``NNNN_name.sql`` files per dialect, applied by one
runner (:func:`apply_migrations`) for every backend."""

from __future__ import annotations

from pathlib import Path
from typing import Any

# beside this module (package data); read with pathlib: importlib.resources and the zip
# support it loads would cost every `noetl run` a few milliseconds more
MIGRATIONS = Path(__file__).parent / "migrations"


def migrations(dialect: str) -> list[tuple[int, str, str]]:
    """(version, name, sql) for every migration of ``dialect``, in order."""
    base = MIGRATIONS / dialect
    out = []
    for f in base.iterdir():
        if f.name.endswith(".sql"):
            version = int(f.name.split("_", 1)[0])
            out.append((version, f.name, f.read_text(encoding="utf-8")))
    return sorted(out)


def split_sql(script: str) -> list[str]:
    """Split a migration script on ``;`` at line ends (migrations contain no procedural code)."""
    parts, buf = [], []
    for line in script.splitlines():
        if line.strip().startswith("--"):
            continue
        buf.append(line)
        if line.rstrip().endswith(";"):
            stmt = "\n".join(buf).strip().rstrip(";")
            if stmt:
                parts.append(stmt)
            buf = []
    tail = "\n".join(buf).strip()
    if tail:
        parts.append(tail)
    return parts


def apply_migrations(conn: Any, dialect: str, *, placeholder: str, applied_at: str) -> list[str]:
    """Apply, in order, every migration of ``dialect`` that ``schema_version`` does not list
    yet, and record each; return the names applied.

    Runs inside the caller's transaction, which also holds whatever keeps two processes from
    migrating at once (SQLite: ``BEGIN IMMEDIATE``; PostgreSQL: an advisory lock). The store
    says how its driver spells a parameter (``placeholder``) and the ``applied_at`` column.
    ``conn``: a DB-API style connection (``execute(sql[, params])`` returning rows)."""
    conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, "
                 f"name TEXT NOT NULL, applied_at {applied_at})")
    done = {r[0] for r in conn.execute("SELECT version FROM schema_version")}
    applied = []
    for version, name, sql in migrations(dialect):
        if version in done:
            continue
        for stmt in split_sql(sql):
            conn.execute(stmt)  # no parameters: a '%' in a migration is literal
        conn.execute(f"INSERT INTO schema_version (version, name) VALUES ({placeholder}, "
                     f"{placeholder})", (version, name))
        applied.append(name)
    return applied
