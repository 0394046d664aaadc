"""The ``noetl`` Typer app, its ``catalog`` group and the options commands share. Command
modules import this (and helpers from :mod:`noetl.cli.common`, which does not load Typer, so
``noetl run``'s fast path stays Typer-free), never :mod:`noetl.cli.main`, which imports them."""

from __future__ import annotations

from typing import Any

import typer


def group(help: str, **kw: Any) -> typer.Typer:
    """A command group of ``noetl``. Its help is Markdown: a docstring's paragraphs are
    reflowed to the terminal's width (Typer's "rich" mode kept each line break of the source
    and broke sentences mid-way)."""
    return typer.Typer(rich_markup_mode="markdown", help=help, no_args_is_help=True, **kw)


app = group("NoETL: playbook orchestrator.", pretty_exceptions_enable=False,
            add_completion=False)
catalog_app = group("Register and list playbooks.")
app.add_typer(catalog_app, name="catalog")

StoreOpt = typer.Option(None, "--store", envvar="NOETL_STORE_URL",
                        help="Store URL (sqlite:///PATH or postgresql://...); default "
                             "$NOETL_HOME/noetl.db.")
ServerOpt = typer.Option(None, "--server", envvar="NOETL_SERVER_URL",
                         help="Talk to a NoETL server at this URL instead of opening the store.")
SetOpt = typer.Option(None, "--set", help="Workload override key=value (repeatable; JSON values).")
PayloadOpt = typer.Option(None, "--payload", help="Workload overrides as a JSON object (or @file).")
JsonOpt = typer.Option(False, "--json", help="Print one JSON object.")


def _concurrency(value: int | None) -> int | None:
    from noetl.cli.common import concurrency_problem

    problem = concurrency_problem(value)
    if problem:
        raise typer.BadParameter(problem)
    return value


def _timeout(value: float | None) -> float | None:
    from noetl.cli.common import timeout_problem

    problem = timeout_problem(value)
    if problem:
        raise typer.BadParameter(problem)
    return value


def concurrency_opt(default: int, help: str | None = None) -> Any:
    """``-c/--concurrency``: at least 1."""
    return typer.Option(default, "--concurrency", "-c", help=help, callback=_concurrency)


def timeout_opt(help: str) -> Any:
    """``--timeout SECONDS``: more than 0."""
    return typer.Option(None, "--timeout", help=help, callback=_timeout)
