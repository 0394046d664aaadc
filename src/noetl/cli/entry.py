"""The ``noetl`` program (console script and ``python -m noetl``).

``noetl run FILE ...`` takes :func:`noetl.cli.run_cmd.fast_run`, which does not load Typer: a
``noetl run`` is a new process each time and Typer's import and parameter set-up cost more than
running a small playbook. Every other command, and ``noetl run`` arguments the fast path leaves
alone (``--help``, anything malformed), go to the Typer app in :mod:`noetl.cli.main`.
"""

from __future__ import annotations

import sys


def main() -> None:
    argv = sys.argv[1:]
    if argv[:1] == ["run"]:
        from noetl.cli.run_cmd import fast_run  # `noetl run` only

        try:
            code = fast_run(argv[1:])
        except KeyboardInterrupt:  # as Typer (click) reports it
            sys.stderr.write("\nAborted!\n")
            code = 1
        if code is not None:
            sys.exit(code)
    from noetl.cli.main import app  # every other command: the Typer app

    app()
