"""``noetl worker start`` supervises its worker processes: it runs ``--processes`` of them
(each a ``noetl worker start --no-supervise``) and starts again any that dies, so a step that
kills its process (``posix._exit``, a segfault in an extension, the OOM killer) costs one
process restart, not the worker. The job such a step held is re-leased when its lease expires,
run in a child process the next time (:func:`noetl.tools.python.isolated`) and, if it keeps
killing workers, failed by the engine with "worker died while running this step".

A process that exits before it started leasing (a refused token, an unreachable server) is a
configuration error: the supervisor stops the others and exits with its code. A process that
dies again soon after a restart is restarted after a growing delay (1 s, 2 s, ... 30 s).
SIGTERM/SIGINT are passed on; the supervisor exits 0 when its processes have stopped cleanly,
:data:`UNRECORDED_EXIT` when one stopped with results it could not report (the server or the
database unreachable until its grace ran out; those jobs run again once their leases expire).
Killed itself (SIGKILL), it takes its processes with it (Linux: parent-death signal).
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass

from noetl.tools.python_isolated import die_with_parent

READY_ENV = "NOETL_WORKER_READY_FD"
UNRECORDED_EXIT = 3  # a worker process stopped, some results not recorded (not restarted)
QUICK_DEATH_S = 10.0  # a process that dies within this time of its start backs off
MAX_BACKOFF_S = 30.0
log = logging.getLogger("noetl.worker.supervisor")


def signal_ready() -> None:
    """In a supervised worker process, once it leases: tell the supervisor."""
    fd = os.environ.pop(READY_ENV, None)
    if not fd:
        return
    try:
        os.write(int(fd), b"r")
        os.close(int(fd))
    except (OSError, ValueError):
        pass


@dataclass
class _Proc:
    index: int
    argv: list[str]
    proc: subprocess.Popen[bytes] | None = None
    ready_fd: int | None = None
    ready: bool = False
    started: float = 0.0
    quick_deaths: int = 0
    restart_at: float = 0.0
    exit_code: int | None = None  # set when it stopped for good

    def spawn(self) -> None:
        r, w = os.pipe()
        try:
            self.proc = subprocess.Popen(self.argv, env={**os.environ, READY_ENV: str(w)},
                                         pass_fds=(w,), preexec_fn=die_with_parent)
        finally:
            os.close(w)
        os.set_blocking(r, False)
        self.ready_fd, self.ready, self.started = r, False, time.monotonic()

    def check_ready(self) -> None:
        if self.ready or self.ready_fd is None:
            return
        try:
            got = os.read(self.ready_fd, 1)
        except BlockingIOError:
            return
        if got:
            self.ready = True
        self._close_fd()

    def _close_fd(self) -> None:
        if self.ready_fd is not None:
            os.close(self.ready_fd)
            self.ready_fd = None


class Supervisor:
    """Run one worker process per ``argvs`` entry until ``stop`` is set; see the module."""

    def __init__(self, argvs: list[list[str]]):
        self.procs = [_Proc(i, argv) for i, argv in enumerate(argvs)]

    def run(self, stop: threading.Event, grace: float) -> int:
        for p in self.procs:
            p.spawn()
        code = 0
        while not stop.is_set():
            code = self._tend()
            if code or all(p.exit_code is not None for p in self.procs):
                break
            stop.wait(0.2)
        code = self._stop_all(grace) or code
        if not code and any(p.exit_code == UNRECORDED_EXIT for p in self.procs):
            return UNRECORDED_EXIT
        return code

    def _tend(self) -> int:
        """Restart dead processes; a nonzero code means: give up with it."""
        now = time.monotonic()
        for p in self.procs:
            if p.exit_code is not None:
                continue
            if p.proc is None:
                if now >= p.restart_at:
                    p.spawn()
                continue
            p.check_ready()
            rc = p.proc.poll()
            if rc is None:
                if p.ready and now - p.started > QUICK_DEATH_S:
                    p.quick_deaths = 0
                continue
            p.check_ready()  # it may have become ready just before it died
            p._close_fd()
            if rc in (0, UNRECORDED_EXIT):  # stopped on a signal of its own: not restarted
                p.exit_code = rc
                continue
            if not p.ready:
                log.error("worker process %d exited with code %s before it started leasing; "
                          "stopping", p.index, rc)
                p.exit_code = rc if rc > 0 else 1
                return p.exit_code
            delay = 0.0 if p.quick_deaths == 0 else min(MAX_BACKOFF_S, 2.0 ** (p.quick_deaths - 1))
            if now - p.started <= QUICK_DEATH_S:
                p.quick_deaths += 1
            how = f"signal {-rc}" if rc < 0 else f"code {rc}"
            log.warning("worker process %d (pid %d) died (%s); starting it again%s", p.index,
                        p.proc.pid, how, f" in {delay:g} s" if delay else "")
            p.proc, p.restart_at = None, now + delay
        return 0

    def _stop_all(self, grace: float) -> int:
        live = [p.proc for p in self.procs if p.proc is not None and p.proc.poll() is None]
        for proc in live:
            proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        code = 0
        for p in self.procs:
            if p.proc is None:
                continue
            try:
                rc = p.proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.proc.kill()
                rc = p.proc.wait()
            p._close_fd()
            if rc and not code and p.exit_code is None:
                code = rc if rc > 0 else 1
        return code
