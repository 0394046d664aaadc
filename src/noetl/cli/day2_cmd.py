"""``noetl logs``, ``noetl rerun`` and ``noetl resume`` (registered on the main app on import)."""

from __future__ import annotations

import sys
import time
from typing import Any

import typer

from noetl.cli.app import JsonOpt, PayloadOpt, ServerOpt, SetOpt, StoreOpt, app, concurrency_opt, timeout_opt
from noetl.cli.common import _client, _eid, _engine, build_args, exit_for, fail, print_json
from noetl.cli.follow import show as _show

FOLLOW_POLL = 0.25  # seconds between reads of a local store while following


@app.command()
def logs(execution_id: str = typer.Argument(...),
         step: str = typer.Option(None, "--step", "-s", help="Only this step's records."),
         item: int = typer.Option(None, "--item", help="Only this loop item's records."),
         follow: bool = typer.Option(False, "--follow", "-f",
                                     help="Keep printing new records until the execution ends."),
         since: int = typer.Option(0, "--since", help="Only records after this log id."),
         as_json: bool = typer.Option(False, "--json", help="One JSON object per record."),
         store: str = StoreOpt, server: str = ServerOpt) -> None:
    """Print what an execution's steps wrote: stdout, stderr and logging records, in order."""
    from noetl.cli.logview import LogTail, plain_printer, store_fetch
    from noetl.errors import NotFound

    emit = plain_printer(None, as_json)
    if server:
        _remote(_client(server), execution_id, emit, follow, step, item, since)
        return
    eng = _engine(store)
    eid = _eid(execution_id)
    tail = LogTail(store_fetch(eng.store, eid, step, item), emit, since)
    try:
        while True:
            ended = eng.is_terminal(eid)  # before reading: what it wrote until then is there
            tail.pump()
            if not follow or ended:
                return
            time.sleep(FOLLOW_POLL)
    except NotFound as exc:
        raise fail(str(exc)) from None


def _remote(c: Any, execution_id: str, emit: Any, follow: bool, step: str | None = None,
            item: int | None = None, since: int = 0, deadline: float | None = None) -> None:
    """Print a server's records (long-polling with ``follow`` until the execution ends)."""
    from noetl.cli.logview import LogTail

    page: dict[str, Any] = {"done": False}

    def fetch(after: int) -> list[dict[str, Any]]:
        page.update(c.logs(execution_id, after, step, item, wait=10 if follow else 0))
        items: list[dict[str, Any]] = page["items"]
        return items

    tail = LogTail(fetch, emit, since)
    tail.pump()
    while follow and not page["done"] and (deadline is None or time.monotonic() < deadline):
        tail.pump()


def _restart(kind: str, execution_id: str, set_: list[str] | None, payload: str | None,
             merge: bool, wait: bool, as_json: bool, quiet: bool, store: str | None,
             server: str | None, concurrency: int, timeout: float | None) -> None:
    from noetl.errors import Conflict, NotFound

    overrides = build_args(set_, payload) or None
    if server:
        c = _client(server)
        started = c.rerun(execution_id, overrides, merge, resume=kind == "resume")
        _started(started, as_json, wait)
        if not wait:
            raise typer.Exit(0)
        new_id = started["execution_id"]
        t0 = time.monotonic()
        if not quiet:
            from noetl.cli.logview import plain_printer

            _remote(c, new_id, plain_printer(sys.stderr if as_json else None), True,
                    deadline=None if timeout is None else t0 + timeout)
        desc = c.wait(new_id, None if timeout is None else max(0.0, timeout - (
            time.monotonic() - t0)))
        _show(desc, as_json)
        raise typer.Exit(exit_for(desc["status"]))
    from noetl.cli.logview import follow
    from noetl.engine import resume as r
    from noetl.local import LocalRunner

    fn = r.resume if kind == "resume" else r.rerun

    def start(engine: Any) -> Any:
        try:
            ex = fn(engine, _eid(execution_id), overrides, merge)
        except (NotFound, Conflict) as exc:
            raise fail(str(exc)) from None
        _started({"execution_id": str(ex.execution_id), "kind": kind,
                  "source_execution_id": execution_id, "path": ex.path,
                  "version": ex.version, "status": str(ex.status)}, as_json, wait)
        return ex

    if not wait:  # left queued for the workers of a server on this store
        start(_engine(store))
        raise typer.Exit(0)
    runner = LocalRunner(store, concurrency=concurrency, own_only=True)
    try:  # before the workers start: the execution to resume could end meanwhile
        ex = _carry_on(runner.engine, execution_id, overrides, as_json) \
            if kind == "resume" else None
        ex = ex or start(runner.engine)
        runner.adopt(ex.execution_id)
    except BaseException:
        runner.close()
        raise
    with runner:
        show = follow(runner.store, ex.execution_id, quiet, sys.stderr if as_json else None)
        try:
            desc = runner.wait(ex.execution_id, timeout, on_change=show, tick=0.25)
        except TimeoutError as exc:
            runner.engine.cancel(ex.execution_id)
            raise fail(f"{exc}; execution cancelled") from None
        show()
    _show(desc, as_json)
    raise typer.Exit(exit_for(desc["status"]))


