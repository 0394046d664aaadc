"""Bounds for user templates: no template can take the process down or hold it for long.

- :class:`BoundedSandbox` is Jinja's sandbox with the operators that can blow up
  (``**``, ``*``, ``+``, ``%``, ``//``) intercepted: Jinja no longer folds them while compiling
  (so ``{{ 10 ** (10 ** 9) }}`` compiles at once), and at render time a power, a product, a
  repetition or a concatenation whose result would exceed :data:`MAX_INT_BITS` or
  :data:`MAX_SIZE` is refused before it is computed. Method calls are checked the same way
  (``'x'.center(10**9)``, ``l.extend(l)``), and ``namespace`` attributes (the one way a template
  loop carries a value from one iteration to the next) are bounded too.
- :func:`arm` / :func:`disarm` (or the context manager :func:`time_limit`) bound the wall
  time of a render: one watchdog thread raises :class:`TemplateTimeout` in a thread whose
  render has run past its deadline (between two Python bytecodes: every single operation is
  already bounded by the sandbox). A render costs a dictionary insert and removal and one
  lock; no thread is started per render.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator, Sized
from contextlib import contextmanager
from typing import Any

from jinja2.exceptions import SecurityError
from jinja2.sandbox import SandboxedEnvironment
from jinja2.utils import Namespace

MAX_INT_BITS = 10_000  # about 3,000 decimal digits
MAX_SIZE = 10_000_000  # characters of a string, items of a list made by one operation
RENDER_SECONDS = float(os.environ.get("NOETL_TEMPLATE_TIMEOUT", "5"))


class TemplateTimeout(Exception):
    """A render ran past its time limit."""


def _size(v: Any) -> int:
    return len(v) if isinstance(v, str | bytes | list | tuple | dict) else 0


def _bits(v: Any) -> int:
    return abs(v).bit_length() if isinstance(v, int) and not isinstance(v, bool) else 0


def _refuse(what: str) -> None:
    raise SecurityError(f"template refused: {what} (limits: {MAX_INT_BITS} bits for an "
                        f"integer, {MAX_SIZE:,} items for a string or list)")


def check_binop(op: str, left: Any, right: Any) -> None:
    if op == "**":
        if _bits(left) > 1 and isinstance(right, int) and right > 0 \
                and (_bits(left) - 1) * right > MAX_INT_BITS:
            _refuse(f"{_show(left)} ** {_show(right)} is too large")
        if isinstance(left, float | int) and isinstance(right, float) and abs(right) > 1e6:
            return  # float powers overflow to an error quickly
    elif op == "*":
        if _bits(left) + _bits(right) > MAX_INT_BITS:
            _refuse("the product is too large")
        for seq, n in ((left, right), (right, left)):
            if _size(seq) and isinstance(n, int) and _size(seq) * n > MAX_SIZE:
                _refuse(f"a repetition of {_size(seq):,} items {n:,} times")
    elif op == "+":
        if _size(left) + _size(right) > MAX_SIZE:
            _refuse("the concatenation is too long")
    elif op == "%" and isinstance(left, str):
        args = right if isinstance(right, tuple) else (right,)
        if any(_bits(a) > 24 for a in args):  # '%*s' with a huge width
            _refuse("a format width is too large")


def _show(v: Any) -> str:
    return str(v) if _bits(v) < 64 else f"<{_bits(v)}-bit integer>"


_STR_SIZED = frozenset({"center", "ljust", "rjust", "zfill", "expandtabs", "format",
                        "format_map", "replace", "join"})


def check_call(obj: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    if not args and not kwargs:  # no size to give, nothing to add: only the result can be
        return  # too large, and BoundedSandbox.call checks it
    owner = getattr(obj, "__self__", None)
    name = getattr(obj, "__name__", "")
    values = (*args, *kwargs.values())
    if isinstance(owner, str) and name in _STR_SIZED:
        if any(_bits(a) > 24 for a in values):
            _refuse(f"str.{name}() with a size beyond {MAX_SIZE:,}")
        if name == "replace" and len(args) >= 2:
            grow = max(1, owner.count(str(args[0])) if args[0] else len(owner) + 1)
            if grow * _size(args[1]) > MAX_SIZE:
                _refuse("str.replace() result is too long")
        if name == "join" and args and isinstance(args[0], Sized) and len(owner) * len(args[0]) > MAX_SIZE:
            _refuse("str.join() result is too long")
    elif isinstance(owner, list) and name in ("extend", "append", "insert", "__iadd__"):
        extra = _size(args[-1]) if name in ("extend", "__iadd__") and args else 1
        if len(owner) + extra > MAX_SIZE:
            _refuse("the list is too long")
    elif isinstance(owner, dict) and name in ("update", "setdefault"):
        if len(owner) + sum(_size(a) for a in values) > MAX_SIZE:
            _refuse("the mapping is too large")
    if any(_bits(a) > MAX_INT_BITS for a in values):
        _refuse("an integer argument is too large")


class BoundedNamespace(Namespace):
    """``namespace()``: attributes set in a loop are bounded like every other value."""

    def __setitem__(self, name: str, value: Any) -> None:
        if _bits(value) > MAX_INT_BITS or _size(value) > MAX_SIZE:
            _refuse(f"namespace attribute '{name}' is too large")
        super().__setitem__(name, value)


_NUMBERS = frozenset({int, float})  # exactly: bool and int subclasses take the general path


class BoundedSandbox(SandboxedEnvironment):
    intercepted_binops = frozenset({"**", "*", "+", "%", "//"})

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        bound_filters(self)

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if type(left) in _NUMBERS and type(right) in _NUMBERS and operator != "**":
            # plain numbers (the common case): of the checks below only an integer product
            # can be refused before it is computed, and only an integer result after
            if operator == "*" and type(left) is int and type(right) is int \
                    and left.bit_length() + right.bit_length() > MAX_INT_BITS:
                _refuse("the product is too large")
            result = self.binop_table[operator](left, right)
            if type(result) is int and result.bit_length() > MAX_INT_BITS:
                _refuse("the result is too large")
            return result
        check_binop(operator, left, right)
        result = self.binop_table[operator](left, right)
        if _bits(result) > MAX_INT_BITS:
            _refuse("the result is too large")
        return result

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        check_call(__obj, args, kwargs)
        result = super().call(__context, __obj, *args, **kwargs)
        if _bits(result) > MAX_INT_BITS or (isinstance(result, str | list)
                                            and len(result) > MAX_SIZE):
            _refuse("a call returned a value that is too large")
        return result


_SIZED_FILTERS = ("center", "indent", "wordwrap", "format", "truncate", "batch", "slice",
                  "replace", "join")


def bound_filters(env: SandboxedEnvironment) -> None:
    """Filters that take a size (``center(10**9)``, ``format('%*s', 10**9, x)``) or can grow
    a string (``replace``, ``join``) get the checks of the matching method calls."""
    for name in _SIZED_FILTERS:
        f = env.filters.get(name)
        if f is None:
            continue

        def bounded(*args: Any, __f: Any = f, __name: str = name, **kwargs: Any) -> Any:
            values = [a for a in (*args, *kwargs.values()) if not hasattr(a, "environment")]
            if __name in ("replace", "join"):
                if values and isinstance(values[0], str):
                    check_call(getattr(values[0], __name), tuple(values[1:]), {})
            elif any(_bits(a) > 24 for a in values[1:]):
                _refuse(f"filter {__name} with a size beyond {MAX_SIZE:,}")
            return __f(*args, **kwargs)

        bounded.__dict__.update(f.__dict__)  # keeps jinja's pass_context/pass_environment marks
        env.filters[name] = bounded


# -- the render time limit ------------------------------------------------------------------

_lock = threading.Lock()
_deadlines: dict[int, list[Any]] = {}  # thread id -> [deadline, fired, thread id]
_wake = threading.Event()
_watchdog: threading.Thread | None = None
_watchdog_pid = 0  # the process that started it (a forked child has none)


def _async_exc(tid: int, exc: type[BaseException] | None) -> None:
    """Raise ``exc`` in thread ``tid`` at its next bytecode (None: cancel one not raised yet)."""
    import ctypes  # only when a render overran its limit: not loaded by every process

    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(tid),
                                               None if exc is None else ctypes.py_object(exc))


def _watch() -> None:
    while True:
        _wake.wait(0.05)
        _wake.clear()
        t = time.monotonic()
        try:
            with _lock:  # an entry is only removed under the lock: none goes while we fire
                for tid, entry in list(_deadlines.items()):  # (added without the lock)
                    if not entry[1] and t >= entry[0]:
                        entry[1] = True
                        _async_exc(tid, TemplateTimeout)
        except Exception:  # never end the watchdog: renders would run unbounded
            logging.getLogger("noetl.sandbox").exception("template watchdog")


def _start_watchdog() -> None:
    global _watchdog, _watchdog_pid
    with _lock:
        if _watchdog is None or not _watchdog.is_alive() or _watchdog_pid != os.getpid():
            _watchdog = threading.Thread(target=_watch, name="noetl-template-watchdog",
                                         daemon=True)
            _watchdog.start()
            _watchdog_pid = os.getpid()


def arm(seconds: float | None = None) -> list[Any] | None:
    """Start this thread's deadline (``seconds``, default ``NOETL_TEMPLATE_TIMEOUT``); None
    when one is running already (a nested render keeps the outer deadline). Pair with
    :func:`disarm` in a ``finally``."""
    tid = threading.get_ident()
    if tid in _deadlines:
        return None
    if _watchdog_pid != os.getpid():  # not started yet in this process (or forked since)
        _start_watchdog()
    entry = [time.monotonic() + (RENDER_SECONDS if seconds is None else seconds), False, tid]
    _deadlines[tid] = entry  # one dict store (atomic); only its own thread replaces it
    return entry


def disarm(entry: list[Any] | None) -> None:
    """End the deadline :func:`arm` returned; a timeout not delivered yet is cancelled."""
    if entry is None:
        return
    tid = entry[2]
    while True:  # the exception may land here, before the entry is gone: go again
        try:
            with _lock:
                _deadlines.pop(tid, None)
                if entry[1]:  # fired: cancel an exception not delivered yet
                    _async_exc(tid, None)
            break
        except TemplateTimeout:
            continue


@contextmanager
def time_limit(seconds: float | None = None) -> Iterator[None]:
    """Raise :class:`TemplateTimeout` in this thread if the block runs past ``seconds``
    (default ``NOETL_TEMPLATE_TIMEOUT``, 5 s). Nested blocks keep the outer deadline.
    (Renders call :func:`arm` / :func:`disarm` directly: this generator costs more than a
    small render.)"""
    entry = arm(seconds)
    try:
        yield
    finally:
        disarm(entry)
