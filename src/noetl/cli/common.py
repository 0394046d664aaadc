"""What every CLI command module shares: the ``noetl`` Typer app and its ``catalog`` group, the
common options, and helpers (parsing --set/--payload, printing, exit codes, a client or an
engine for --server / --store). Command modules import this, never :mod:`noetl.cli.main`
(which imports them), so the CLI has no import cycle."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer

EXIT_OK, EXIT_FAILED, EXIT_INVALID = 0, 1, 2

app = typer.Typer(help="NoETL: playbook orchestrator.", no_args_is_help=True,
                  pretty_exceptions_enable=False, add_completion=False)
catalog_app = typer.Typer(help="Register and list playbooks.", no_args_is_help=True)
app.add_typer(catalog_app, name="catalog")

StoreOpt = typer.Option(None, "--store", envvar="NOETL_STORE_URL",
                        help="Store URL (sqlite:///PATH or postgresql://...); default "
                             "$NOETL_HOME/noetl.db.")
ServerOpt = typer.Option(None, "--server", envvar="NOETL_SERVER_URL",
                         help="Talk to a NoETL server at this URL instead of opening the store.")
SetOpt = typer.Option(None, "--set", help="Workload override key=value (repeatable; JSON values).")
PayloadOpt = typer.Option(None, "--payload", help="Workload overrides as a JSON object (or @file).")
JsonOpt = typer.Option(False, "--json", help="Print one JSON object.")


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


def _client(server: str | None) -> Any:
    from noetl.client import CliClient

    return CliClient(server)


def _engine(store: str | None) -> Any:
    from noetl.engine.core import Engine
    from noetl.store import open_store

    return Engine(open_store(store))


def _eid(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise fail(f"not an execution id: {text!r}", EXIT_INVALID) from None
