"""Server and worker subprocesses (``noetl server start`` / ``noetl worker start``) on
127.0.0.1, with detection of whether those commands exist yet. Always closed in teardown."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import IO, Any

import httpx

from bench.cold import noetl_bin


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu(pid: int) -> float:
    """CPU seconds of a process and all its descendants (a server with --processes)."""
    children: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(d.name))
    total, stack = 0.0, [pid]
    while stack:
        p = stack.pop()
        total += cpu_seconds(p)
        stack.extend(children.get(p, []))
    return total


def ancestors(pid: int) -> list[int]:
    """``pid`` and its parent, grandparent, ... (from /proc; stops where one is gone)."""
    chain = [pid]
    while pid > 1:
        try:
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
        chain.append(pid)
    return chain


def comm_cpu(comm: str) -> float:
    """CPU seconds of every local process whose command name is ``comm``."""
    total = 0.0
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if (d / "comm").read_text().strip() == comm:
                    total += cpu_seconds(int(d.name))
            except OSError:
                continue
    return total


def postgres_cpu() -> float:
    """CPU seconds of every local ``postgres`` process (server side of the store)."""
    return comm_cpu("postgres")


def database_cpu(db: str) -> float:
    """CPU seconds of the local PostgreSQL backends connected to database ``db``, and of the
    WAL writer (which flushes their commits): not those of other work on the same server."""
    total = 0.0
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if (d / "comm").read_text().strip() != "postgres":
                    continue
                cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if f" {db} " in cmd or cmd.rstrip().endswith("walwriter"):
                total += cpu_seconds(int(d.name))
    return total


def commands_problem() -> str | None:
    """None when ``noetl server start`` and ``noetl worker start`` both exist."""
    for group in ("server", "worker"):
        try:
            proc = subprocess.run([noetl_bin(), group, "start", "--help"], capture_output=True,
                                  text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"`noetl {group} start` could not run ({exc})"
        if proc.returncode != 0:
            return f"`noetl {group} start` does not exist"
    return None


class Cluster:
    """One server over ``store_url`` plus any number of workers; ``close()`` kills them all."""

    def __init__(self, store_url: str, tmp: Path):
        self.store_url = store_url
        self.tmp = tmp
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.server: subprocess.Popen[bytes] | None = None
        self.workers: list[subprocess.Popen[bytes]] = []
        self._logs: list[IO[bytes]] = []
        self.env = {**os.environ, "NOETL_HOME": str(tmp / "cluster-home")}
        self.env.pop("NOETL_API_TOKEN", None)
        self.http = httpx.Client(base_url=self.base, timeout=30)

    def _spawn(self, args: list[str], name: str) -> subprocess.Popen[bytes]:
        log = open(self.tmp / f"{name}.log", "wb")  # closed in close()
        self._logs.append(log)
        return subprocess.Popen([noetl_bin(), *args], env=self.env, cwd=self.tmp,
                                stdout=log, stderr=subprocess.STDOUT)

    def log_tail(self, name: str, chars: int = 1500) -> str:
        path = self.tmp / f"{name}.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""

    def start_server(self, timeout: float = 60, processes: int | None = 1) -> None:
        """``processes=None``: the server's default (no ``--processes``)."""
        sized = [] if processes is None else ["--processes", str(processes)]
        self.server = self._spawn(["server", "start", "--port", str(self.port),
                                   "--store", self.store_url, *sized], "server")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.server.poll() is not None:
                raise RuntimeError(f"server exited {self.server.returncode}: "
                                   f"{self.log_tail('server')}")
            try:
                if self.http.get("/api/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise TimeoutError(f"server not healthy after {timeout} s: {self.log_tail('server')}")

    def start_worker(self, concurrency: int | None = 4) -> subprocess.Popen[bytes]:
        """``concurrency=None``: the worker's default (no ``--concurrency``)."""
        n = len(self.workers)
        sized = [] if concurrency is None else ["--concurrency", str(concurrency)]
        proc = self._spawn(["worker", "start", "--server", self.base, *sized], f"worker{n}")
        self.workers.append(proc)
        return proc

    def start_direct_worker(self, concurrency: int | None = 4) -> subprocess.Popen[bytes]:
        """A direct worker (``noetl worker start --store``: the engine in the worker, on
        PostgreSQL); ``concurrency=None``: the worker's default."""
        n = len(self.workers)
        sized = [] if concurrency is None else ["--concurrency", str(concurrency)]
        proc = self._spawn(["worker", "start", "--store", self.store_url, *sized],
                           f"direct{n}")
        self.workers.append(proc)
        return proc

    def cpu(self) -> dict[str, float]:
        """CPU seconds so far: server, workers (summed; with their supervised processes),
        the PostgreSQL backends of this cluster's database and the WAL writer (when they are
        local processes: ``postgres_visible``)."""
        return {"server": tree_cpu(self.server.pid) if self.server else 0.0,
                "workers": sum(tree_cpu(w.pid) for w in self.workers),
                "postgres": database_cpu(self.database)}

    @property
    def database(self) -> str:
        from urllib.parse import urlsplit

        return urlsplit(self.store_url).path.lstrip("/")

    def postgres_visible(self) -> bool:
        """Whether this database's PostgreSQL backends are processes on this machine."""
        return database_cpu(self.database) > 0 or postgres_cpu() > 0

    def stop_workers(self) -> None:
        for p in self.workers:
            stop_process(p)
        self.workers = []

    def register(self, content: str) -> str:
        r = self.http.post("/api/catalog/register", json={"content": content})
        r.raise_for_status()
        return str(r.json()["path"])

    def start(self, path: str, args: dict[str, Any] | None = None) -> int:
        r = self.http.post("/api/run/playbook", json={"path": path, "args": args or {}})
        r.raise_for_status()
        return int(r.json()["execution_id"])

    def close(self) -> None:
        self.stop_workers()
        if self.server is not None:
            stop_process(self.server)
            self.server = None
        self.http.close()
        for log in self._logs:
            log.close()


def stop_process(p: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL after 5 s."""
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)
