"""Run a python step in a child process, so that a ``timeout`` can really stop it.

Used when a python step sets ``timeout``: the step's code, args and the names it may read from
the render context travel to ``python -c`` as JSON on stdin; the result (or the exception's type,
message, traceback and the user's own frames) comes back as JSON on stdout. On timeout, or when
the worker learns that the execution was cancelled, the whole process group is killed. Values must be
JSON-serialisable both ways. The child also dies with the worker thread that started it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any

from noetl.errors import ToolError
from noetl.templates import json_default

_CHILD = r"""
import io, json, sys, contextlib, traceback
payload = json.loads(sys.stdin.read())
from noetl.tools.python import _compile, call_main, step_globals, user_traceback
out = io.StringIO()
try:
    ns = step_globals(payload["ctx"])
    with contextlib.redirect_stdout(out):
        exec(_compile(payload["code"]), ns)
        main = ns.get("main")
        if not callable(main):
            raise ValueError("python code does not define main()")
        result = call_main(main, payload["args"], payload["ctx"])
    reply = {"ok": True, "result": result, "stdout": out.getvalue()}
except BaseException as exc:
    reply = {"ok": False, "type": type(exc).__name__, "message": str(exc) or type(exc).__name__,
             "traceback": traceback.format_exc(), "user_traceback": user_traceback(exc, True),
             "stdout": out.getvalue()}
sys.__stdout__.write("\n__NOETL_RESULT__" + json.dumps(reply, default=str))
"""


def run_isolated(code: str, args: dict[str, Any], ctx: dict[str, Any], timeout: float | None,
                 cancelled: threading.Event | None = None) -> tuple[Any, str]:
    """Return (result, stdout) or raise ToolError (TimeoutError on timeout, Cancelled when
    ``cancelled`` is set while it runs)."""
    plain_ctx = {k: v for k, v in ctx.items() if _jsonable(v)}
    payload = json.dumps({"code": code, "args": args, "ctx": plain_ctx}, default=json_default)
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen([sys.executable, "-c", _CHILD], stdin=subprocess.PIPE,
                                stdout=out, stderr=err, text=True, start_new_session=True,
                                env=_child_env(),
                                preexec_fn=_die_with_parent)
        assert proc.stdin is not None
        try:
            proc.stdin.write(payload)
            proc.stdin.close()
        except BrokenPipeError:
            pass
        deadline = time.monotonic() + timeout if timeout else float("inf")
        while proc.poll() is None:
            if cancelled is not None and cancelled.is_set():
                _kill(proc)
                raise ToolError("execution cancelled while the step ran (process killed)",
                                "Cancelled")
            left = deadline - time.monotonic()
            if left <= 0:
                _kill(proc)
                raise ToolError(f"python step timed out after {timeout or 0:g} s (process killed)",
                                "TimeoutError")
            try:
                proc.wait(min(left, 0.1))
            except subprocess.TimeoutExpired:
                continue
        out.seek(0)
        text = out.read()
        err.seek(0)
        errtext = err.read()
    marker = text.rfind("\n__NOETL_RESULT__")
    if marker < 0:
        raise ToolError(f"python step process exited with code {proc.returncode} before "
                        f"reporting a result: {errtext.strip()[-2000:]}", "ProcessError")
    reply = json.loads(text[marker + len("\n__NOETL_RESULT__"):])
    stdout = (text[:marker] + reply.get("stdout", "")).strip("\n")
    if not reply["ok"]:
        raise ToolError(reply["message"], reply["type"], reply.get("traceback"),
                        data={"stdout": stdout} if stdout else None,
                        user_traceback=reply.get("user_traceback") or None)
    return reply["result"], stdout


def _child_env() -> dict[str, str]:
    """The scrubbed environment (no NOETL_* secrets), able to import noetl."""
    from noetl.tools.step_env import scrubbed_environ

    env = scrubbed_environ()
    here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (here, env.get("PYTHONPATH")) if p)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _die_with_parent() -> None:
    """In the child, before exec: be killed if the worker dies (Linux), so a worker killed with
    SIGKILL leaves no step process running on behind it."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _kill(proc: subprocess.Popen[str]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def _jsonable(v: Any) -> bool:
    try:
        json.dumps(v, default=json_default)
        return True
    except (TypeError, ValueError):
        return False
