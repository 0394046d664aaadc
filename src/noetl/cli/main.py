"""``noetl``: run playbooks locally, manage the catalog, inspect executions, start a server or
workers (the Typer app; the program's entry point is :mod:`noetl.cli.entry`). Each command
imports the modules it needs inside its body, so a command loads only what it uses."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer

from noetl.cli.app import (
    JsonOpt,
    PayloadOpt,
    ServerOpt,
    SetOpt,
    StoreOpt,
    app,
    catalog_app,
    concurrency_opt,
    timeout_opt,
)
from noetl.cli.common import EXIT_INVALID, _client, _eid, _engine, build_args, fail, print_json


def _load(file: Path) -> Any:
    from noetl.cli.run_cmd import load  # the run path's module (main.py imports per command)

    pb = load(file)
    if pb is None:
        raise typer.Exit(EXIT_INVALID)
    return pb


@app.command()
def run(file: Path = typer.Argument(..., help="Playbook YAML file."),
        set_: list[str] = SetOpt, payload: str = PayloadOpt, as_json: bool = JsonOpt,
        store: str = StoreOpt,
        concurrency: int = concurrency_opt(4, "Worker threads."),
        merge: bool = typer.Option(False, "--merge", help="Deep-merge overrides into workload."),
        timeout: float = timeout_opt("Cancel the execution after this many seconds."),
        quiet: bool = typer.Option(False, "--quiet", "-q",
                                   help="Do not print the steps' output as it comes."),
        ) -> None:
    """Run a playbook in this process on the embedded store (no server needed). What the
    steps write (stdout, stderr, logging) is printed as it comes (to stderr with --json)."""
    # `noetl run` normally takes noetl.cli.entry's fast path (no Typer); this command serves
    # --help, arguments that path leaves to Typer, and in-process callers of the app
    from noetl.cli.run_cmd import run_file

    run_file(file, build_args(set_, payload), as_json, store, concurrency, merge, timeout,
             quiet)


@app.command()
def validate(files: list[Path] = typer.Argument(..., help="Playbook YAML files or folders."),
             as_json: bool = JsonOpt) -> None:
    """Check playbooks; print every problem with its line (exit 2 on any error)."""
    from noetl.cli.validate import run as run_validate

    raise typer.Exit(run_validate(files, as_json))


@app.command()
def schema() -> None:
    """Print the playbook JSON Schema (for editors: yaml-language-server)."""
    from noetl.dsl.schema import playbook_schema

    print_json(playbook_schema())




@catalog_app.command("register")
def catalog_register(file: Path = typer.Argument(..., help="Playbook YAML file."),
                     store: str = StoreOpt, server: str = ServerOpt,
                     as_json: bool = JsonOpt) -> None:
    """Register a playbook; its version is the path's latest version + 1."""
    pb = _load(file)
    content = file.read_text(encoding="utf-8")
    if server:
        out = _client(server).register(content)
    else:
        out = _engine(store).register(content, str(file)).to_dict(with_content=False)
    if as_json:
        print_json(out)
    else:
        sys.stdout.write(f"registered {pb.path} version {out['version']} "
                         f"(catalog id {out['catalog_id']})\n")


@catalog_app.command("list")
def catalog_list(store: str = StoreOpt, server: str = ServerOpt, as_json: bool = JsonOpt) -> None:
    """List registered playbooks (every version, newest first)."""
    if server:
        entries = _client(server).catalog_list()
    else:
        with _engine(store).store.read() as tx:
            entries = [e.to_dict(with_content=False) for e in tx.list_catalog()]
    if as_json:
        print_json(entries)
        return
    from rich.console import Console
    from rich.table import Table

    t = Table("path", "version", "catalog id")
    for e in entries:
        t.add_row(e["path"], str(e["version"]), e["catalog_id"])
    Console().print(t)


@app.command()
def execute(path: str = typer.Argument(..., help="Catalog path of a registered playbook."),
            version: str = typer.Option("latest", "--version", "-v"),
            set_: list[str] = SetOpt, payload: str = PayloadOpt, as_json: bool = JsonOpt,
            store: str = StoreOpt, server: str = ServerOpt,
            merge: bool = typer.Option(False, "--merge"),
            wait: bool = typer.Option(True, "--wait/--no-wait",
                                      help="Wait for the execution to end."),
            concurrency: int = concurrency_opt(4, "Worker threads (without --server)."),
            timeout: float = timeout_opt("Cancel the execution after this many seconds."),
            quiet: bool = typer.Option(False, "--quiet", "-q",
                                       help="Do not print the steps' output as it comes."),
            ) -> None:
    """Run a registered playbook by catalog path (locally, or on --server). Locally, what the
    steps write is printed as it comes (-q hides it)."""
    args = build_args(set_, payload)
    if server:
        c = _client(server)
        started = c.run(path=path, version=version, args=args, merge=merge)
        eid = started["execution_id"]
        if not wait:  # the id alone on stdout (ID=$(noetl execute ... --no-wait))
            if as_json:
                print_json(started)
            else:
                sys.stderr.write(f"started execution {eid} on {c.server_url}\n")
                sys.stdout.write(f"{eid}\n")
            raise typer.Exit(0)
        _follow_server(c, eid, timeout, as_json)
    from noetl.cli.run_cmd import follow_local
    from noetl.errors import NotFound
    from noetl.local import LocalRunner

    with LocalRunner(store, concurrency=concurrency, own_only=True) as runner:
        try:
            ex = runner.start(path=path, version=version, args=args, merge=merge)
        except NotFound as exc:
            raise fail(str(exc)) from None
        follow_local(runner, ex.execution_id, timeout, as_json, quiet)


