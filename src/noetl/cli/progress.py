"""Rich rendering of an execution: a live table while it runs, a summary when it ends, and the
``--json`` shape of ``run``, ``execute`` and ``status``."""

from __future__ import annotations

import time
from typing import Any

STYLE = {"COMPLETED": "green", "FAILED": "red", "RUNNING": "yellow", "QUEUED": "cyan",
         "PENDING": "dim", "SKIPPED": "dim", "CANCELLED": "magenta", "WAITING": "blue"}
TERMINAL = frozenset({"COMPLETED", "FAILED", "CANCELLED"})


def fmt_time(epoch: float | None) -> str:
    """Local date and time to the second ('' for none)."""
    if epoch is None:
        return ""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(epoch)))


def fmt_duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    s = max(0.0, float(seconds))
    if s < 1:
        return f"{s * 1000:.0f} ms"
    if s < 60:
        return f"{s:.2f} s" if s < 10 else f"{s:.1f} s"
    m, sec = divmod(round(s), 60)
    if m < 60:
        return f"{m} m {sec} s"
    return f"{m // 60} h {m % 60} m"


def elapsed(start: float | None, end: float | None, duration: float | None = None,
            now: float | None = None) -> float | None:
    """A duration, or for something still running the time since it started."""
    if duration is not None:
        return float(duration)
    if start is None:
        return None
    return (float(end) if end is not None else (now or time.time())) - float(start)


def styled(status: str) -> str:
    return f"[{STYLE.get(status, '')}]{status}[/]" if STYLE.get(status) else status


def header(desc: dict[str, Any]) -> str:
    """One line: path, version, start, end and duration (rich markup)."""
    from rich.markup import escape

    parts = [escape(str(desc.get("path") or ""))]
    if desc.get("version"):
        parts[0] += f" v{escape(str(desc['version']))}"
    if desc.get("start_time") is not None:
        parts.append(f"started {fmt_time(desc['start_time'])}")
    if desc.get("end_time") is not None:
        parts.append(f"ended {fmt_time(desc['end_time'])}")
    dur = elapsed(desc.get("start_time"), desc.get("end_time"), desc.get("duration"))
    if dur is not None:
        parts.append(f"duration {fmt_duration(dur)}")
    if desc.get("parent_execution_id"):
        parts.append(f"parent {desc['parent_execution_id']}")
    return " · ".join(p for p in parts if p)


def table(desc: dict[str, Any]) -> Any:
    """The steps as a rich Table, with the execution's path and times in the caption."""
    from rich.table import Table

    status = desc["status"]
    t = Table(title=f"execution {desc['execution_id']} {styled(status)}", title_justify="left",
              caption=header(desc) or None, caption_justify="left")
    t.add_column("step")
    t.add_column("status")
    t.add_column("attempts", justify="right")
    t.add_column("duration", justify="right")
    t.add_column("result / error", overflow="fold", max_width=80)
    now = time.time()
    for name, s in (desc.get("steps") or {}).items():
        st = s["status"]
        detail = ""
        if s.get("error"):
            err = s["error"]
            if isinstance(err, dict):  # the reason alone when the error names its template
                text = f"{err.get('type', '')}: {err.get('reason') or err.get('message', '')}"
            else:
                text = str(err)
            detail = f"[red]{_esc(text)}[/]"
        elif s.get("waiting"):  # why it is not done yet (noetl.engine.explain)
            why = s["waiting"]
            detail = f"[{'yellow' if why.get('stuck') else 'dim'}]{_esc(why['message'])}[/]"
        elif s.get("result") is not None:
            detail = _short(s["result"])
        loop = s.get("loop")
        if loop:
            detail = f"{loop.get('done', 0)}/{loop.get('total', 0)} items " + detail
        dur = elapsed(s.get("started_at"), s.get("ended_at"), s.get("duration"),
                      now if st not in TERMINAL and st != "SKIPPED" else None) \
            if s.get("started_at") is not None else None
        t.add_row(name, styled(st), str(s.get("attempts") or ""), fmt_duration(dur), detail)
    return t


def children_table(desc: dict[str, Any]) -> Any:
    """Sub-playbook executions, or None when there are none."""
    kids = desc.get("children") or []
    if not kids:
        return None
    from rich.table import Table

    t = Table("child execution", "path", "status", "started", "duration",
              title="sub-playbook executions", title_justify="left")
    for c in kids:
        t.add_row(str(c["execution_id"]), _esc(c.get("path") or ""), styled(c["status"]),
                  fmt_time(c.get("start_time")),
                  fmt_duration(elapsed(c.get("start_time"), c.get("end_time"), c.get("duration"))))
    return t


def render(desc: dict[str, Any]) -> Any:
    """Everything the terminal shows of an execution (the live display and ``status``)."""
    from rich.console import Group

    kids = children_table(desc)
    return Group(table(desc), kids) if kids is not None else table(desc)


def summary(desc: dict[str, Any]) -> dict[str, Any]:
    """The ``--json`` shape (docs/cli.md): the execution with its times, steps and children."""
    return {
        "execution_id": desc["execution_id"], "path": desc.get("path"),
        "version": desc.get("version"), "status": desc["status"],
        "result": desc.get("result"), "error": desc.get("error"),
        "parent_execution_id": desc.get("parent_execution_id"),
        "start_time": desc.get("start_time"), "end_time": desc.get("end_time"),
        "duration": desc.get("duration"),
        "steps": {n: {"status": s["status"], "result": s.get("result"), "error": s.get("error"),
                      "attempts": s.get("attempts", 0), "started_at": s.get("started_at"),
                      "ended_at": s.get("ended_at"), "duration": s.get("duration"),
                      **({"loop": s["loop"]} if s.get("loop") else {}),
                      **({"waiting": s["waiting"]} if s.get("waiting") else {})}
                  for n, s in (desc.get("steps") or {}).items()},
        "children": [{k: c.get(k) for k in ("execution_id", "path", "version", "status",
                                            "start_time", "end_time", "duration")}
                     for c in desc.get("children") or []],
        **({"plan_error": desc["plan_error"]} if desc.get("plan_error") else {}),
    }


def _esc(value: Any) -> str:
    from rich.markup import escape

    return escape(str(value))


def _short(value: Any, limit: int = 120) -> str:
    import json

    from noetl.templates import json_default

    text = json.dumps(value, default=json_default, ensure_ascii=False)
    return _esc(text if len(text) <= limit else text[: limit - 1] + "…")
