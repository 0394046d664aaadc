"""The ``noetl`` program (console script and ``python -m noetl``).

``noetl run FILE ...`` takes :func:`noetl.cli.run_cmd.fast_run`, which does not load Typer: a
``noetl run`` is a new process each time and Typer's import and parameter set-up cost more than
running a small playbook. Every other command, and ``noetl run`` arguments the fast path leaves
alone (``--help``, anything malformed), go to the Typer app in :mod:`noetl.cli.main`.
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def _imports_not_collected() -> Iterator[None]:
    """Import with the cyclic garbage collector off, then freeze what was imported (the
    collector never scans it again, at exit included). A command imports a few hundred modules
    and none of it is garbage; the collector's passes over them took about a sixth of a
    ``noetl run``. What the command creates afterwards is collected as usual."""
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.enable()


def main() -> None:
    argv = sys.argv[1:]
    if argv[:1] == ["run"]:
        with _imports_not_collected():
            from noetl.cli.run_cmd import fast_run  # `noetl run` only

            run = fast_run(argv[1:])
        if run is not None:
            try:
                run()  # ends with SystemExit(the exit code)
            except KeyboardInterrupt:  # before the execution started: as Typer reports it
                sys.stderr.write("\nAborted!\n")
                sys.exit(1)
            return
    with _imports_not_collected():
        from noetl.cli.main import main as typer_main  # every other command: the Typer app
    typer_main()
