"""Per-thread capture of what a running job writes: ``print`` (stdout), stderr and ``logging``
records, safe with many jobs running in one process.

- :class:`StepLog` is one job's bounded log buffer (``NOETL_STEP_LOG_LIMIT`` characters,
  default 1 MiB; past it the rest is dropped and one "truncated" record says how much).
  Consecutive writes to one stream within a second are kept as one record, so a step that
  prints ten thousand lines ships a few records, not ten thousand.
- :func:`capture_job` binds a :class:`StepLog` to the calling thread: ``sys.stdout`` and
  ``sys.stderr`` are routed per thread (other threads write where they always did), and a
  handler on the root logger takes the records the thread logs at ``NOETL_STEP_LOG_LEVEL``
  (default INFO) or above, even where the process's logging configuration would drop them;
  records below the process's own levels do not reach its other handlers.
- :func:`capture` keeps a copy of a python step's ``print`` output (``meta.stdout``).

A job that writes nothing costs two thread-local assignments.
"""

from __future__ import annotations

import io
import logging
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

from noetl.domain.wire import LogRecord
from noetl.settings import Settings

_local = threading.local()
LIMIT = 1 << 20  # NOETL_STEP_LOG_LIMIT, from the settings (StepLog.configured)
LEVEL = logging.INFO  # NOETL_STEP_LOG_LEVEL
STREAM_LEVELS = {"stdout": "INFO", "stderr": "WARNING"}
RECORD_COST = 32  # characters a record counts for beyond its text (bounds the record count)
JOIN_SECONDS = 1.0  # writes to one stream this close together join one record
JOIN_CHARS = 65536


class StepLog:
    """One job's log records: ``[time, stream, level, logger, chunks, chars]`` lists, drained
    as dicts ``{t, stream, level, logger?, message}`` (by heartbeats while the job runs, and
    with its outcome)."""

    def __init__(self, limit: int = LIMIT, level: int = LEVEL):
        self.limit = limit
        self.level = level
        self.size = 0
        self.dropped = 0
        self.records: list[list[Any]] = []
        self._open: list[Any] | None = None  # the stream record writes may still join
        self._back: list[LogRecord] = []  # drained, not delivered: sent again first
        self._lock = threading.Lock()

    @classmethod
    def configured(cls, settings: Settings) -> StepLog:
        """A log bounded as the settings say (NOETL_STEP_LOG_LIMIT, NOETL_STEP_LOG_LEVEL)."""
        level = logging.getLevelName(settings.step_log_level)
        return cls(settings.step_log_limit, level if isinstance(level, int) else LEVEL)

    def _room(self, text: str, cost: int) -> str | None:
        """``text`` cut to what the budget allows (None: nothing fits); counts the rest."""
        room = self.limit - self.size - cost
        if room <= 0:
            self.dropped += len(text)
            return None
        if len(text) > room:
            self.dropped += len(text) - room
            text = text[:room]
        self.size += len(text) + cost
        return text

    def write(self, stream: str, text: str) -> None:
        if not text:
            return
        t = time.time()
        with self._lock:
            rec = self._open
            if rec is not None and rec[1] == stream and t - rec[0] < JOIN_SECONDS \
                    and rec[5] < JOIN_CHARS:
                cut = self._room(text, 0)
                if cut is not None:
                    rec[4].append(cut)
                    rec[5] += len(cut)
                return
            cut = self._room(text, RECORD_COST)
            if cut is None:
                return
            rec = [t, stream, STREAM_LEVELS.get(stream, "INFO"), None, [cut], len(cut)]
            self.records.append(rec)
            self._open = rec

    def add(self, t: float, level: str, logger: str | None, message: str,
            stream: str = "log") -> None:
        with self._lock:
            self._open = None
            cut = self._room(message, RECORD_COST)
            if cut is not None:
                self.records.append([t, stream, level, logger, [cut], len(cut)])

    def record(self, rec: logging.LogRecord) -> None:
        try:
            message = rec.getMessage()
        except Exception as exc:  # a bad format string: keep what was logged, and why
            message = f"{rec.msg!r} {rec.args!r} (unformattable: {exc})"
        if rec.exc_info:
            message += "\n" + "".join(traceback.format_exception(*rec.exc_info)).rstrip("\n")
        if rec.stack_info:
            message += "\n" + rec.stack_info
        self.add(rec.created, rec.levelname, rec.name, message)

    def drain(self, final: bool = False) -> list[LogRecord]:
        """The records written since the last drain; with ``final``, and output was dropped,
        a last record saying how much."""
        if not self.records and not self._back and not (final and self.dropped):
            return []  # the common case: a job that wrote nothing
        with self._lock:
            recs, self.records, self._open = self.records, [], None
            out, self._back = self._back, []
            dropped = self.dropped if final else 0
            if final:
                self.dropped = 0  # said once
        for t, stream, level, logger, chunks, _ in recs:
            text = "".join(chunks)
            d: LogRecord = {"t": t, "stream": stream, "level": level,
                            "message": text[:-1] if text.endswith("\n") else text}
            if logger:
                d["logger"] = logger
            out.append(d)
        if dropped:
            out.append({"t": time.time(), "stream": "noetl", "level": "WARNING",
                        "message": f"[log truncated: {dropped} more characters were dropped "
                                   f"(the limit is {self.limit} per step or loop item)]"})
        return out

    def put_back(self, records: list[LogRecord]) -> None:
        """Records a failed send took: they go, first, with the next drain."""
        with self._lock:
            self._back[:0] = records


