"""Run ``noetl`` on a pseudo-terminal, as a person at a terminal would: its own session with the
pty as controlling terminal, so typing Ctrl-C (``\\x03``) makes the kernel send SIGINT."""

from __future__ import annotations

import fcntl
import os
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path
from typing import Any

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Za-z0-9]|\r")


class PtyProcess:
    def __init__(self, args: list[str], env: dict[str, str], cwd: Path,
                 cols: int = 140, rows: int = 40):
        self.master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

        def controlling_tty() -> None:
            os.setsid()
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)

        self.proc = subprocess.Popen([sys.executable, "-m", "noetl", *args], stdin=slave,
                                     stdout=slave, stderr=slave, env={**env, "TERM": "xterm"},
                                     cwd=cwd, preexec_fn=controlling_tty, close_fds=True)
        os.close(slave)
        self.raw = b""

    @property
    def text(self) -> str:
        """Everything shown so far, without terminal control sequences."""
        return ANSI.sub("", self.raw.decode("utf-8", "replace"))

    def read(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            ready, _, _ = select.select([self.master], [], [], left)
            if not ready:
                return
            try:
                chunk = os.read(self.master, 65536)
            except OSError:  # the child closed the terminal (EIO)
                return
            if not chunk:
                return
            self.raw += chunk

    def wait_for(self, pattern: str, timeout: float) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while True:
            m = re.search(pattern, self.text)
            if m:
                return m
            if time.monotonic() > deadline or (self.proc.poll() is not None
                                               and not self._pending()):
                raise AssertionError(f"{pattern!r} not shown within {timeout} s "
                                     f"(exit {self.proc.poll()}):\n{self.text[-3000:]}")
            self.read(0.05)

    def _pending(self) -> bool:
        ready, _, _ = select.select([self.master], [], [], 0)
        return bool(ready)

    def type(self, data: bytes) -> None:
        os.write(self.master, data)

    def finish(self, timeout: float) -> int:
        """Read until the process exits; its exit code."""
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None and time.monotonic() < deadline:
            self.read(0.05)
        if self.proc.poll() is None:
            self.kill()
            raise AssertionError(f"still running after {timeout} s:\n{self.text[-3000:]}")
        self.read(0.2)
        return int(self.proc.returncode)

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def __enter__(self) -> PtyProcess:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.kill()
        os.close(self.master)
