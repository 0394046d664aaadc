"""Run a python step in a child process, so that a ``timeout`` can really stop it.

Used when a python step sets ``timeout``: the step's code, args and the names it may read from
the render context travel to ``python -c`` as JSON on stdin; the result (or the exception's type,
message and traceback) comes back as JSON on stdout. On timeout the whole process group is
killed. Values must be JSON-serialisable both ways.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from typing import Any

from noetl.errors import ToolError
from noetl.templates import json_default

_CHILD = r"""
import io, json, sys, contextlib
payload = json.loads(sys.stdin.read())
from noetl.tools.python import _compile, call_main, user_traceback
out = io.StringIO()
try:
    ns = {"__name__": "__noetl_step__", "json": json}
    with contextlib.redirect_stdout(out):
        exec(_compile(payload["code"]), ns)
        main = ns.get("main")
        if not callable(main):
            raise ValueError("python code does not define main()")
        result = call_main(main, payload["args"], payload["ctx"])
    reply = {"ok": True, "result": result, "stdout": out.getvalue()}
except BaseException as exc:
    reply = {"ok": False, "type": type(exc).__name__, "message": str(exc) or type(exc).__name__,
             "traceback": user_traceback(exc), "stdout": out.getvalue()}
sys.__stdout__.write("\n__NOETL_RESULT__" + json.dumps(reply, default=str))
"""


def run_isolated(code: str, args: dict[str, Any], ctx: dict[str, Any],
                 timeout: float) -> tuple[Any, str]:
    """Return (result, stdout) or raise ToolError (TimeoutError on timeout)."""
    plain_ctx = {k: v for k, v in ctx.items() if _jsonable(v)}
    payload = json.dumps({"code": code, "args": args, "ctx": plain_ctx}, default=json_default)
    proc = subprocess.Popen([sys.executable, "-c", _CHILD], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        out, err = proc.communicate(payload, timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise ToolError(f"python step timed out after {timeout:g} s (process killed)",
                        "TimeoutError") from None
    marker = out.rfind("\n__NOETL_RESULT__")
    if marker < 0:
        raise ToolError(f"python step process exited with code {proc.returncode}: "
                        f"{err.strip()[-2000:]}", "ProcessError")
    reply = json.loads(out[marker + len("\n__NOETL_RESULT__"):])
    stdout = (out[:marker] + reply.get("stdout", "")).strip("\n")
    if not reply["ok"]:
        raise ToolError(reply["message"], reply["type"], reply.get("traceback"),
                        data={"stdout": stdout} if stdout else None)
    return reply["result"], stdout


def _jsonable(v: Any) -> bool:
    try:
        json.dumps(v, default=json_default)
        return True
    except (TypeError, ValueError):
        return False
