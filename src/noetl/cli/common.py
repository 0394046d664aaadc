"""Helpers shared by CLI commands: parsing --set/--payload, printing, exit codes.

Typer is not imported here: ``noetl run``'s fast path (:mod:`noetl.cli.run_cmd`) uses these
helpers without loading it. The two helpers that make Typer exceptions import it when called,
from Typer commands only (Typer is loaded by then).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import typer

    from noetl.client import CliClient
    from noetl.engine.core import Engine

EXIT_OK, EXIT_FAILED, EXIT_INVALID = 0, 1, 2

class ArgsError(ValueError):
    """A malformed ``--set`` or ``--payload``."""


def parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_args(sets: list[str] | None, payload: str | None) -> dict[str, Any]:
    """The workload overrides of ``--payload`` (JSON object or @file) and ``--set key=value``
    (dotted keys nest; values parsed as JSON when they are JSON); raises :class:`ArgsError`."""
    args: dict[str, Any] = {}
    if payload:
        raw = Path(payload[1:]).read_text() if payload.startswith("@") else payload
        try:
            value = json.loads(raw)
        except ValueError as exc:
            raise ArgsError(f"--payload is not valid JSON: {exc}") from exc
        if not isinstance(value, dict):
            raise ArgsError("--payload must be a JSON object")
        args.update(value)
    for item in sets or []:
        if "=" not in item:
            raise ArgsError(f"--set expects key=value, got {item!r}")
        key, _, val = item.partition("=")
        target = args
        parts = key.split(".")
        for p in parts[:-1]:
            target = target.setdefault(p, {})
        target[parts[-1]] = parse_value(val)
    return args


def build_args(sets: list[str] | None, payload: str | None) -> dict[str, Any]:
    """:func:`parse_args` for Typer commands: a malformed option is Typer's usage error."""
    import typer  # Typer commands only (see the module docstring)

    try:
        return parse_args(sets, payload)
    except ArgsError as exc:
        raise typer.BadParameter(str(exc)) from exc


def print_json(value: Any) -> None:
    from noetl.templates import json_default

    sys.stdout.write(json.dumps(value, default=json_default, indent=2, ensure_ascii=False) + "\n")


def exit_for(status: str) -> int:
    return EXIT_OK if status == "COMPLETED" else EXIT_FAILED


def fail(message: str, code: int = EXIT_FAILED) -> typer.Exit:
    import typer  # Typer commands only (see the module docstring)

    sys.stderr.write(f"error: {message}\n")
    return typer.Exit(code)


def _client(server: str | None) -> CliClient:
    from noetl.client import CliClient

    return CliClient(server)


def _engine(store: str | None) -> Engine:
    from noetl.engine.core import Engine
    from noetl.store import open_store

    return Engine(open_store(store))


def _eid(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise fail(f"not an execution id: {text!r}", EXIT_INVALID) from None
