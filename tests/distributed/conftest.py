"""Real processes: ``noetl server start`` and ``noetl worker start`` subprocesses on PostgreSQL,
bound to free loopback ports, killed in teardown."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

LEASE_SECONDS = "2"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def base_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("NOETL_") or k == "NOETL_TEST_POSTGRES_URL"}
    env["NOETL_HOME"] = str(home)
    env["PYTHONUNBUFFERED"] = "1"
    return env


@dataclass
class Cluster:
    pg_url: str
    home: Path
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    urls: dict[str, str] = field(default_factory=dict)

    def _spawn(self, name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        log = open(self.home / f"{name}.log", "wb")
        p = subprocess.Popen([sys.executable, "-m", "noetl", *args], env=env, stdout=log,
                             stderr=subprocess.STDOUT, cwd=self.home)
        self.procs[name] = p
        return p

    def server(self, name: str, token: str | None = None, port: int | None = None,
               env_extra: dict[str, str] | None = None, log_level: str = "warning") -> str:
        port = port or free_port()
        env = {**base_env(self.home), **(env_extra or {})}
        if token:
            env["NOETL_API_TOKEN"] = token
        p = self._spawn(name, ["server", "start", "--port", str(port), "--store", self.pg_url,
                               "--log-level", log_level], env)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            if p.poll() is not None:
                raise RuntimeError(f"server {name} exited: {self.log(name)}")
            try:
                if httpx.get(url + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"server {name} not ready: {self.log(name)}")
            time.sleep(0.05)
        self.urls[name] = url
        return url

    def worker(self, name: str, server: str, concurrency: int = 4, token: str | None = None,
               log_level: str = "warning", lease: str = LEASE_SECONDS,
               extra: tuple[str, ...] = ()) -> subprocess.Popen[bytes]:
        env = base_env(self.home)
        env["NOETL_LEASE_SECONDS"] = lease
        if token:
            env["NOETL_API_TOKEN"] = token
        return self._spawn(name, ["worker", "start", "--server", self.urls[server],
                                  "--worker-id", name, "--concurrency", str(concurrency),
                                  "--wait-seconds", "2", "--log-level", log_level, *extra], env)

    def direct(self, name: str, concurrency: int | None = 4, log_level: str = "warning",
               lease: str = LEASE_SECONDS, env_extra: dict[str, str] | None = None
               ) -> subprocess.Popen[bytes]:
        """A direct worker: ``noetl worker start --store`` on this cluster's database."""
        env = {**base_env(self.home), "NOETL_LEASE_SECONDS": lease, **(env_extra or {})}
        threads = [] if concurrency is None else ["--concurrency", str(concurrency)]
        return self._spawn(name, ["worker", "start", "--store", self.pg_url, "--worker-id", name,
                                  *threads, "--log-level", log_level], env)

    def ready_worker(self, name: str, server: str, **kw: Any) -> None:
        """:meth:`worker`, once it leases (and handles signals: a SIGTERM earlier, while
        Python starts, kills it outright); it logs at info level (its leasing line)."""
        self.worker(name, server, log_level="info", **kw)
        self.wait_log(name, "threads leasing from")

    def wait_log(self, name: str, text: str, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.log(name):
            if self.procs[name].poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{name}: no {text!r} in its log: {self.log(name)}")
            time.sleep(0.05)

    def log(self, name: str) -> str:
        return (self.home / f"{name}.log").read_text(errors="replace")[-3000:]

    def kill(self, name: str, sig: int = signal.SIGKILL) -> int:
        p = self.procs.pop(name)
        p.send_signal(sig)
        return p.wait(30)

    def stop_all(self) -> None:
        for p in self.procs.values():
            if p.poll() is None:
                p.terminate()
        deadline = time.monotonic() + 10
        for p in self.procs.values():
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
        self.procs.clear()


@pytest.fixture(scope="module")
def cluster(pg_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """Server ``a`` with workers ``w-a`` and ``w-b`` on the session's PostgreSQL database."""
    c = Cluster(pg_url, tmp_path_factory.mktemp("cluster"))
    try:
        c.server("a")
        for w in ("w-a", "w-b"):
            c.ready_worker(w, "a")
        yield c
    finally:
        c.stop_all()
