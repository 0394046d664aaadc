"""How the CLI tells a person why an execution failed: a few lines in the user's terms.

The error record (see :mod:`noetl.errors`) keeps the whole traceback, engine frames included;
the CLI shows what the user wrote instead: the step, the field and the template of a template
error, the python step's own frames at the YAML file's lines, and where the whole traceback
can be read.
"""

from __future__ import annotations

from typing import Any

TEMPLATE_LINES = 3  # lines of a (multi-line) template shown
TRACEBACK_LINES = 12  # lines of a python step's own traceback shown (the last ones)


def headline(err: dict[str, Any]) -> str:
    """One line: where (step, field or YAML line) and what."""
    where = f"error in step {err['step']}" if err.get("step") else "error"
    if err.get("field"):
        where += f", field {err['field']}"
    if err.get("at"):
        where += f" ({err['at']})"
    what = err.get("reason") if err.get("template") is not None else None
    return f"{where}: {err.get('type')}: {what or err.get('message')}"


def error_lines(err: dict[str, Any], execution_id: Any = None) -> list[str]:
    """The lines printed for a failed execution's error: :func:`headline`, then the template
    (a template error) or the step's own traceback (a python error), then where the whole
    traceback is kept. Never the engine's frames."""
    lines = [headline(err)]
    template = err.get("template")
    if template is not None:
        text = str(template).rstrip("\n").splitlines() or [""]
        lines.append(f"  template: {text[0]}")
        lines += [f"            {t}" for t in text[1:TEMPLATE_LINES]]
        if len(text) > TEMPLATE_LINES:
            lines.append(f"            … ({len(text) - TEMPLATE_LINES} more lines)")
    user_tb = str(err.get("user_traceback") or "").rstrip("\n").splitlines()
    if user_tb:
        if len(user_tb) > TRACEBACK_LINES:
            cut = len(user_tb) - TRACEBACK_LINES + 1
            user_tb = [f"  … ({cut} lines above)", *user_tb[cut:]]
        lines += user_tb
    if err.get("traceback") and execution_id is not None:
        lines.append(f"  (the whole traceback is kept: noetl status {execution_id} --json)")
    return lines


def print_error(desc: dict[str, Any]) -> None:
    """Print the execution's error to stderr (the step table goes to stdout)."""
    import sys

    err = desc.get("error")
    if not err:
        return
    if not isinstance(err, dict):
        sys.stderr.write(f"error: {err}\n")
        return
    sys.stderr.write("\n".join(error_lines(err, desc.get("execution_id"))) + "\n")
