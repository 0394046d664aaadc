"""``shell``: run a command in a child process.

- ``command``: a string runs with ``/bin/sh -c`` (pipes, redirections, ``$VAR``); a list runs
  that program with those arguments, no shell (nothing in them is interpreted: the safe form
  for values that come from templates).
- ``env``: variables added to the child's environment, which is the worker's, scrubbed as a
  python step's (no ``NOETL_*`` variable, only the allowed names; ``noetl.tools.step_env``).
- ``cwd``: the directory it runs in (default: the worker's).
- the step's ``timeout`` (seconds): past it the process group is killed and the step fails
  with ``TimeoutError``; cancelling the execution kills it too.
- the command runs in a process group of its own; when the command ends, whatever is left
  of that group (``sleep 60 &``, a daemon that did not start its own session) is killed: a
  step leaves no process behind. The group is killed while the command's exited process is
  not yet reaped, so its id cannot have been reused.

What it writes goes to the step's log as it comes (stdout, stderr: ``noetl logs``), and the
result is ``{exit_code, stdout, stderr}`` (the first 64 KiB of stdout, the last 4,000
characters of stderr; ``exit_code`` is ``-N`` for a command killed by signal N). A non-zero
exit fails the step (``ShellExit``, the tail of stderr in the message: ``exited with status
3``, or ``killed by signal 9 (SIGKILL)``). A command that cannot start (not found, not
executable, no such ``cwd``) or a configuration that is not one fails at once, not retried
(``ShellError``: the spec's ``non_retryable``): no retry can make it start. A timeout and a
non-zero exit are retried as the step's retry policy says (a slow network, a busy service
may pass the next time).
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
from typing import Any

from noetl.errors import ToolError
from noetl.tools.base import ToolCall
from noetl.tools.output import current
from noetl.tools.python_isolated import _Tail, die_with_parent, wait_group
from noetl.tools.step_env import scrubbed_environ

TAIL = 2000  # characters of stderr a non-zero exit's message carries


def _argv(command: Any) -> list[str]:
    if isinstance(command, str) and command.strip():
        return ["/bin/sh", "-c", command]
    if isinstance(command, list) and command and all(
            isinstance(a, str | int | float) and not isinstance(a, bool) for a in command):
        return [str(a) for a in command]
    raise ToolError("shell: 'command' must be a non-empty string or a list of strings, got "
                    f"{type(command).__name__}", "ShellError")


def _env(extra: Any) -> dict[str, str]:
    env = scrubbed_environ()
    if extra is None:
        return env
    if not isinstance(extra, dict):
        raise ToolError(f"shell: 'env' must be a mapping, got {type(extra).__name__}",
                        "ShellError")
    env.update({str(k): "" if v is None else str(v) for k, v in extra.items()})
    return env


def run(call: ToolCall) -> Any:
    a = call.action
    argv = _argv(a.get("command"))
    env = _env(a.get("env"))
    cwd = a.get("cwd")
    if cwd is not None and not isinstance(cwd, str):
        raise ToolError("shell: 'cwd' must be a directory path", "ShellError")
    log = current()
    with tempfile.TemporaryDirectory(prefix="noetl-shell-") as tmp:
        paths = {n: os.path.join(tmp, n) for n in ("stdout", "stderr")}
        with open(paths["stdout"], "wb") as out, open(paths["stderr"], "wb") as err:
            try:
                proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                        cwd=cwd or None, env=env, start_new_session=True,
                                        preexec_fn=die_with_parent)
            except OSError as exc:  # not found, not executable, no such cwd
                raise ToolError(f"shell: cannot run {argv[0]!r}"
                                f"{f' in {cwd!r}' if cwd else ''}: {exc.strerror or exc}",
                                "ShellError") from None
        tails = [_Tail(paths["stdout"], "stdout", log), _Tail(paths["stderr"], "stderr", log)]
        _wait(proc, call, tails)
        for t in tails:
            t.pump(final=True)
    stdout, stderr = "".join(tails[0].copy), tails[1].tail
    result = {"exit_code": proc.returncode, "stdout": stdout, "stderr": stderr}
    if proc.returncode != 0:
        tail = stderr.strip()[-TAIL:]
        raise ToolError(f"shell: command {_ended(proc.returncode)}"
                        + (f": {tail}" if tail else ""), "ShellExit", data=result)
    return result


def _ended(returncode: int) -> str:
    """How a command that failed ended: ``exited with status 3``, ``killed by signal 9
    (SIGKILL)`` (Popen's returncode is -N for signal N)."""
    if returncode >= 0:
        return f"exited with status {returncode}"
    try:
        name = f" ({signal.Signals(-returncode).name})"
    except ValueError:
        name = ""
    return f"killed by signal {-returncode}{name}"


def _wait(proc: subprocess.Popen[bytes], call: ToolCall, tails: list[_Tail]) -> None:
    """:func:`~noetl.tools.python_isolated.wait_group`, its ends as the step's errors."""
    ended = wait_group(proc, call.timeout, call.services.cancelled, tails)
    if ended == "cancelled":
        raise ToolError("shell: execution cancelled while the command ran (process "
                        "killed)", "Cancelled")
    if ended == "timeout":
        raise ToolError(f"shell: command timed out after {call.timeout or 0:g} s "
                        "(process killed)", "TimeoutError")
