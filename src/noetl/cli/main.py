"""``noetl``: run playbooks locally, manage the catalog, inspect executions, start a server or
workers. Heavy modules are imported inside commands so ``noetl run`` starts fast."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer

from noetl.cli.common import (
    EXIT_INVALID,
    build_args,
    exit_for,
    fail,
    print_json,
)

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


def _load(file: Path) -> Any:
    from noetl.dsl import load_playbook
    from noetl.errors import PlaybookError

    try:
        return load_playbook(file)
    except PlaybookError as exc:
        sys.stderr.write(str(exc) + "\n")
        raise typer.Exit(EXIT_INVALID) from None


def _warn(pb: Any) -> None:
    for w in pb.warnings:
        sys.stderr.write(f"warning: {w}\n")


def _show(desc: dict[str, Any], as_json: bool) -> None:
    from noetl.local import summary

    if as_json:
        print_json(summary(desc))
        return
    from rich.console import Console

    from noetl.cli.progress import table

    Console().print(table(desc))
    _show_error(desc)


@app.command()
def run(file: Path = typer.Argument(..., help="Playbook YAML file."),
        set_: list[str] = SetOpt, payload: str = PayloadOpt, as_json: bool = JsonOpt,
        store: str = StoreOpt,
        concurrency: int = typer.Option(4, "--concurrency", "-c", help="Worker threads."),
        merge: bool = typer.Option(False, "--merge", help="Deep-merge overrides into workload."),
        timeout: float = typer.Option(None, "--timeout", help="Give up after this many seconds."),
        ) -> None:
    """Run a playbook in this process on the embedded store (no server needed)."""
    pb = _load(file)
    _warn(pb)
    args = build_args(set_, payload)
    from noetl.local import LocalRunner

    live_ok = not as_json and sys.stdout.isatty()
    with LocalRunner(store, concurrency=concurrency) as runner:
        ex = runner.engine.start(pb, args=args, merge=merge)
        if live_ok:
            from rich.live import Live

            from noetl.cli.progress import table

            with Live(table(runner.engine.describe(ex.execution_id)), refresh_per_second=8) as lv:
                desc = runner.wait(ex.execution_id, timeout, on_change=lambda: lv.update(
                    table(runner.engine.describe(ex.execution_id))), tick=0.1)
                lv.update(table(desc))
            if desc.get("error"):
                _show_error(desc)
        else:
            try:
                desc = runner.wait(ex.execution_id, timeout)
            except TimeoutError as exc:
                runner.engine.cancel(ex.execution_id)  # not left RUNNING in the store
                raise fail(f"{exc}; execution cancelled") from None
            _show(desc, as_json)
    raise typer.Exit(exit_for(desc["status"]))


def _show_error(desc: dict[str, Any]) -> None:
    from noetl.cli.failure import print_error

    print_error(desc)


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


def _client(server: str | None) -> Any:
    from noetl.client import CliClient

    return CliClient(server)


def _engine(store: str | None) -> Any:
    from noetl.engine.core import Engine
    from noetl.store import open_store

    return Engine(open_store(store))


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
            concurrency: int = typer.Option(4, "--concurrency", "-c"),
            timeout: float = typer.Option(None, "--timeout")) -> None:
    """Run a registered playbook by catalog path (locally, or on --server)."""
    args = build_args(set_, payload)
    if server:
        c = _client(server)
        started = c.run(path=path, version=version, args=args, merge=merge)
        if not wait:
            print_json(started) if as_json else sys.stdout.write(
                f"started execution {started['execution_id']}\n")
            raise typer.Exit(0)
        desc = c.wait(started["execution_id"], timeout)
        _show(desc, as_json)
        raise typer.Exit(exit_for(desc["status"]))
    from noetl.errors import NotFound
    from noetl.local import LocalRunner

    with LocalRunner(store, concurrency=concurrency) as runner:
        try:
            ex = runner.engine.start(path=path, version=version, args=args, merge=merge)
        except NotFound as exc:
            raise fail(str(exc)) from None
        desc = runner.wait(ex.execution_id, timeout)
    _show(desc, as_json)
    raise typer.Exit(exit_for(desc["status"]))


def _eid(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise fail(f"not an execution id: {text!r}", EXIT_INVALID) from None


@app.command()
def status(execution_id: str = typer.Argument(...), store: str = StoreOpt,
           server: str = ServerOpt, as_json: bool = JsonOpt) -> None:
    """Show an execution's status, result, error and steps."""
    from noetl.errors import NotFound

    try:
        desc = _client(server).execution(execution_id) if server else \
            _engine(store).describe(_eid(execution_id))
    except NotFound as exc:
        raise fail(str(exc)) from None
    _show(desc, as_json)


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
        t.add_row(str(e["seq"]), e["event_type"], e.get("node_name") or "", e["status"],
                  str(e.get("attempt") or ""), (e.get("error") or "")[:80])
    Console().print(t)


OPTIONAL = {"noetl.cli.server_cmd": ("server", "worker"), "noetl.cli.credential_cmd": ("credential",),
            "noetl.cli.schedule_cmd": ("schedule", "hook")}


def _register_optional() -> None:
    """Server, worker and credential commands live in their own modules (optional: a module
    that cannot be imported is left out)."""
    for mod in OPTIONAL:
        try:
            __import__(mod)
        except ImportError:
            continue


_register_optional()


def main() -> None:
    """The ``noetl`` command. With NOETL_CLI_MINIMAL=1 the server, worker, credential,
    schedule and hook commands are not offered."""
    from noetl.settings import Settings

    command = typer.main.get_command(app)
    commands = getattr(command, "commands", {})  # a group's subcommands by name
    if Settings.from_env().cli_minimal:
        for names in OPTIONAL.values():
            for name in names:
                commands.pop(name, None)
    command()
