"""How the CLI prints an execution's outcome: one JSON object (``--json``) or, for people, a Rich
table and the error explained. Loads Rich only when it prints the table."""

from __future__ import annotations

from typing import Any

from noetl.cli.common import print_json


def summary(desc: dict[str, Any]) -> dict[str, Any]:
    """The ``--json`` shape: {execution_id, status, result, error, steps}; a step that waits
    for something while the execution runs also has ``waiting`` {reason, message, stuck}."""
    return {
        "execution_id": desc["execution_id"], "status": desc["status"],
        "result": desc.get("result"), "error": desc.get("error"),
        "steps": {n: {"status": s["status"], "result": s.get("result"), "error": s.get("error"),
                      "attempts": s.get("attempts", 0),
                      **({"waiting": s["waiting"]} if s.get("waiting") else {})}
                  for n, s in (desc.get("steps") or {}).items()},
    }


def show_error(desc: dict[str, Any]) -> None:
    from noetl.cli.failure import print_error  # only a failed execution has an error to explain

    print_error(desc)


def show(desc: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(summary(desc))
        return
    from rich.console import Console  # Rich only for the table: --json never loads it

    from noetl.cli.progress import table

    Console().print(table(desc))
    show_error(desc)
