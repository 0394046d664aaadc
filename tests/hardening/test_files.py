"""noetl.db and its directory are private (issue 13, item 5)."""

from __future__ import annotations

import stat
from pathlib import Path

from noetl.store.factory import open_store


def test_sqlite_file_and_directory_are_private(tmp_path: Path) -> None:
    db = tmp_path / "home" / "noetl.db"
    store = open_store(f"sqlite:///{db}")
    with store.transaction() as tx:
        tx.register("t/x", "x", {})
    assert stat.S_IMODE(db.parent.stat().st_mode) == 0o700
    for p in (db, Path(f"{db}-wal")):
        assert stat.S_IMODE(p.stat().st_mode) == 0o600, p
