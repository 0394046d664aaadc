"""Browser acceptance tests: a real ``noetl server start`` and ``noetl worker start`` (subprocesses
on a SQLite store), driven by Debian's Chromium through Playwright for Python.

Chromium comes from the ``chromium`` Debian package (installed by ``.ci/run``); Playwright's own
browser download is never used. Without Chromium or Playwright the tests skip loudly, except
under ``CI=true``, where they fail.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers import wait_until

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("NOETL_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]
SCREENSHOTS = REPO / "test-output" / "screenshots"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
NOETL = [sys.executable, "-m", "noetl"]


def _unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"browser tests cannot run: {reason} (CI=true: they must)", pytrace=False)
    pytest.skip(f"!!! SKIPPED: browser tests: {reason}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    url: str
    home: Path
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    logs: list[Path] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)

    def register(self, content: str) -> dict[str, Any]:
        with self.client() as c:
            r = c.post("/api/catalog/register", json={"content": content})
            r.raise_for_status()
            return dict(r.json())

    def execution(self, execution_id: str) -> dict[str, Any]:
        with self.client() as c:
            r = c.get(f"/api/executions/{execution_id}")
            r.raise_for_status()
            return dict(r.json())

    def add_worker(self, env: dict[str, str] | None = None,
                   worker_id: str | None = None) -> subprocess.Popen[bytes]:
        """Start one more ``noetl worker start`` (4 threads) against this server."""
        wlog = self.home / f"worker{len(self.logs) - 1}.log"
        self.logs.append(wlog)
        p = _spawn([*NOETL, "worker", "start", "--server", self.url, "-c", "4",
                    "--wait-seconds", "2", "--grace", "5", "--log-level", "warning",
                    *(["--worker-id", worker_id] if worker_id else [])], env or self.env, wlog)
        self.procs.append(p)
        return p

    def log_tail(self) -> str:
        return "\n".join(f"--- {p.name}\n" + p.read_text(errors="replace")[-3000:]
                         for p in self.logs if p.exists())


def _spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    out = log.open("wb")
    try:
        return subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=str(REPO),
                                start_new_session=True)
    finally:
        out.close()


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in reversed(procs):
        if p.poll() is None:
            p.terminate()
    for p in reversed(procs):
        try:
            p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=5)


def start_server(tmp: Path, workers: int = 1, token: str | None = None,
                 server_workers: bool = False, env_extra: dict[str, str] | None = None) -> Server:
    """``noetl server start`` and ``workers`` remote workers; ``server_workers``: keep the
    server's own worker pool (the SQLite default), else ``--no-workers``."""
    tmp.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("NOETL_")}
    env.update(NOETL_HOME=str(tmp), PYTHONUNBUFFERED="1", **(env_extra or {}))
    if token:
        env["NOETL_API_TOKEN"] = token
    srv = Server(url=f"http://127.0.0.1:{port}", home=tmp)
    log = tmp / "server.log"
    srv.logs.append(log)
    srv.procs.append(_spawn([*NOETL, "server", "start", "--port", str(port), "--store",
                             f"sqlite:///{tmp / 'noetl.db'}", "--log-level", "warning",
                             *([] if server_workers else ["--no-workers"])], env, log))

    def healthy() -> bool:
        if srv.procs[0].poll() is not None:
            raise AssertionError("server exited:\n" + srv.log_tail())
        try:
            return httpx.get(f"{srv.url}/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_until(healthy, 30, "the server to answer /health", interval=0.1)
        for _ in range(workers):
            srv.add_worker(env)
    except BaseException:
        _stop(srv.procs)
        raise
    srv.env = env
    return srv


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        _unavailable(f"{CHROMIUM} not found (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        _unavailable(f"playwright is not installed ({exc}); pip install -e '.[dev]'")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory, browser: Any) -> Iterator[Server]:
    """One server + one worker (4 threads) for the UI tests; stopped at the end."""
    srv = start_server(tmp_path_factory.mktemp("ui-server"))
    try:
        yield srv
    finally:
        _stop(srv.procs)


@pytest.fixture
def page(browser: Any, server: Server) -> Iterator[Any]:
    with open_page(browser) as pg:
        yield pg


@contextmanager
def open_page(browser: Any) -> Iterator[Any]:
    """A fresh browser context and page; fails if the page raised a JavaScript error."""
    ctx = browser.new_context(viewport={"width": 1400, "height": 900})
    pg = ctx.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.set_default_timeout(15000)
    try:
        yield pg
    finally:
        ctx.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def screenshot(page: Any, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / name
    page.screenshot(path=str(path), full_page=True)
    return path
