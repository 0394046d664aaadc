"""What a python step's code sees of the worker process: a scrubbed environment, and an ``os``
whose ``_exit`` ends the step, not the worker.

- **Environment**: only the names in :data:`ALLOWED` (plus ``NOETL_STEP_ENV_ALLOW``, a
  comma-separated list set by the operator), and never a ``NOETL_*`` name (the API token,
  the encryption key, store URLs). In a child process (``isolate: true``, a ``timeout``, or a
  re-run after the step's worker was lost) this is the process environment; in a worker
  thread it is what ``os.environ`` / ``os.getenv`` show to the step's code.
- **Exit**: ``os._exit()``, ``sys.exit()`` and ``KeyboardInterrupt`` fail the step.

A worker thread is not a security boundary: code that goes round ``os`` (``posix``,
``ctypes``) reaches the worker process; run such code with ``isolate: true``.
"""

from __future__ import annotations

import builtins
import os
import types
from collections.abc import Callable
from typing import Any, Generic, TypeVar

ALLOWED = frozenset({"PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LANGUAGE", "TZ",
                     "TMPDIR", "TEMP", "TMP", "PWD", "TERM", "PYTHONPATH", "PYTHONHOME",
                     "VIRTUAL_ENV", "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE"})


T = TypeVar("T")


class StepExit(BaseException):
    """``os._exit(code)`` called by a step's code."""


def scrubbed_environ(environ: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ if environ is None else environ)
    extra = {x.strip() for x in env.get("NOETL_STEP_ENV_ALLOW", "").split(",") if x.strip()}
    out = {k: v for k, v in env.items()
           if not k.startswith("NOETL_") and (k in ALLOWED or k.startswith("LC_") or k in extra)}
    if extra:  # a child process scrubs again: keep the operator's list (names, not secrets)
        out["NOETL_STEP_ENV_ALLOW"] = ",".join(sorted(extra))
    return out


class FromEnviron(Generic[T]):
    """A value made from the process environment, made again only when ``os.environ``
    changes: kept with a snapshot of ``os.environ``'s data, which costs one dict comparison in
    C to check (walking ``os.environ`` decodes every variable in Python)."""

    def __init__(self, build: Callable[[], T]) -> None:
        self.build = build
        self._kept: tuple[dict[Any, Any] | None, T | None] = (None, None)

    def get(self) -> T:
        data = getattr(os.environ, "_data", None)
        if not isinstance(data, dict):  # not CPython's os._Environ: build every time
            return self.build()
        snapshot, value = self._kept
        if snapshot is None or snapshot != data:
            snapshot = dict(data)  # taken first: a change made meanwhile is seen next time
            value = self.build()
            self._kept = (snapshot, value)
        return value  # type: ignore[return-value]


_SCRUBBED = FromEnviron(scrubbed_environ)


def step_environ() -> dict[str, str]:
    """A fresh copy of :func:`scrubbed_environ` of the process environment for one step
    (scrubbing cost more than the rest of a small step: it is redone only when the environment
    changes). Each step gets its own copy: what one step writes to its ``os.environ`` no other
    step sees."""
    return dict(_SCRUBBED.get())


def _exit(code: int = 0) -> None:
    raise StepExit(f"os._exit({code}) called by the step's code")


class _StepOs(types.ModuleType):
    """``os`` as step code sees it: the real module but for ``environ``, ``getenv`` and
    ``_exit``."""

    def __init__(self) -> None:
        super().__init__("os")
        self.environ = step_environ()
        self.getenv = self.environ.get
        self._exit = _exit

    def __getattr__(self, name: str) -> Any:
        return getattr(os, name)


def step_os() -> types.ModuleType:
    return _StepOs()


def step_builtins(step_module: types.ModuleType) -> dict[str, Any]:
    """Builtins whose ``import os`` gives ``step_module``."""
    real = builtins.__import__

    def _import(name: str, globals: Any = None, locals: Any = None,
                fromlist: Any = (), level: int = 0) -> Any:
        if level == 0 and (name == "os" or name.startswith("os.")) and not (
                name != "os" and fromlist):
            real(name, globals, locals, fromlist, level)
            return step_module
        return real(name, globals, locals, fromlist, level)

    return {**vars(builtins), "__import__": _import}