class _Router(io.TextIOBase):
    """``sys.stdout`` / ``sys.stderr``: a capturing thread's writes go to its job's log (and
    stdout also to the copy :func:`capture` keeps); everyone else's to the real stream."""

    def __init__(self, stream: str, fallback: TextIO):
        self.stream = stream
        self.fallback = fallback

    def write(self, s: str) -> int:
        log: StepLog | None = getattr(_local, "log", None)
        buf = getattr(_local, "buf", None) if self.stream == "stdout" else None
        if log is None and buf is None:
            return self.fallback.write(s)
        if log is not None:
            log.write(self.stream, s)
        if buf is not None:
            buf.write(s)
        return len(s)

    def flush(self) -> None:
        if getattr(_local, "log", None) is None:
            self.fallback.flush()

    def isatty(self) -> bool:  # a step's output is not a terminal; the process's still is
        if getattr(_local, "log", None) is not None or getattr(_local, "buf", None) is not None:
            return False
        return self.fallback.isatty()

    def fileno(self) -> int:
        return self.fallback.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return str(getattr(self.fallback, "encoding", None) or "utf-8")

    def __getattr__(self, name: str) -> Any:
        return getattr(self.fallback, name)


_install_lock = threading.Lock()


def _install() -> None:
    """Route ``sys.stdout`` and ``sys.stderr`` per thread (again, if someone replaced them)."""
    if isinstance(sys.stdout, _Router) and isinstance(sys.stderr, _Router):
        return
    with _install_lock:
        if not isinstance(sys.stdout, _Router):
            sys.stdout = _Router("stdout", sys.stdout)
        if not isinstance(sys.stderr, _Router):
            sys.stderr = _Router("stderr", sys.stderr)


# -- logging ------------------------------------------------------------------------------
_orig_enabled = logging.Logger.isEnabledFor


def _enabled_for(self: logging.Logger, level: int) -> bool:
    """``Logger.isEnabledFor``, but a capturing thread's records at the step level pass."""
    if _orig_enabled(self, level):
        return True
    log = getattr(_local, "log", None)
    return log is not None and level >= log.level and not self.disabled \
        and level > self.manager.disable


class _ProcessLevels(logging.Filter):
    """On the process's other root handlers: records that exist only because a step thread
    captures them (below the process's level) do not reach the process's log."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(_local, "log", None) is None:
            return True
        return _orig_enabled(logging.getLogger(record.name), record.levelno)


_FILTER = _ProcessLevels()


class _StepHandler(logging.Handler):
    def handle(self, record: logging.LogRecord) -> bool:
        log: StepLog | None = getattr(_local, "log", None)
        if log is not None:
            if record.levelno >= log.level:
                log.record(record)
            return True
        # not a step: stand in for logging.lastResort, which no longer fires now that the
        # root logger has a handler
        last = logging.lastResort
        if last is not None and record.levelno >= last.level and not _handled(record.name):
            last.handle(record)
        return True

    def emit(self, record: logging.LogRecord) -> None:  # pragma: no cover - handle() does it
        self.handle(record)


def _handled(name: str) -> bool:
    """Does any handler other than ours see records of logger ``name``?"""
    c: Any = logging.getLogger(name)
    while c is not None:
        if any(h is not _HANDLER for h in c.handlers):
            return True
        if not c.propagate:
            return False
        c = c.parent
    return False


_HANDLER = _StepHandler()


def _install_logging() -> None:
    root = logging.getLogger()
    if logging.Logger.isEnabledFor is not _enabled_for:
        with _install_lock:
            logging.Logger.isEnabledFor = _enabled_for  # type: ignore[method-assign]
    if _HANDLER not in root.handlers:
        root.addHandler(_HANDLER)
    for h in root.handlers:  # also those added since (basicConfig, a test's log capture)
        if h is not _HANDLER and _FILTER not in h.filters:
            h.addFilter(_FILTER)


class capture_job:
    """Everything this thread writes (stdout, stderr, logging) goes to ``log`` inside
    (a class rather than a generator: it runs once per job)."""

    __slots__ = ("log", "prev")

    def __init__(self, log: StepLog):
        self.log = log
        self.prev: StepLog | None = None

    def __enter__(self) -> StepLog:
        _install()
        _install_logging()
        self.prev = getattr(_local, "log", None)
        _local.log = self.log
        return self.log

    def __exit__(self, *exc: object) -> None:
        _local.log = self.prev


def current() -> StepLog | None:
    """The log of the job this thread runs, if any."""
    return getattr(_local, "log", None)


@contextmanager
def capture(limit: int = 65536) -> Iterator[io.StringIO]:
    """A copy of what this thread prints inside (it still goes to the job's log)."""
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