def _follow_server(c: Any, execution_id: str, timeout: float | None, as_json: bool) -> None:
    import time

    from noetl.cli.follow import Target, follow, live_wanted

    live = live_wanted(as_json)
    if not live:
        sys.stderr.write(f"execution {execution_id} started on {c.server_url}; waiting for it "
                         "to end (Ctrl-C cancels it)\n")
    follow(Target(execution_id, lambda: c.execution(execution_id), time.sleep,
                  lambda: c.cancel(execution_id), tick=0.25 if live else 0.5),
           timeout, as_json)



@app.command()
def status(execution_id: str = typer.Argument(...), store: str = StoreOpt,
           server: str = ServerOpt, as_json: bool = JsonOpt) -> None:
    """Show an execution: path, version, times, status, result, error, steps and children."""
    from noetl.cli.follow import show
    from noetl.errors import NotFound

    try:
        desc = _client(server).execution(execution_id) if server else \
            _engine(store).describe(_eid(execution_id))
    except NotFound as exc:
        raise fail(str(exc)) from None
    show(desc, as_json)


@app.command()
def events(execution_id: str = typer.Argument(...), store: str = StoreOpt,
           server: str = ServerOpt, as_json: bool = JsonOpt,
           since: int = typer.Option(0, "--since", help="Only events after this sequence."),
           limit: int = typer.Option(10000, "--limit")) -> None:
    """List an execution's events in order."""
    if server:
        evs = _client(server).events(execution_id, since, limit)
    else:
        eng = _engine(store)
        eid = _eid(execution_id)
        with eng.store.read() as tx:
            if tx.get_execution(eid) is None:
                raise fail(f"execution {eid} not found")
            evs = [e.to_dict() for e in tx.get_events(eid, since, limit)]
    if as_json:
        print_json(evs)
        return
    from rich.console import Console
    from rich.table import Table

    t = Table("seq", "event", "node", "status", "attempt", "error")
    for e in evs:
        node = (e.get("node_name") or "") + (
            f"[{e['current_index']}]" if e.get("current_index") is not None else "")
        t.add_row(str(e["seq"]), e["event_type"], node, e["status"],
                  str(e.get("attempt") or ""), _event_error(e)[:80])
    Console().print(t)


def _event_error(e: dict[str, Any]) -> str:
    """The event's error; for an ``action_retry``, what ended the attempt: the lease of the
    worker that lost the job, or the error the retry policy retries."""
    if e.get("error") or e.get("event_type") != "action_retry":
        return str(e.get("error") or "")
    ctx, meta = e.get("context"), e.get("meta")
    ctx = ctx if isinstance(ctx, dict) else {}
    meta = meta if isinstance(meta, dict) else {}
    if ctx.get("reason") == "lease_expired":
        lost = meta.get("lost_worker_id") or ctx.get("worker_id")
        return f"lease of {lost or 'its worker'} expired (worker stopped heartbeating)"
    return str(ctx.get("error") or "")


OPTIONAL = {"noetl.cli.server_cmd": ("server", "worker"), "noetl.cli.credential_cmd": ("credential",),
            "noetl.cli.schedule_cmd": ("schedule", "hook"),
            "noetl.cli.day2_cmd": ("logs", "rerun", "resume")}


def _register_optional() -> None:
    """Server, worker, credential, schedule, hook and day-two commands live in their own
    modules (optional: a module that cannot be imported is left out)."""
    for mod in OPTIONAL:
        try:
            __import__(mod)
        except ImportError:
            continue


def _version(value: bool) -> None:
    if value:
        import platform

        from noetl import __version__

        sys.stdout.write(f"noetl {__version__} (python {platform.python_version()})\n")
        raise typer.Exit(0)


@app.callback()
def _main(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print the version and exit.")) -> None:
    """NoETL: playbook orchestrator."""


from noetl.cli import inspect_cmd  # noqa: E402,F401  (executions, cancel, catalog show/diff)

_register_optional()


def main() -> None:
    """The ``noetl`` command. With NOETL_CLI_MINIMAL=1 the optional commands (server, worker,
    credential, schedule, hook, logs, rerun, resume) are not offered."""
    from noetl.settings import Settings

    command = typer.main.get_command(app)
    commands = getattr(command, "commands", {})  # a group's subcommands by name
    if Settings.from_env().cli_minimal:
        for names in OPTIONAL.values():
            for name in names:
                commands.pop(name, None)
    command()
