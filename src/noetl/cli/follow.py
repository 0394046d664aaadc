"""Following one execution to its end from the command line (``run``, ``execute``, locally or
on a server): a live table on a terminal; Ctrl-C cancels the execution (a second Ctrl-C exits
at once); ``--timeout`` cancels it and exits 1. Never a traceback.

Exit codes travel as ``SystemExit`` (which Typer passes through), so ``noetl run``'s fast path
follows an execution without loading Typer (:mod:`noetl.cli.run_cmd`)."""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable
from typing import Any

from noetl.cli.common import EXIT_FAILED, exit_for, print_json
from noetl.cli.failure import print_error
from noetl.cli.progress import TERMINAL, render, summary

EXIT_INTERRUPTED = 130


class Target:
    """How to see and stop one execution: ``describe()`` its state, ``pause(seconds)`` until
    something may have changed, ``cancel()`` it."""

    def __init__(self, execution_id: str, describe: Callable[[], dict[str, Any]],
                 pause: Callable[[float], None], cancel: Callable[[], Any],
                 tick: float = 0.1):
        self.execution_id = execution_id
        self.describe = describe
        self.pause = pause
        self.cancel = cancel
        self.tick = tick


def console(stderr: bool = False) -> Any:
    """A console on the real stream (captured before worker threads redirect ``sys.stdout``
    for python steps' ``print``), so a terminal stays a terminal while steps run. Piped
    output is not cut to 80 columns."""
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    stream = getattr(stream, "fallback", stream)
    tty = bool(getattr(stream, "isatty", lambda: False)())
    return Console(file=stream, stderr=stderr, width=None if tty else 200)


def live_wanted(as_json: bool) -> bool:
    return not as_json and sys.stdout.isatty()


Logs = Callable[[Any], Callable[[], None]]


def follow(target: Target, timeout: float | None, as_json: bool,
           on_interrupt: Callable[[], None] | None = None,
           logs: Logs | None = None) -> dict[str, Any]:
    """Wait for the execution to end and print it (live on a terminal); exit with its code.
    ``logs(to)`` gives a callable printing the steps' new log records to ``to`` (the live
    display's console, stderr with ``--json``, else stdout: None) each time it is called."""
    live = live_wanted(as_json)
    try:  # Rich only for the live table (a --json run never loads it)
        desc = _wait(target, timeout, console() if live else None, logs,
                     sys.stderr if as_json else None)
    except KeyboardInterrupt:
        _interrupted(target, on_interrupt)
    except TimeoutError as exc:
        _cancel_quietly(target)
        sys.stderr.write(f"error: {exc}; execution {target.execution_id} cancelled\n")
        raise SystemExit(EXIT_FAILED) from None
    show(desc, as_json, live_shown=live)
    raise SystemExit(exit_for(desc["status"]))


def _wait(target: Target, timeout: float | None, live_console: Any, logs: Logs | None = None,
          log_to: Any = None) -> dict[str, Any]:
    deadline = None if timeout is None else time.monotonic() + timeout

    def loop(update: Callable[[dict[str, Any]], None] | None,
             pump: Callable[[], None]) -> dict[str, Any]:
        while True:
            desc = target.describe()
            if update is not None:  # the table first: log records are printed above it
                update(desc)
            pump()
            if desc["status"] in TERMINAL:
                pump()
                return desc
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"execution {target.execution_id} still {desc['status']} "
                                   f"after {timeout:g} s")
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            target.pause(target.tick if left is None else min(target.tick, left))

    if live_console is None:
        return loop(None, logs(log_to) if logs is not None else _nothing)
    from rich.live import Live

    # no stdout redirection: worker threads' sys.stdout is the python steps' capture
    with Live(console=live_console, refresh_per_second=8, redirect_stdout=False,
              redirect_stderr=False) as lv:
        return loop(lambda d: lv.update(render(d), refresh=True),
                    logs(lv.console) if logs is not None else _nothing)


def _nothing() -> None:
    return None


def _interrupted(target: Target, on_interrupt: Callable[[], None] | None) -> None:
    """First Ctrl-C: cancel the execution and say so; a second one exits at once."""

    def now(_signum: int, _frame: Any) -> None:
        os.write(2, b"\ninterrupted again: exiting without waiting\n")
        os._exit(EXIT_INTERRUPTED)

    signal.signal(signal.SIGINT, now)
    eid = target.execution_id
    sys.stderr.write(f"\ninterrupted: cancelling execution {eid} "
                     "(Ctrl-C again to exit at once)\n")
    sys.stderr.flush()
    _cancel_quietly(target)
    try:
        status = target.describe()["status"]
    except SystemExit:  # the client has printed why (noetl.client.CliClient)
        status = "in an unknown state (see the error above)"
    except Exception as exc:  # the server went away meanwhile
        status = f"unknown ({type(exc).__name__}: {exc})"
    sys.stderr.write(f"execution {eid} {status}\n")
    if on_interrupt is not None:
        on_interrupt()
    raise SystemExit(EXIT_INTERRUPTED)


def _cancel_quietly(target: Target) -> None:
    try:
        target.cancel()
    except Exception as exc:  # not SystemExit: the client has printed why and exits
        sys.stderr.write(f"error: could not cancel execution {target.execution_id}: "
                         f"{type(exc).__name__}: {exc}\n")


def show(desc: dict[str, Any], as_json: bool, live_shown: bool = False) -> None:
    """Print an execution: the ``--json`` summary, or its table (unless the live display left
    it on screen already) and its error."""
    if as_json:
        print_json(summary(desc))
        return
    if not live_shown:
        console().print(render(desc))
    if desc.get("plan_error"):  # its stored playbook does not compile here (describe)
        sys.stderr.write(f"note: the steps are shown as stored: {desc['plan_error']}\n")
    print_error(desc)  # to stderr, in the playbook's terms (cli/failure.py)
