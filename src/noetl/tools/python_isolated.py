"""Run a python step in a child process, so that a ``timeout`` can really stop it.

Used when a python step sets ``timeout``: the step's code, args and the names it may read from
the render context travel to ``python -c`` as JSON on stdin; the result (or the exception's type,
message, traceback and the user's own frames) comes back as JSON in a reply file. Its stdout and
stderr go to files and its logging records to a file of JSON lines, which the worker tails into
the job's log while it runs. On timeout, or when the worker learns that the execution was
cancelled, the whole process group is killed. Values must be
JSON-serialisable both ways. The child also dies with the worker thread that started it.
"""

from __future__ import annotations

import codecs
import json
import logging
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
from noetl.tools.output import StepLog, current

_CHILD = r"""
import json, logging, sys, traceback
payload = json.loads(sys.stdin.read())
from noetl.tools.python import _compile, call_main, step_globals, user_traceback

class _Lines(logging.Handler):  # logging records, one JSON line each, for the worker to tail
    def __init__(self, f):
        super().__init__()
        self.f = f
    def emit(self, r):
        try:
            msg = r.getMessage()
        except Exception as exc:
            msg = f"{r.msg!r} {r.args!r} (unformattable: {exc})"
        if r.exc_info:
            msg += "\n" + logging.Formatter().formatException(r.exc_info)
        if r.stack_info:
            msg += "\n" + r.stack_info
        self.f.write(json.dumps({"t": r.created, "level": r.levelname, "logger": r.name,
                                 "message": msg}) + "\n")
        self.f.flush()

logging.getLogger().addHandler(_Lines(open(payload["log_path"], "w", encoding="utf-8")))
logging.getLogger().setLevel(payload["level"])
try:
    ns = step_globals(payload["ctx"])
    exec(_compile(payload["code"]), ns)
    main = ns.get("main")
    if not callable(main):
        raise ValueError("python code does not define main()")
    reply = {"ok": True, "result": call_main(main, payload["args"], payload["ctx"])}
except BaseException as exc:
    reply = {"ok": False, "type": type(exc).__name__, "message": str(exc) or type(exc).__name__,
             "traceback": traceback.format_exc(), "user_traceback": user_traceback(exc, True)}
sys.stdout.flush()
sys.stderr.flush()
with open(payload["reply_path"], "w", encoding="utf-8") as f:
    f.write(json.dumps(reply, default=str))
"""
STDOUT_COPY = 65536  # characters of print output kept for meta.stdout, as in a worker thread


class _Tail:
    """Follow a file the step's process writes: new text goes to the job's log as it comes."""

    def __init__(self, path: str, stream: str, log: StepLog | None):
        self.path = path
        self.stream = stream
        self.log = log
        self.offset = 0
        self.decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self.pending = ""  # a logging line not complete yet
        self.copy: list[str] = []  # the first STDOUT_COPY characters (stdout)
        self.copied = 0
        self.tail = ""  # the last characters (stderr: for an early exit's message)

    def pump(self, final: bool = False) -> None:
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read(8 << 20)
                self.offset += len(data)
        except FileNotFoundError:
            return
        text = self.decoder.decode(data, final)
        if not text:
            return
        if self.stream == "logs":
            self._lines(text)
            return
        if self.copied < STDOUT_COPY:
            self.copy.append(text[:STDOUT_COPY - self.copied])
            self.copied += len(self.copy[-1])
        self.tail = (self.tail + text)[-4000:]
        if self.log is not None:
            self.log.write(self.stream, text)

    def _lines(self, text: str) -> None:
        *lines, self.pending = (self.pending + text).split("\n")
        for line in lines:
            try:
                r = json.loads(line)
                t, level, logger, message = float(r["t"]), str(r["level"]), r.get("logger"), \
                    str(r["message"])
            except (ValueError, KeyError, TypeError):
                t, level, logger, message = time.time(), "INFO", None, line
            if self.log is not None:
                self.log.add(t, level, logger, message)


