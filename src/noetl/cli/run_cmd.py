"""``noetl run`` without Typer: the work of the command and a fast path for its arguments.

A ``noetl run`` starts a new Python process each time, so what it imports is most of what it
costs (Typer alone, which builds pydantic adapters for its parameters, took longer than running
a seven-step playbook). :func:`fast_run` parses ``noetl run``'s arguments (:func:`parse`) and
runs the playbook without loading Typer; anything it does not accept as it is (``--help``, a
malformed or unknown option, bad ``--set``/``--payload``) it leaves to the Typer command in
:mod:`noetl.cli.main`, which then prints the usual usage or error text. Both call
:func:`run_file`. ``tests/cli/test_cold.py`` checks that the two accept the same options.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from noetl.cli import logview
from noetl.cli.common import EXIT_INVALID, ArgsError, concurrency_problem, parse_args, timeout_problem
from noetl.cli.follow import Target, follow, live_wanted
from noetl.dsl import load_playbook
from noetl.errors import PlaybookError

if TYPE_CHECKING:
    from noetl.dsl.model import Playbook

STORE_ENV = "NOETL_STORE_URL"  # --store's environment variable (as on the Typer command)
DEFAULT_CONCURRENCY = 4


def load(file: Path) -> Playbook | None:
    """The playbook, or None after printing why it is not valid."""
    try:
        return load_playbook(file)
    except PlaybookError as exc:
        sys.stderr.write(str(exc) + "\n")
        return None


def warn(pb: Playbook) -> None:
    for w in pb.warnings:
        sys.stderr.write(f"warning: {w}\n")


def follow_local(runner: Any, execution_id: int, timeout: float | None, as_json: bool,
                 quiet: bool = False) -> None:
    """Follow an execution of ``runner`` (a LocalRunner) to its end, printing the steps' log
    records as they come unless ``quiet``; exits with its code."""

    def quick_exit() -> None:  # after Ctrl-C: do not wait long for steps still running
        runner.grace = 2.0

    follow(Target(str(execution_id), lambda: runner.engine.describe(execution_id),
                  lambda s: runner.pause(execution_id, s),
                  lambda: runner.engine.cancel(execution_id),
                  tick=0.1 if live_wanted(as_json) else 0.5),
           timeout, as_json, on_interrupt=quick_exit,
           logs=lambda to: logview.follow(runner.store, execution_id, quiet, to))


def run_file(file: Path, args: dict[str, Any], as_json: bool = False, store: str | None = None,
             concurrency: int = DEFAULT_CONCURRENCY, merge: bool = False,
             timeout: float | None = None, quiet: bool = False) -> None:
    """Run a playbook file on the embedded store in this process and print the outcome; ends
    with ``SystemExit`` carrying the exit code (2: the playbook is not valid)."""
    pb = load(file)
    if pb is None:
        raise SystemExit(EXIT_INVALID)
    warn(pb)
    from noetl.local import LocalRunner  # the engine: `catalog register` shares load() only

    with LocalRunner(store, concurrency=concurrency, own_only=True) as runner:
        ex = runner.start(pb, args=args, merge=merge)
        follow_local(runner, ex.execution_id, timeout, as_json, quiet)


# The Typer command's options (``tests/cli/test_cold.py`` checks them against it): option ->
# (the keyword it sets, how its value is read; None: a flag). ``--help`` is Typer's.
OPTIONS: dict[str, tuple[str, Callable[[str], Any] | None]] = {
    "--set": ("sets", str), "--payload": ("payload", str), "--json": ("as_json", None),
    "--store": ("store", str), "--concurrency": ("concurrency", int),
    "-c": ("concurrency", int), "--merge": ("merge", None), "--timeout": ("timeout", float),
    "--quiet": ("quiet", None), "-q": ("quiet", None),
}
REPEATABLE = frozenset({"--set"})  # each one adds a value; of any other, the last one counts


def parse(argv: list[str]) -> dict[str, Any] | None:
    """``noetl run``'s arguments in their plain forms (one file; ``--opt value``,
    ``--opt=value``, ``-c value``; flags), read as the Typer command reads them. None for
    anything else, which Typer then parses and explains: ``--help``, an unknown option, a
    value missing or beginning with ``-`` (after a space), a value given to a flag, bundled
    short options (``-qc4``), ``--``, no file or two, a number that is not one.

    (The standard library's ``argparse`` did this before: its import and parser set-up were
    about 2 % of a ``noetl run``'s instructions.)"""
    out: dict[str, Any] = {"file": None, "sets": [], "payload": None, "as_json": False,
                           "store": None, "concurrency": DEFAULT_CONCURRENCY, "merge": False,
                           "timeout": None, "quiet": False}
    rest = iter(argv)
    for arg in rest:
        if arg == "-" or not arg.startswith("-"):
            if out["file"] is not None:
                return None
            out["file"] = Path(arg)
            continue
        name, eq, value = arg.partition("=") if arg.startswith("--") else (arg, "", "")
        if name not in OPTIONS:
            return None
        key, read = OPTIONS[name]
        if read is None:
            if eq:
                return None
            out[key] = True
            continue
        if not eq:
            value = next(rest, "-")
            if value.startswith("-"):
                return None
        try:
            parsed = read(value)
        except ValueError:
            return None
        if name in REPEATABLE:
            out[key].append(parsed)
        else:
            out[key] = parsed
    return out if out["file"] is not None else None


def fast_run(argv: list[str]) -> Callable[[], None] | None:
    """``noetl run ARGV`` ready to call (the engine already imported, see
    :mod:`noetl.cli.entry`); None when Typer should handle the arguments."""
    opts = parse(argv)
    if opts is None:
        return None
    try:
        args = parse_args(opts["sets"], opts["payload"])
    except ArgsError:
        return None
    if concurrency_problem(opts["concurrency"]) or timeout_problem(opts["timeout"]):
        return None  # Typer's callbacks refuse the same values, with the usual message
    import noetl.local  # noqa: F401  (imported here, with the rest: entry.py freezes imports)
    from noetl.settings import Settings

    store = opts["store"] or Settings.from_env().store_url or None  # as --store's envvar does
    return partial(run_file, opts["file"], args, opts["as_json"], store, opts["concurrency"],
                   opts["merge"], opts["timeout"], opts["quiet"])