def _carry_on(engine: Any, execution_id: str, overrides: dict[str, Any] | None,
              as_json: bool) -> Any:
    """A running execution (its ``noetl run`` stopped) to carry on in place, its stale leases
    taken over (:mod:`noetl.engine.orphans`); None when it has ended (resume starts anew)."""
    from noetl.engine.orphans import take_over
    from noetl.errors import Conflict, NotFound

    try:
        top = take_over(engine, _eid(execution_id))
    except (NotFound, Conflict) as exc:
        raise fail(str(exc)) from None
    if top is None:
        return None
    if overrides:
        raise fail(f"execution {top.execution_id} is still running: --set/--payload cannot "
                   "change its workload (resume it without them, or cancel it first)")
    if not as_json:
        sys.stderr.write(f"carrying on execution {top.execution_id} in place (still "
                         f"{top.status}: its stale leases are taken over)\n")
    return top


def _started(started: dict[str, Any], as_json: bool, wait: bool) -> None:
    """Say which execution was made (with --json and --wait the final summary is the one
    object printed)."""
    if as_json:
        if not wait:
            print_json(started)
    else:
        verb = "resumed" if started.get("kind") == "resume" else "re-ran"
        sys.stderr.write(f"{verb} execution {started['source_execution_id']} as execution "
                         f"{started['execution_id']}\n")


MergeOpt = typer.Option(False, "--merge", help="Deep-merge the overrides.")
WaitOpt = typer.Option(True, "--wait/--no-wait", help="Wait for the new execution to end.")
QuietOpt = typer.Option(False, "--quiet", "-q", help="Do not print the steps' output as it comes.")
ConcOpt = concurrency_opt(4, "Worker threads (without --server).")
TimeoutOpt = timeout_opt("Give up waiting after this many seconds.")


@app.command()
def rerun(execution_id: str = typer.Argument(...), set_: list[str] = SetOpt,
          payload: str = PayloadOpt, merge: bool = MergeOpt, wait: bool = WaitOpt,
          as_json: bool = JsonOpt, quiet: bool = QuietOpt, store: str = StoreOpt,
          server: str = ServerOpt, concurrency: int = ConcOpt,
          timeout: float = TimeoutOpt) -> None:
    """Run an execution's playbook version again with the same inputs (--set overrides)."""
    _restart("rerun", execution_id, set_, payload, merge, wait, as_json, quiet, store, server,
             concurrency, timeout)


@app.command()
def resume(execution_id: str = typer.Argument(...), set_: list[str] = SetOpt,
           payload: str = PayloadOpt, merge: bool = MergeOpt, wait: bool = WaitOpt,
           as_json: bool = JsonOpt, quiet: bool = QuietOpt, store: str = StoreOpt,
           server: str = ServerOpt, concurrency: int = ConcOpt,
           timeout: float = TimeoutOpt) -> None:
    """Resume a failed or cancelled execution: reuse the steps it completed, run the failed
    and cancelled ones again (--set overrides its workload), and what follows them. An
    execution still running because its `noetl run` was stopped is carried on in place."""
    _restart("resume", execution_id, set_, payload, merge, wait, as_json, quiet, store, server,
             concurrency, timeout)


__all__ = ["logs", "rerun", "resume"]
