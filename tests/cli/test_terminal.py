"""``noetl run`` / ``noetl execute`` on a real pseudo-terminal: the live table keeps updating
while a python step runs, Ctrl-C cancels the execution (in the store, within 2 s), a second
Ctrl-C exits at once, ``--timeout`` cancels and exits 1 without a traceback, and
``execute --server`` shows the same live progress."""

from __future__ import annotations

import os
import re
import textwrap
import time
from pathlib import Path

import pytest

from noetl.engine.core import Engine
from noetl.store import open_store
from tests.api.conftest import Running
from tests.cli.ptyrun import PtyProcess

# b sleeps in a loop of short naps and prints as it goes (its print is captured per step)
SLOW = textwrap.dedent("""
    apiVersion: noetl.io/v1
    kind: Playbook
    metadata: {name: slow, path: tests/cli/slow}
    workflow:
      - step: start
        next: [{step: a}]
      - step: a
        type: python
        code: |
          def main():
              return {"a": 1}
        next: [{step: b}]
      - step: b
        type: python
        code: |
          import time
          def main():
              for i in range(600):
                  print("tick", i)
                  time.sleep(0.05)
              return 2
    """)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    (tmp_path / "slow.yaml").write_text(SLOW)
    return tmp_path


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NOETL_")}
    env["NOETL_HOME"] = str(home / "home")
    return env


def _status(home: Path, eid: int) -> str:
    store = open_store(f"sqlite:///{home / 'home' / 'noetl.db'}")
    try:
        return str(Engine(store).describe(eid, with_steps=False)["status"])
    finally:
        store.close()


def _durations_of_b(text: str) -> set[str]:
    return set(re.findall(r"│ b\s+│ RUNNING\s+│[^│]*│\s*([0-9.]+ m?s)\s*│", text))


def test_ctrl_c_on_run_cancels_the_execution_in_the_store(home: Path) -> None:
    with PtyProcess(["run", "slow.yaml"], _env(home), home) as p:
        eid = int(p.wait_for(r"execution (\d+) RUNNING", 60).group(1))
        p.wait_for(r"│ b\s+│ RUNNING", 30)
        # the live table goes on refreshing while b's python code runs (and prints)
        deadline = time.monotonic() + 10
        while len(_durations_of_b(p.text)) < 3 and time.monotonic() < deadline:
            p.read(0.1)
        assert len(_durations_of_b(p.text)) >= 3, p.text[-2000:]
        assert "tick" not in p.text  # the step's print is captured, not drawn over the table
        assert _status(home, eid) == "RUNNING"
        p.type(b"\x03")
        pressed = time.monotonic()
        while _status(home, eid) != "CANCELLED":
            assert time.monotonic() - pressed < 2.0, "not CANCELLED in the store within 2 s"
            time.sleep(0.02)
        code = p.finish(30)
        assert code == 130
        assert f"interrupted: cancelling execution {eid}" in p.text
        assert f"execution {eid} CANCELLED" in p.text
        assert "Traceback" not in p.text


def test_second_ctrl_c_exits_at_once(home: Path) -> None:
    with PtyProcess(["run", "slow.yaml"], _env(home), home) as p:
        eid = int(p.wait_for(r"execution (\d+) RUNNING", 60).group(1))
        p.wait_for(r"│ b\s+│ RUNNING", 30)
        p.type(b"\x03")
        p.wait_for(r"Ctrl-C again to exit at once", 10)
        p.type(b"\x03")
        assert p.finish(10) == 130
        assert "interrupted again: exiting without waiting" in p.text
        assert "Traceback" not in p.text
    assert _status(home, eid) == "CANCELLED"


def test_timeout_on_a_terminal_cancels_and_exits_1(home: Path) -> None:
    with PtyProcess(["run", "slow.yaml", "--timeout", "1.5"], _env(home), home) as p:
        eid = int(p.wait_for(r"execution (\d+) RUNNING", 60).group(1))
        assert p.finish(60) == 1
        assert re.search(rf"error: execution {eid} still RUNNING after 1.5 s; execution "
                         rf"{eid} cancelled", p.text), p.text[-2000:]
        assert "Traceback" not in p.text
    assert _status(home, eid) == "CANCELLED"


def test_execute_on_a_server_shows_live_progress(home: Path, api: Running) -> None:
    from noetl.worker.http_backend import HttpBackend
    from noetl.worker.pool import WorkerPool

    with api.client() as c:
        # here b runs in this test's process: a step timeout puts it in a child process,
        # which the cancel kills (in-thread code would run on after the test)
        slow = SLOW.replace("    type: python\n    code: |\n      import time",
                            "    type: python\n    timeout: 120\n    code: |\n      import time")
        assert slow != SLOW
        c.post("/api/catalog/register", json={"content": slow}).raise_for_status()
    env = _env(home)
    with HttpBackend(api.url, wait_seconds=1) as b, WorkerPool(b, 2, b.services()), \
            PtyProcess(["execute", "tests/cli/slow", "--server", api.url], env, home) as p:
        eid = p.wait_for(r"execution (\d+) RUNNING", 60).group(1)
        p.wait_for(r"│ b\s+│ RUNNING", 30)
        deadline = time.monotonic() + 10
        while len(_durations_of_b(p.text)) < 3 and time.monotonic() < deadline:
            p.read(0.1)
        assert len(_durations_of_b(p.text)) >= 3, p.text[-2000:]
        assert "tests/cli/slow v1" in p.text  # path and version under the table
        p.type(b"\x03")  # Ctrl-C cancels on the server too
        assert p.finish(30) == 130
        assert f"execution {eid} CANCELLED" in p.text
    with api.client() as c:
        assert c.get(f"/api/executions/{eid}").json()["status"] == "CANCELLED"
