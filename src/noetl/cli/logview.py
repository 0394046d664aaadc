"""Step log records on a terminal or a pipe: ``noetl logs``, and ``noetl run`` / ``rerun`` /
``resume`` while they wait (records are printed as they are stored)."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

Fetch = Callable[[int], list[dict[str, Any]]]
PAGE = 1000
STYLES = {"stderr": "yellow", "noetl": "magenta", "ERROR": "red", "CRITICAL": "bold red",
          "WARNING": "yellow", "DEBUG": "dim"}


def lines(r: dict[str, Any]) -> list[str]:
    """``HH:MM:SS.mmm step[index] tag message``, one per line of the message; the tag is
    ``out`` / ``err`` for stdout / stderr, else the record's level (logging: ``logger:``).
    A retried attempt's records say which: ``step#2`` (attempt 2; the first has no mark)."""
    t = float(r.get("time") or 0)
    stamp = time.strftime("%H:%M:%S", time.localtime(t)) + f".{int(t * 1000) % 1000:03d}"
    where = str(r.get("step")) + (f"[{r['index']}]" if r.get("index") is not None else "")
    if int(r.get("attempt") or 1) > 1:
        where += f"#{r['attempt']}"
    tag = {"stdout": "out", "stderr": "err"}.get(str(r.get("stream"))) or str(r.get("level"))
    message = str(r.get("message") or "")
    if r.get("stream") == "log" and r.get("logger") not in (None, "root"):
        message = f"{r['logger']}: {message}"
    head = f"{stamp} {where} {tag} "
    return [head + line for line in message.split("\n")]


def style(r: dict[str, Any]) -> str:
    return STYLES.get(str(r.get("stream")), "") or STYLES.get(str(r.get("level")), "")


def plain_printer(out: TextIO | None = None, as_json: bool = False
                  ) -> Callable[[dict[str, Any]], None]:
    def emit(r: dict[str, Any]) -> None:
        stream = out or sys.stdout
        stream.write((json.dumps(r, ensure_ascii=False) if as_json else "\n".join(lines(r)))
                     + "\n")
        stream.flush()
    return emit


def console_printer(console: Any) -> Callable[[dict[str, Any]], None]:
    """Above a rich ``Live`` display (its console prints there)."""
    from rich.text import Text

    def emit(r: dict[str, Any]) -> None:
        console.print(Text("\n".join(lines(r)), style=style(r)), soft_wrap=True)
    return emit


class LogTail:
    """Follows one execution's records: each :meth:`pump` prints those stored since."""

    def __init__(self, fetch: Fetch, emit: Callable[[dict[str, Any]], None], since: int = 0):
        self.fetch = fetch
        self.emit = emit
        self.since = since

    def pump(self) -> int:
        n = 0
        while True:
            items = self.fetch(self.since)
            for r in items:
                self.emit(r)
            n += len(items)
            if items:
                self.since = int(items[-1]["log_id"])
            if len(items) < PAGE:
                return n


def store_fetch(store: Any, execution_id: int, step: str | None = None,
                item: int | None = None) -> Fetch:
    def fetch(since: int) -> list[dict[str, Any]]:
        with store.read() as tx:
            out: list[dict[str, Any]] = tx.get_logs(execution_id, since, PAGE, step, item)
            return out
    return fetch


def follow(store: Any, execution_id: int, quiet: bool = False,
           to: Any = None) -> Callable[[], None]:
    """A callable printing the records stored since its last call (a no-op when ``quiet``):
    ``to`` a rich console (above a live display), a text stream, or stdout."""
    if quiet:
        return lambda: None
    emit = console_printer(to) if hasattr(to, "print") else plain_printer(to)
    tail = LogTail(store_fetch(store, execution_id), emit)

    def pump() -> None:
        tail.pump()
    return pump
