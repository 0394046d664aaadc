"""Rich rendering of an execution: a live table while it runs, a summary when it ends."""

from __future__ import annotations

from typing import Any

STYLE = {"COMPLETED": "green", "FAILED": "red", "RUNNING": "yellow", "QUEUED": "cyan",
         "PENDING": "dim", "SKIPPED": "dim", "CANCELLED": "magenta", "WAITING": "blue"}


def table(desc: dict[str, Any]) -> Any:
    from rich.markup import escape
    from rich.table import Table

    status = desc["status"]
    t = Table(title=f"execution {desc['execution_id']} [{STYLE.get(status, '')}]{status}[/]",
              title_justify="left")
    t.add_column("step")
    t.add_column("status")
    t.add_column("attempts", justify="right")
    t.add_column("result / error", overflow="fold", max_width=80)
    for name, s in (desc.get("steps") or {}).items():
        st = s["status"]
        detail = ""
        if s.get("error"):
            err = s["error"]
            if isinstance(err, dict):  # the reason alone when the error names its template
                text = f"{err.get('type', '')}: {err.get('reason') or err.get('message', '')}"
            else:
                text = str(err)
            detail = f"[red]{escape(text)}[/]"
        elif s.get("waiting"):  # why it is not done yet (noetl.engine.explain)
            why = s["waiting"]
            detail = f"[{'yellow' if why.get('stuck') else 'dim'}]{escape(why['message'])}[/]"
        elif s.get("result") is not None:
            detail = _short(s["result"])
        loop = s.get("loop")
        if loop:
            detail = f"{loop.get('done', 0)}/{loop.get('total', 0)} items " + detail
        t.add_row(name, f"[{STYLE.get(st, '')}]{st}[/]", str(s.get("attempts") or ""), detail)
    return t


def _short(value: Any, limit: int = 120) -> str:
    import json

    from rich.markup import escape

    from noetl.templates import json_default

    text = json.dumps(value, default=json_default, ensure_ascii=False)
    return escape(text if len(text) <= limit else text[: limit - 1] + "…")
