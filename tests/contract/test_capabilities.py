"""Dialect decisions stay inside the store: each backend declares what it can do
(``Store.capabilities``, ``Store.retryable``, ``Store.local_dir``), nothing outside
``noetl.store`` asks which database it is, and one migration runner serves every backend."""

from __future__ import annotations

import ast
import sqlite3
from pathlib import Path

import pytest

from noetl.store import Store
from noetl.store.base import Capabilities
from noetl.store.factory import BACKENDS, backend_for
from noetl.store.migrate import apply_migrations, migrations

SRC = Path(__file__).resolve().parents[2] / "src" / "noetl"


def test_every_backend_declares_its_capabilities() -> None:
    for prefixes in BACKENDS:
        cls = backend_for(prefixes[0] + "//x")
        assert isinstance(cls.capabilities, Capabilities), cls
        assert cls.capabilities.poll_seconds > 0
        assert cls.capabilities.multi_process or cls.capabilities.note  # says why not
    assert backend_for("sqlite:///a.db").capabilities.key_file
    assert backend_for("postgresql://h/db").capabilities.multi_process
    with pytest.raises(ValueError, match="unknown store URL 'mysql://x'"):
        backend_for("mysql://x")


def test_an_open_store_answers_for_itself(store: Store) -> None:
    caps = type(store).capabilities
    assert store.capabilities is caps
    assert not store.retryable(ValueError("not a database error"))
    if caps.key_file:  # an embedded store: its key file may sit beside it
        assert store.local_dir() is not None
    else:
        assert store.local_dir() is None


def test_nothing_outside_the_store_asks_for_the_dialect() -> None:
    found = []
    for p in sorted(SRC.rglob("*.py")):
        if p.relative_to(SRC).parts[0] == "store":
            continue
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.Attribute) and node.attr == "dialect":
                found.append(f"{p.relative_to(SRC)}:{node.lineno}")
    assert not found, f"dialect checks outside noetl.store: {found}"


def test_one_migration_runner_applies_each_migration_once(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "m.db", isolation_level=None)
    try:
        names = apply_migrations(conn, "sqlite", placeholder="?", applied_at="TEXT")
        assert names == [name for _, name, _ in migrations("sqlite")]
        assert apply_migrations(conn, "sqlite", placeholder="?", applied_at="TEXT") == []
        got = [r[0] for r in conn.execute("SELECT name FROM schema_version ORDER BY version")]
        assert got == names
    finally:
        conn.close()
