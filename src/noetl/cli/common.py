"""Helpers shared by CLI commands: parsing --set/--payload, printing, exit codes."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer

EXIT_OK, EXIT_FAILED, EXIT_INVALID = 0, 1, 2


def parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def build_args(sets: list[str] | None, payload: str | None) -> dict[str, Any]:
    args: dict[str, Any] = {}
    if payload:
        raw = Path(payload[1:]).read_text() if payload.startswith("@") else payload
        try:
            value = json.loads(raw)
        except ValueError as exc:
            raise typer.BadParameter(f"--payload is not valid JSON: {exc}") from exc
        if not isinstance(value, dict):
            raise typer.BadParameter("--payload must be a JSON object")
        args.update(value)
    for item in sets or []:
        if "=" not in item:
            raise typer.BadParameter(f"--set expects key=value, got {item!r}")
        key, _, val = item.partition("=")
        target = args
        parts = key.split(".")
        for p in parts[:-1]:
            target = target.setdefault(p, {})
        target[parts[-1]] = parse_value(val)
    return args


def print_json(value: Any) -> None:
    from noetl.templates import json_default

    sys.stdout.write(json.dumps(value, default=json_default, indent=2, ensure_ascii=False) + "\n")


def exit_for(status: str) -> int:
    return EXIT_OK if status == "COMPLETED" else EXIT_FAILED


def fail(message: str, code: int = EXIT_FAILED) -> typer.Exit:
    sys.stderr.write(f"error: {message}\n")
    return typer.Exit(code)
