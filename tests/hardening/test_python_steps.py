"""Python steps cannot take the worker down (issue 13, item 4): SystemExit, KeyboardInterrupt
and os._exit() fail the step and the next job on the same worker runs normally; steps see a
scrubbed environment; a step that kills its process fails with a clear error."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from noetl.dsl import parse_playbook
from noetl.engine.core import Engine
from noetl.local import LocalRunner
from noetl.store.factory import open_store

STEP = """\
apiVersion: noetl.io/v1
kind: Playbook
metadata: {{name: p, path: t/p}}
workflow:
  - step: start
    type: python
{extra}    code: |
{code}
"""


def _pb(code: str, extra: str = "") -> object:
    return parse_playbook(STEP.format(code=textwrap.indent(textwrap.dedent(code), "      "),
                                      extra=extra), "<t>")


OK = "def main():\n    return {'ok': 1}\n"


@pytest.mark.parametrize("code, kind", [
    ("import sys\ndef main():\n    sys.exit(3)\n", "SystemExit"),
    ("def main():\n    raise KeyboardInterrupt('stop')\n", "KeyboardInterrupt"),
    ("import os\ndef main():\n    os._exit(1)\n", "StepExit"),
    ("def main():\n    os._exit(1)\n", "StepExit"),
    ("from os import _exit\ndef main():\n    _exit(1)\n", "StepExit"),
])
def test_exits_fail_the_step_and_the_worker_goes_on(sqlite_url: str, code: str, kind: str
                                                    ) -> None:
    with LocalRunner(sqlite_url, concurrency=1) as runner:
        t0 = time.monotonic()
        bad = runner.run(_pb(code), timeout=30)
        assert bad["status"] == "FAILED"
        assert bad["error"]["type"] == kind, bad["error"]
        assert time.monotonic() - t0 < 10
        good = runner.run(_pb(OK), timeout=30)  # the same single worker thread
        assert good["status"] == "COMPLETED", good["error"]
        assert good["result"] == {"ok": 1}


def test_os_exit_in_an_isolated_step_is_recorded(sqlite_url: str) -> None:
    code = "import posix\ndef main():\n    posix._exit(7)\n"  # round the step's os
    with LocalRunner(sqlite_url, concurrency=1) as runner:
        bad = runner.run(_pb(code, "    isolate: true\n"), timeout=60)
        assert bad["status"] == "FAILED"
        assert bad["error"]["type"] == "ProcessError"
        assert "exited with code 7" in bad["error"]["message"]
        assert runner.run(_pb(OK), timeout=30)["status"] == "COMPLETED"


def test_steps_see_a_scrubbed_environment(sqlite_url: str, monkeypatch: pytest.MonkeyPatch
                                          ) -> None:
    monkeypatch.setenv("NOETL_API_TOKEN", "tok-SECRET-1")
    monkeypatch.setenv("NOETL_ENCRYPTION_KEY", "key-SECRET-2")
    monkeypatch.setenv("SOME_PASSWORD", "pw-SECRET-3")
    monkeypatch.setenv("STEP_VISIBLE", "yes")
    monkeypatch.setenv("NOETL_STEP_ENV_ALLOW", "STEP_VISIBLE")
    code = ("import os\nimport subprocess\n"
            "def main():\n"
            "    return {'env': dict(os.environ), 'tok': os.getenv('NOETL_API_TOKEN'),\n"
            "            'visible': os.environ.get('STEP_VISIBLE')}\n")
    with LocalRunner(sqlite_url, concurrency=1) as runner:
        for extra in ("", "    isolate: true\n"):
            d = runner.run(_pb(code, extra), timeout=60)
            assert d["status"] == "COMPLETED", d["error"]
            text = repr(d["result"])
            assert "SECRET" not in text
            assert d["result"]["tok"] is None and d["result"]["visible"] == "yes"
            assert "PATH" in d["result"]["env"]


def test_a_step_that_killed_its_noetl_run_cannot_kill_the_next_one(tmp_path: Path) -> None:
    """Two `noetl run` processes share a store: the first dies in a step that goes round the
    step's os (`posix._exit`); the second runs only its own playbook (never the killed run's
    job); `noetl resume` of the killed execution takes its job over, runs it in a child process
    (its worker was lost once), records the failure and survives it."""
    env = {**os.environ, "NOETL_HOME": str(tmp_path), "NOETL_LEASE_SECONDS": "1"}
    env.pop("NOETL_STORE_URL", None)
    store = f"sqlite:///{tmp_path / 'shared.db'}"
    killer = tmp_path / "killer.yaml"
    killer.write_text(STEP.format(code="      import posix\n      def main():\n"
                                       "          posix._exit(7)\n", extra="")
                      .replace("t/p", "t/killer"))
    slow = tmp_path / "slow.yaml"
    slow.write_text(STEP.format(code="      def main():\n          return {'slow': 1}\n",
                                extra="").replace("t/p", "t/slow"))
    cmd = [sys.executable, "-m", "noetl"]
    first = subprocess.run([*cmd, "run", "--store", store, "--json", str(killer)], env=env,
                           capture_output=True, text=True, timeout=60)
    assert first.returncode == 7, first.stderr[-2000:]  # the step took its process down
    second = subprocess.run([*cmd, "run", "--store", store, "--json", str(slow)], env=env,
                            capture_output=True, text=True, timeout=60)
    assert second.returncode == 0, second.stderr[-2000:]
    assert json.loads(second.stdout)["result"] == {"slow": 1}

    def killed() -> dict[str, Any]:
        st = open_store(store)
        try:
            with st.read() as tx:
                (row,), _ = tx.list_executions(path="t/killer")
            return Engine(st).describe(row.execution_id)
        finally:
            st.close()

    d = killed()
    assert (d["status"], d["steps"]["start"]["status"]) == ("RUNNING", "RUNNING")  # left alone
    res = subprocess.run([*cmd, "resume", "--store", store, "--json", d["execution_id"]],
                         env=env, capture_output=True, text=True, timeout=60)
    assert res.returncode == 1, res.stderr[-2000:]  # the execution failed; resume survived
    d = killed()
    assert d["status"] == "FAILED", d
    assert d["error"]["type"] == "ProcessError" and "exited with code 7" in d["error"]["message"]
    assert d["steps"]["start"]["attempts"] == 2


def _gone(pid: int) -> bool:
    """The process has ended (a zombie not yet reaped by its new parent counts as ended)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] in "ZX"
    except (FileNotFoundError, ProcessLookupError):
        return True


def test_background_children_of_an_isolated_step_do_not_outlive_it(sqlite_url: str) -> None:
    """An isolated step's process group ends with the step, as a shell step's does: a child
    it started in the background and left running is killed when the step returns."""
    code = """\
        import subprocess
        def main():
            return {"pid": subprocess.Popen(["sleep", "123"]).pid}
        """
    with LocalRunner(sqlite_url, concurrency=1) as runner:
        desc = runner.run(_pb(code, "    isolate: true\n"), timeout=30)
    assert desc["status"] == "COMPLETED", desc["error"]
    assert _gone(desc["result"]["pid"]), "sleep 123 outlived its step"
