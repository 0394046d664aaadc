"""``noetl executions``, ``cancel``, ``catalog show``, ``catalog diff``, ``--version`` and the
fuller ``status`` as real subprocesses, on the embedded store and against a server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from importlib.metadata import version as dist_version
from pathlib import Path

import pytest

import noetl
from tests.api.conftest import Running

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "noetl"
HELLO = FIX / "hello_world" / "hello_world.yaml"
PARENT = textwrap.dedent("""
    apiVersion: noetl.io/v1
    kind: Playbook
    metadata: {name: parent, path: tests/cli/parent}
    workflow:
      - step: start
        next: [{step: call}]
      - step: call
        type: playbook
        path: tests/fixtures/playbooks/hello_world
    """)
HANG = textwrap.dedent("""
    apiVersion: noetl.io/v1
    kind: Playbook
    metadata: {name: hang, path: tests/cli/hang}
    workflow:
      - step: start
        type: python
        code: |
          def main():
              return 1
    """)

Cli = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NOETL_")}
    env["NOETL_HOME"] = str(tmp_path / "home")

    def run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "noetl", *args], capture_output=True,
                              text=True, env=env, cwd=tmp_path, timeout=timeout)

    return run


def _json(p: subprocess.CompletedProcess[str]) -> object:
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def test_version(cli: Cli) -> None:
    p = cli("--version")
    assert p.returncode == 0
    assert p.stdout.startswith(f"noetl {noetl.__version__} (python ")
    assert noetl.__version__ == dist_version("noetl")


def test_catalog_show_and_diff(cli: Cli, tmp_path: Path) -> None:
    v1 = HELLO.read_text()
    v2 = v1.replace("Hello World", "Hello there")
    assert v1 != v2
    (tmp_path / "v2.yaml").write_text(v2)
    assert cli("catalog", "register", str(HELLO)).returncode == 0
    assert cli("catalog", "register", str(tmp_path / "v2.yaml")).returncode == 0
    path = "tests/fixtures/playbooks/hello_world"
    p = cli("catalog", "show", path, "--version", "1")
    assert p.returncode == 0 and p.stdout == v1  # exactly as registered
    assert cli("catalog", "show", path).stdout == v2  # latest by default
    shown = _json(cli("catalog", "show", path, "-v", "2", "--json"))
    assert isinstance(shown, dict) and shown["version"] == 2 and shown["content"] == v2
    p = cli("catalog", "diff", path, "1", "2")
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[0] == f"--- {path} v1" and lines[1] == f"+++ {path} v2"
    changed = [ln for ln in lines[2:] if ln[:1] in "+-"]
    assert changed and all("Hello" in ln for ln in changed)
    assert any(ln.startswith("-") and "Hello World" in ln for ln in changed)
    assert any(ln.startswith("+") and "Hello there" in ln for ln in changed)
    p = cli("catalog", "diff", path, "2", "latest")
    assert p.returncode == 0 and p.stdout == "" and "identical" in p.stderr
    p = cli("catalog", "show", path, "--version", "9")
    assert p.returncode == 1 and f"playbook '{path}' version 9 not found" in p.stderr
    p = cli("catalog", "diff", path, "1", "two")
    assert p.returncode == 2 and "V2: expected a version number" in p.stderr


def test_executions_filters_and_status_details(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "parent.yaml").write_text(PARENT)
    assert cli("catalog", "register", str(HELLO)).returncode == 0
    hello = _json(cli("run", str(HELLO), "--json"))
    parent = _json(cli("run", str(tmp_path / "parent.yaml"), "--json"))
    assert isinstance(hello, dict) and isinstance(parent, dict)
    fail = tmp_path / "fail.yaml"
    fail.write_text(HANG.replace("return 1", "raise ValueError('broken pipe 42')")
                    .replace("tests/cli/hang", "tests/cli/failing"))
    failed = cli("run", str(fail), "--json")
    assert failed.returncode == 1
    failed_id = json.loads(failed.stdout)["execution_id"]
    child_id = parent["children"][0]["execution_id"]

    items = _json(cli("executions", "--json"))
    assert isinstance(items, list)
    ids = [x["execution_id"] for x in items]
    # newest first; the child execution is listed too
    assert ids == sorted(ids, key=int, reverse=True)
    assert set(ids) == {hello["execution_id"], parent["execution_id"], child_id, failed_id}
    only = _json(cli("executions", "--status", "failed", "--json"))
    assert [x["execution_id"] for x in only] == [failed_id]  # type: ignore[index]
    by_path = _json(cli("executions", "--path", "tests/fixtures/playbooks/hello_world",
                        "--json"))
    assert {x["execution_id"] for x in by_path} == {hello["execution_id"], child_id}  # type: ignore[union-attr]
    assert _json(cli("executions", "--path", "hello_world", "--json")) == []  # exact
    text = _json(cli("executions", "-q", "HELLO_W", "--json"))  # part of the path, any case
    assert {x["execution_id"] for x in text} == {hello["execution_id"], child_id}  # type: ignore[union-attr]
    by_error = _json(cli("executions", "-q", "broken pipe", "--json"))
    assert [x["execution_id"] for x in by_error] == [failed_id]  # type: ignore[index]
    assert len(_json(cli("executions", "--limit", "2", "--json"))) == 2  # type: ignore[arg-type]
    assert len(_json(cli("executions", "--since", "1h", "--json"))) == 4  # type: ignore[arg-type]
    assert _json(cli("executions", "--since", str(time.time() + 60), "--json")) == []
    p = cli("executions", "--since", "yesterday-ish")
    assert p.returncode == 2 and "--since" in p.stderr
    p = cli("executions", "--status", "DONE")
    assert p.returncode == 2 and "unknown status 'DONE'" in p.stderr
    table = cli("executions", "--limit", "3")
    assert table.returncode == 0
    assert failed_id in table.stdout and "ValueError: broken pipe 42" in table.stdout
    assert "3 of 4" in table.stdout

    # status: path, version, times, durations, children
    st = _json(cli("status", parent["execution_id"], "--json"))
    assert isinstance(st, dict)
    assert st["path"] == "tests/cli/parent" and st["status"] == "COMPLETED"
    assert st["end_time"] >= st["start_time"] and st["duration"] >= 0
    assert st["steps"]["call"]["duration"] >= 0
    assert [c["execution_id"] for c in st["children"]] == [child_id]
    assert st["children"][0]["path"] == "tests/fixtures/playbooks/hello_world"
    p = cli("status", parent["execution_id"])
    assert p.returncode == 0
    for text in ("tests/cli/parent", "started ", "duration ", "sub-playbook executions",
                 child_id, "call"):
        assert text in p.stdout, p.stdout


def test_cancel(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "hello.yaml").write_text(HELLO.read_text())
    done = _json(cli("run", str(tmp_path / "hello.yaml"), "--json"))
    assert isinstance(done, dict)
    p = cli("cancel", done["execution_id"])
    assert p.returncode == 0
    assert p.stdout == f"execution {done['execution_id']} already ended COMPLETED: nothing " \
                       "to cancel\n"
    p = cli("cancel", "42")
    assert p.returncode == 1 and "execution 42 not found" in p.stderr
    assert cli("cancel", "forty-two").returncode == 2


def test_verbs_against_a_server(cli: Cli, api: Running, tmp_path: Path) -> None:
    s = ("--server", api.url)
    v2 = HELLO.read_text().replace("Hello World", "Hello server")
    (tmp_path / "v2.yaml").write_text(v2)
    path = "tests/fixtures/playbooks/hello_world"
    assert cli("catalog", "register", str(HELLO), *s).returncode == 0
    assert cli("catalog", "register", str(tmp_path / "v2.yaml"), *s).returncode == 0
    assert cli("catalog", "show", path, "-v", "2", *s).stdout == v2
    p = cli("catalog", "diff", path, "1", "2", *s)
    assert p.returncode == 0 and "+  " in p.stdout and "Hello server" in p.stdout
    p = cli("catalog", "show", path, "-v", "7", *s)
    assert p.returncode == 1 and "version 7 not found" in p.stderr
    # no worker serves this server: the execution stays queued until cancelled
    started = _json(cli("execute", path, *s, "--no-wait", "--json"))
    assert isinstance(started, dict)
    eid = started["execution_id"]
    listed = _json(cli("executions", *s, "--status", "RUNNING", "-q", "hello", "--json"))
    assert [x["execution_id"] for x in listed] == [eid]  # type: ignore[index]
    assert _json(cli("executions", *s, "--since", "1m", "--json")) != []
    p = cli("cancel", eid, *s)
    assert p.returncode == 0 and p.stdout == f"execution {eid} CANCELLED (was RUNNING)\n"
    st = _json(cli("status", eid, *s, "--json"))
    assert isinstance(st, dict) and st["status"] == "CANCELLED" and st["version"] == "2"
    assert st["path"] == path and st["end_time"] is not None
    p = cli("execute", path, *s, "--timeout", "1")
    assert p.returncode == 1 and "still RUNNING after 1 s" in p.stderr and "cancelled" in p.stderr
    assert "Traceback" not in p.stderr
    newest = _json(cli("executions", *s, "--limit", "1", "--json"))
    assert newest[0]["status"] == "CANCELLED"  # type: ignore[index]


def test_events_say_which_worker_lost_a_job(tmp_path: Path) -> None:
    """A lease that takes over a job whose worker stopped heartbeating: ``noetl events``
    shows the retry with the lost worker (the table, and ``meta`` in ``--json``)."""
    from noetl.domain.records import now
    from noetl.dsl import parse_playbook
    from noetl.engine.core import Engine
    from noetl.store import open_store
    from noetl.worker.runner import run_work
    from tests.helpers import wait_until

    url = f"sqlite:///{tmp_path / 'lost.db'}"
    engine = Engine(open_store(url))
    try:
        eid = engine.start(parse_playbook(HANG)).execution_id
        assert len(engine.lease("w-lost", lease_seconds=0.001)) == 1
        until = now() + 0.001
        wait_until(lambda: now() > until, timeout=5)
        [work] = engine.lease("w-2")
        assert engine.report(int(work["job_id"]), "w-2", run_work(work)) == "ok"
    finally:
        engine.store.close()
    env = {k: v for k, v in os.environ.items() if not k.startswith("NOETL_")}
    env.update(NOETL_HOME=str(tmp_path / "home"), COLUMNS="200")

    def events(*more: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "noetl", "events", str(eid), "--store", url,
                               *more], capture_output=True, text=True, env=env, timeout=60)

    p = events()
    assert p.returncode == 0, p.stderr
    [row] = [line for line in p.stdout.splitlines() if "action_retry" in line]
    assert "lease of w-lost expired (worker stopped heartbeating)" in row
    evs = _json(events("--json"))
    assert isinstance(evs, list)
    assert [e["meta"] for e in evs if e["event_type"] == "action_retry"] == [
        {"lost_worker_id": "w-lost"}]


def test_status_of_an_execution_whose_stored_plan_no_longer_compiles(
        cli: Cli, tmp_path: Path) -> None:
    """Its status and step rows, and a note saying why the steps are shown as stored: no
    traceback (it was a PlaybookError from describe)."""
    from noetl.domain.records import ExecutionRow, StepRow, now
    from noetl.ids import new_id
    from noetl.store import open_store

    url = f"sqlite:///{tmp_path / 'old.db'}"
    store = open_store(url)
    ex = ExecutionRow(execution_id=new_id(), path="old/one", version="1", status="RUNNING",
                      playbook={"metadata": {"path": "old/one"}}, workload={},
                      state={"active": {}, "joins": []}, created_at=now())
    with store.transaction() as tx:
        tx.insert_execution(ex)
        tx.save_steps([StepRow(ex.execution_id, "start", status="COMPLETED", runs=1)])
    store.close()
    p = cli("status", str(ex.execution_id), "--store", url)
    assert p.returncode == 0 and "Traceback" not in p.stderr, p.stderr
    assert "note: the steps are shown as stored" in p.stderr and "apiVersion" in p.stderr
    assert "start" in p.stdout and "RUNNING" in p.stdout
    out = _json(cli("status", str(ex.execution_id), "--store", url, "--json"))
    assert isinstance(out, dict) and "apiVersion" in out["plan_error"]
    assert out["steps"]["start"]["status"] == "COMPLETED"
