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


def _section(start: str, end: str) -> str:
    return CLI_DOC[CLI_DOC.index(start):CLI_DOC.index(end, CLI_DOC.index(start))]


def test_the_overview_and_the_contents_name_every_command() -> None:
    overview = _section("```text\nnoetl run FILE", "```\n\n- [Where state lives]")
    contents = _section("- [Where state lives]", "\n## ")
    top = [name.split()[1] for name, _ in COMMANDS if len(name.split()) == 2]
    missing = [n for n in top if not re.search(rf"^noetl {n}\b", overview, re.MULTILINE)]
    assert not missing, f"the overview block of docs/cli.md lacks {missing}"
    missing = [n for n in top if not re.search(rf"\[[^\]]*\b{n}\b[^\]]*\]\(#noetl-", contents)]
    assert not missing, f"the table of contents of docs/cli.md lacks {missing}"


def test_thread_defaults_are_the_code_s() -> None:
    from noetl.settings import THREADS_PER_CORE

    said = re.findall(r"`--worker-concurrency` threads, default ([^)]+)\)", CLI_DOC)
    assert said == [f"{THREADS_PER_CORE} per core"]


DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_node_id_is_described_as_the_code_chooses_it() -> None:
    """noetl.ids: each process takes the next value of the store's node_seq counter."""
    for doc in sorted(DOCS.glob("*.md")):
        for line in doc.read_text(encoding="utf-8").splitlines():
            if line.startswith("| `NOETL_NODE_ID`"):
                assert "node_seq" in line and "random" not in line, (doc.name, line)


def test_architecture_lists_every_worker_mode() -> None:
    import inspect

    from noetl.api import routes_workers

    listed = re.search(r"mode \(([^)]*)\)", inspect.getsource(routes_workers))
    assert listed, "GET /api/workers documents the modes"
    modes = re.findall(r'"(\w+)"', listed.group(1))
    assert set(modes) >= {"remote", "direct", "server", "local"}
    arch = (DOCS / "architecture.md").read_text(encoding="utf-8")
    row = next(line for line in arch.splitlines() if line.startswith("| `worker` |"))
    for mode in modes:
        assert f"`{mode}`" in row, mode
