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


def read_value(text: str, option: str) -> str:
    """The text of an option that takes a value or ``@file``: the file's content for
    ``@file``; raises :class:`ArgsError` naming the option and the file when it cannot be read
    (missing, a folder, no permission, not UTF-8)."""
    if not text.startswith("@"):
        return text
    path = Path(text[1:])
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ArgsError(f"{option}: cannot read file '{path}': {reason}") from None


def parse_args(sets: list[str] | None, payload: str | None) -> dict[str, Any]:
    """The workload overrides of ``--payload`` (JSON object or @file) and ``--set key=value``
    (dotted keys nest, each part non-empty; values parsed as JSON when they are JSON); raises
    :class:`ArgsError`."""
    args: dict[str, Any] = {}
    if payload:
        raw = read_value(payload, "--payload")
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
        parts = key.split(".")
        if not all(p.strip() for p in parts):
            raise ArgsError(f"--set expects key=value with a non-empty key (a.b for a nested "
                            f"one), got {item!r}")
        target = args
        for p in parts[:-1]:
            target = target.setdefault(p, {})
            if not isinstance(target, dict):
                raise ArgsError(f"--set {item!r}: {p!r} is already set to a value that is not "
                                "an object")
        target[parts[-1]] = parse_value(val)
    return args


def concurrency_problem(value: int | None) -> str | None:
    """Why a ``-c/--concurrency`` value is refused, or None. The fast path of ``noetl run``
    leaves a refused value to Typer, whose commands check it with the callbacks of
    :mod:`noetl.cli.app` (which call this): both refuse the same values, with one message."""
    return None if value is None or value >= 1 else f"must be at least 1, got {value}"


def timeout_problem(value: float | None) -> str | None:
    """Why a ``--timeout`` value is refused (0, negative, NaN), or None (see
    :func:`concurrency_problem`)."""
    return None if value is None or value > 0 else f"must be more than 0 seconds, got {value:g}"


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
