"""Versioned schema migrations: numbered ``NNNN_name.sql`` files per dialect."""

from __future__ import annotations

from pathlib import Path

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