def run_isolated(code: str, args: dict[str, Any], ctx: dict[str, Any], timeout: float | None,
                 cancelled: threading.Event | None = None) -> tuple[Any, str]:
    """Return (result, stdout) or raise ToolError (TimeoutError on timeout, Cancelled when
    ``cancelled`` is set while it runs). The process's stdout, stderr and logging records go
    to the running job's log (:func:`noetl.tools.output.current`) while it runs."""
    log = current()
    plain_ctx = {k: v for k, v in ctx.items() if _jsonable(v)}
    with tempfile.TemporaryDirectory(prefix="noetl-step-") as tmp:
        paths = {n: os.path.join(tmp, n) for n in ("stdout", "stderr", "logs", "reply")}
        payload = json.dumps({"code": code, "args": args, "ctx": plain_ctx,
                              "log_path": paths["logs"], "reply_path": paths["reply"],
                              "level": log.level if log is not None else logging.INFO},
                             default=json_default)
        with open(paths["stdout"], "wb") as out, open(paths["stderr"], "wb") as err:
            proc = subprocess.Popen([sys.executable, "-c", _CHILD], stdin=subprocess.PIPE,
                                    stdout=out, stderr=err, text=True, start_new_session=True,
                                    env=_child_env(), preexec_fn=die_with_parent)
        tails = [_Tail(paths["stdout"], "stdout", log), _Tail(paths["stderr"], "stderr", log),
                 _Tail(paths["logs"], "logs", log)]
        _wait(proc, payload, timeout, cancelled, tails)
        for t in tails:
            t.pump(final=True)
        try:
            with open(paths["reply"], encoding="utf-8") as f:
                reply_text = f.read()
        except FileNotFoundError:
            reply_text = ""
    stdout = "".join(tails[0].copy).strip("\n")
    if not reply_text:
        raise ToolError(f"python step process exited with code {proc.returncode} before "
                        f"reporting a result: {tails[1].tail.strip()[-2000:]}", "ProcessError")
    reply = json.loads(reply_text)
    if not reply["ok"]:
        raise ToolError(reply["message"], reply["type"], reply.get("traceback"),
                        data={"stdout": stdout} if stdout else None,
                        user_traceback=reply.get("user_traceback") or None)
    return reply["result"], stdout


def _wait(proc: subprocess.Popen[str], payload: str, timeout: float | None,
          cancelled: threading.Event | None, tails: list[_Tail]) -> None:
    """Feed the payload, then :func:`wait_group`."""
    assert proc.stdin is not None
    try:
        proc.stdin.write(payload)
        proc.stdin.close()
    except BrokenPipeError:
        pass
    ended = wait_group(proc, timeout, cancelled, tails)
    if ended == "cancelled":
        raise ToolError("execution cancelled while the step ran (process killed)", "Cancelled")
    if ended == "timeout":
        raise ToolError(f"python step timed out after {timeout or 0:g} s (process killed)",
                        "TimeoutError")


def wait_group(proc: subprocess.Popen[Any], timeout: float | None,
               cancelled: threading.Event | None, tails: list[_Tail]) -> str | None:
    """Wait for a process started in its own session (its process group), tailing its output
    into the step's log. On timeout or cancellation kill the group and say which
    (``"timeout"`` / ``"cancelled"``); once the process has exited, kill what is left of the
    group (background children) and reap it: None. (Shell and isolated python steps.)"""
    deadline = time.monotonic() + timeout if timeout else float("inf")
    nap = 0.0005  # as Popen.wait(timeout): a quick process is not kept waiting
    while not exited(proc):
        for t in tails:
            t.pump()
        if cancelled is not None and cancelled.is_set():
            _kill(proc)
            return "cancelled"
        left = deadline - time.monotonic()
        if left <= 0:
            _kill(proc)
            return "timeout"
        time.sleep(min(left, nap))  # (waitid cannot wait with a timeout and not reap)
        nap = min(nap * 2, 0.05)
    _kill(proc)
    return None


def _child_env() -> dict[str, str]:
    """The scrubbed environment (no NOETL_* secrets), able to import noetl."""
    from noetl.tools.step_env import scrubbed_environ

    env = scrubbed_environ()
    here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (here, env.get("PYTHONPATH")) if p)
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONIOENCODING"] = "utf-8"
    return env


def die_with_parent() -> None:
    """In a child, before exec: be killed if the process that started it dies (Linux), so a
    worker (or a worker supervisor) killed with SIGKILL leaves no process running on behind it."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def exited(proc: subprocess.Popen[Any]) -> bool:
    """Whether the process has exited, leaving it unreaped: a zombie holds its pid, and so its
    process group's id, until :func:`_kill` kills what is left of the group and reaps it."""
    try:
        return os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:  # reaped already
        return True


def _kill(proc: subprocess.Popen[Any]) -> None:
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
