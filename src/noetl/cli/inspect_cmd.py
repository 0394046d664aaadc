"""Day-two commands: list executions, cancel one, show a stored playbook version, diff two.
Each works on the store (``--store``, default ``$NOETL_HOME/noetl.db``) or on a server."""

from __future__ import annotations

import difflib
import sys
import time
from typing import Any

import typer

from noetl.cli.app import JsonOpt, ServerOpt, StoreOpt, app, catalog_app
from noetl.cli.common import EXIT_INVALID, _client, _eid, _engine, fail, print_json

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def since_epoch(text: str | None, now: float | None = None) -> float | None:
    """``--since``: an age (``90s``, ``15m``, ``2h``, ``7d``, ``1w``), epoch seconds, or an ISO
    8601 date/time (local time unless it names a zone)."""
    if text is None or not text.strip():
        return None
    t = text.strip()
    unit = UNITS.get(t[-1:].lower())
    if unit and t[:-1].replace(".", "", 1).isdigit():
        return (now if now is not None else time.time()) - float(t[:-1]) * unit
    try:
        return float(t)
    except ValueError:
        pass
    import datetime as dt

    try:
        return dt.datetime.fromisoformat(t.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise fail(f"--since: expected an age like 30m, 2h or 7d, epoch seconds, or an ISO "
                   f"date/time, got {text!r}", EXIT_INVALID) from None


@app.command()
def executions(status: str = typer.Option(None, "--status", "-s",
                                          help="Only this status (RUNNING, FAILED, ...)."),
               path: str = typer.Option(None, "--path", help="Only this playbook path (exact)."),
               search: str = typer.Option(None, "--search", "-q",
                                          help="Free text: part of the path or of the error, "
                                               "or the start of the execution id."),
               since: str = typer.Option(None, "--since",
                                         help="Started at most this long ago (30m, 2h, 7d) or "
                                              "after this time (ISO 8601 or epoch)."),
               limit: int = typer.Option(20, "--limit", "-n", min=1, max=1000),
               store: str = StoreOpt, server: str = ServerOpt, as_json: bool = JsonOpt) -> None:
    """List executions, newest first."""
    from noetl.domain.lifecycle import StepStatus  # the statuses the UI lists, as the API

    if status is not None and status.upper() not in StepStatus.__members__:
        raise fail(f"--status: unknown status {status!r} (one of "
                   f"{', '.join(StepStatus.__members__)})", EXIT_INVALID)
    after = since_epoch(since)
    if server:
        page = _client(server).executions(status=status, path=path, q=search, since=after,
                                          limit=limit)
        items, total = page["items"], page["total"]
    else:
        with _engine(store).store.read() as tx:
            rows, total = tx.list_executions(status=status, path=path, limit=limit, since=after,
                                             query=search)
        items = [r.to_dict() for r in rows]
    if as_json:
        print_json(items)
        return
    _print_executions(items, total)


def _print_executions(items: list[dict[str, Any]], total: int) -> None:
    from rich.markup import escape
    from rich.table import Table

    from noetl.cli.follow import console
    from noetl.cli.progress import elapsed, fmt_duration, fmt_time, styled

    t = Table(caption=f"{len(items)} of {total}" if total > len(items) else None,
              caption_justify="left")
    t.add_column("execution", no_wrap=True)
    t.add_column("playbook", overflow="fold", min_width=10)
    t.add_column("status", no_wrap=True)
    t.add_column("started", no_wrap=True)
    t.add_column("duration", justify="right", no_wrap=True)
    errors = [_error_text(x.get("error")) for x in items]
    if any(errors):
        t.add_column("error", overflow="fold")
    today = time.strftime("%Y-%m-%d ")
    for x, err in zip(items, errors, strict=True):
        started = fmt_time(x.get("start_time"))  # the time today, else the date
        row = [x["execution_id"],
               escape(x["path"]) + (f" v{x['version']}" if x.get("version") else ""),
               styled(x["status"]),
               started.removeprefix(today) if started.startswith(today) else started[:10],
               fmt_duration(elapsed(x.get("start_time"), x.get("end_time"), x.get("duration")))]
        if any(errors):
            row.append(escape(err[:120]))
        t.add_row(*row)
    console().print(t)


def _error_text(err: Any) -> str:
    if isinstance(err, dict):
        return f"{err.get('type', '')}: {err.get('message', '')}"
    return str(err or "")


@app.command()
def cancel(execution_id: str = typer.Argument(...), store: str = StoreOpt,
           server: str = ServerOpt, as_json: bool = JsonOpt) -> None:
    """Cancel an execution and its sub-playbook executions (a finished one is left as it is)."""
    from noetl.errors import NotFound

    if server:
        c = _client(server)
        before = c.execution(execution_id)["status"]
        after = c.cancel(execution_id)
    else:
        eng = _engine(store)
        eid = _eid(execution_id)
        try:
            before = eng.describe(eid, with_steps=False)["status"]
            eng.cancel(eid)
        except NotFound as exc:
            raise fail(str(exc)) from None
        after = eng.describe(eid, with_steps=False)
    if as_json:
        print_json(after)
    elif after["status"] == "CANCELLED" and before != "CANCELLED":
        sys.stdout.write(f"execution {after['execution_id']} CANCELLED (was {before})\n")
    else:
        sys.stdout.write(f"execution {after['execution_id']} already ended {after['status']}: "
                         "nothing to cancel\n")


def _version_arg(text: str | None, what: str) -> int | None:
    if text is None or text == "latest":
        return None
    if not text.isdigit():
        raise fail(f"{what}: expected a version number or 'latest', got {text!r}", EXIT_INVALID)
    return int(text)


def _entry(path: str, version: int | None, store: str | None,
           server: str | None) -> dict[str, Any]:
    if server:
        out: dict[str, Any] = _client(server).catalog_entry(path, version or "latest")
        return out
    with _engine(store).store.read() as tx:
        entry = tx.get_catalog(path=path, version=version)
    if entry is None:
        raise fail(f"playbook '{path}'" + (f" version {version}" if version else "") +
                   " not found")
    return entry.to_dict(with_content=True)


@catalog_app.command("show")
def catalog_show(path: str = typer.Argument(..., help="Catalog path."),
                 version: str = typer.Option("latest", "--version", "-v",
                                             help="A version number, or latest."),
                 store: str = StoreOpt, server: str = ServerOpt, as_json: bool = JsonOpt) -> None:
    """Print the YAML of a registered playbook version, exactly as it was registered."""
    entry = _entry(path, _version_arg(version, "--version"), store, server)
    if as_json:
        print_json({k: entry.get(k) for k in ("catalog_id", "path", "version", "kind",
                                              "created_at", "content")})
        return
    sys.stdout.write(entry["content"])  # byte for byte, like cat


@catalog_app.command("diff")
def catalog_diff(path: str = typer.Argument(..., help="Catalog path."),
                 v1: str = typer.Argument(..., help="Old version (a number or latest)."),
                 v2: str = typer.Argument(..., help="New version (a number or latest)."),
                 context: int = typer.Option(3, "--context", "-U", min=0,
                                             help="Lines of context around each change."),
                 store: str = StoreOpt, server: str = ServerOpt) -> None:
    """Unified diff of the stored YAML of two versions of a playbook."""
    a = _entry(path, _version_arg(v1, "V1"), store, server)
    b = _entry(path, _version_arg(v2, "V2"), store, server)
    lines = list(difflib.unified_diff(
        a["content"].splitlines(keepends=True), b["content"].splitlines(keepends=True),
        fromfile=f"{path} v{a['version']}", tofile=f"{path} v{b['version']}", n=context))
    if not lines:
        sys.stderr.write(f"{path}: versions {a['version']} and {b['version']} are identical\n")
        return
    out = "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n"
                  for line in lines)
    if sys.stdout.isatty():
        from rich.syntax import Syntax

        from noetl.cli.follow import console

        console().print(Syntax(out, "diff", theme="ansi_dark", background_color="default"))
    else:
        sys.stdout.write(out)
