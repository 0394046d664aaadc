"""A real uvicorn server on a free loopback port, in a background thread, per test."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Running:
    url: str
    server: Any
    thread: threading.Thread
    app: Any

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(15)


def start_server(store_url: str, port: int | None = None, **kwargs: Any) -> Running:
    """``port``: a given one (a server started again where the last one was), else a free one."""
    import uvicorn

    from noetl.api.app import create_app

    app = create_app(store_url, **kwargs)
    port = port or free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                            lifespan="on")
    server = uvicorn.Server(config)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            server.run()
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    t = threading.Thread(target=run, name="uvicorn-test", daemon=True)
    t.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if errors or not t.is_alive():
            raise RuntimeError(f"server did not start: {errors}")
        if time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError("server did not start within 15 s")
        time.sleep(0.02)
    return Running(f"http://127.0.0.1:{port}", server, t, app)


@pytest.fixture
def serve() -> Iterator[Callable[..., Running]]:
    started: list[Running] = []

    def go(store_url: str, **kwargs: Any) -> Running:
        r = start_server(store_url, **kwargs)
        started.append(r)
        return r

    yield go
    for r in started:
        r.stop()


@pytest.fixture
def api(serve: Callable[..., Running], sqlite_url: str, noetl_home: Any) -> Running:
    return serve(sqlite_url)


@pytest.fixture(scope="module")
def shared_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """One server for a module of read-only / rejected requests."""
    d = tmp_path_factory.mktemp("shared")
    r = start_server(f"sqlite:///{d / 'noetl.db'}")
    yield r
    r.stop()
