"""docs/cli.md names every command and every option the `noetl` program has."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import typer

from noetl.cli.main import app

CLI_DOC = (Path(__file__).resolve().parents[2] / "docs" / "cli.md").read_text(encoding="utf-8")


def _walk(cmd: Any, prefix: str) -> Iterator[tuple[str, Any]]:
    """(full name, command) for the program and every sub-command (Typer may vendor click, so
    this goes by attributes rather than click's classes)."""
    yield prefix, cmd
    if hasattr(cmd, "commands"):
        for name, sub in cmd.commands.items():
            yield from _walk(sub, f"{prefix} {name}")


COMMANDS = list(_walk(typer.main.get_command(app), "noetl"))


def test_cli_has_the_documented_core_commands() -> None:
    names = {n for n, _ in COMMANDS}
    for core in ("noetl run", "noetl validate", "noetl execute", "noetl status", "noetl events",
                 "noetl catalog register", "noetl catalog list"):
        assert core in names


def test_every_command_and_option_is_documented() -> None:
    missing = []
    for name, cmd in COMMANDS:
        if hasattr(cmd, "commands"):
            continue
        if f"`{name}`" not in CLI_DOC and not re.search(rf"^{re.escape(name)}( |$)", CLI_DOC,
                                                         re.MULTILINE):
            missing.append(name)
        for p in cmd.params:
            if getattr(p, "param_type_name", None) == "option":
                for opt in p.opts + p.secondary_opts:
                    if opt != "--help" and opt not in CLI_DOC:
                        missing.append(f"{name} {opt}")
    assert not missing, f"docs/cli.md does not mention: {missing}"
