"""A real ``noetl server start`` subprocess on SQLite, on a free loopback port."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.distributed.conftest import base_env, free_port


@pytest.fixture
def server_pids() -> dict[str, int]:
    """The pid of each server :func:`server_proc` started, by its url."""
    return {}


@pytest.fixture
def server_proc(tmp_path: Path, server_pids: dict[str, int]) -> Iterator[Callable[..., str]]:
    procs: list[subprocess.Popen[bytes]] = []

    def start(env_extra: dict[str, str] | None = None, store: str | None = None,
              args: tuple[str, ...] = ()) -> str:
        port = free_port()
        env = {**base_env(tmp_path), **(env_extra or {})}
        log = open(tmp_path / f"server-{len(procs)}.log", "wb")
        p = subprocess.Popen([sys.executable, "-m", "noetl", "server", "start", "--port", str(port),
                              "--store", store or f"sqlite:///{tmp_path / 'noetl.db'}",
                              "--log-level", "warning", *args], env=env, stdout=log,
                             stderr=subprocess.STDOUT, cwd=tmp_path)
        procs.append(p)
        url = f"http://127.0.0.1:{port}"
        server_pids[url] = p.pid
        deadline = time.monotonic() + 30
        while True:
            if p.poll() is not None:
                raise RuntimeError("server exited: " + (tmp_path / "server-0.log").read_text())
            try:
                if httpx.get(url + "/health", timeout=1).status_code == 200:
                    return url
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("server not ready")
            time.sleep(0.05)

    yield start
    for p in procs:
        p.terminate()
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)


from tests.api.conftest import serve  # noqa: E402,F401  (a real uvicorn server in a thread)
