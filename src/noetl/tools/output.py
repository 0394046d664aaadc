"""Per-thread capture of ``print`` output, safe with many steps running in one process."""

from __future__ import annotations

import io
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

_local = threading.local()


class _Router(io.TextIOBase):
    """``sys.stdout`` while steps run: a thread capturing a step's output writes to its
    buffer; every other thread (the CLI's live display among them) sees the real stream,
    terminal and all."""

    def __init__(self, fallback: TextIO):
        self.fallback = fallback

    def _target(self) -> Any:
        return getattr(_local, "buf", None) or self.fallback

    def write(self, s: str) -> int:
        return self._target().write(s)

    def flush(self) -> None:
        self._target().flush()

    def isatty(self) -> bool:
        target = self._target()
        return target is self.fallback and bool(self.fallback.isatty())

    def fileno(self) -> int:
        if self._target() is not self.fallback:
            raise io.UnsupportedOperation("a step's captured output has no file descriptor")
        return self.fallback.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return str(getattr(self.fallback, "encoding", None) or "utf-8")


_install_lock = threading.Lock()


def _install() -> None:
    """Route ``sys.stdout`` through the per-thread router (again, if someone replaced it)."""
    if isinstance(sys.stdout, _Router):
        return
    with _install_lock:
        if not isinstance(sys.stdout, _Router):
            sys.stdout = _Router(sys.stdout)


@contextmanager
def capture(limit: int = 65536) -> Iterator[io.StringIO]:
    _install()
    buf = io.StringIO()
    prev = getattr(_local, "buf", None)
    _local.buf = buf
    try:
        yield buf
    finally:
        _local.buf = prev
        if buf.tell() > limit:
            value = buf.getvalue()
            buf.seek(0)
            buf.truncate()
            buf.write(value[:limit] + f"\n... [{len(value) - limit} characters cut]")
