"""``noetl logs``, ``noetl rerun`` and ``noetl resume`` as real subprocesses, and ``noetl run``
printing the steps' output live on a pseudo-terminal."""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from noetl.store import open_store
from tests.helpers import wait_until
from tests.steplogs import WRITES, WRITES_LINES

REPO = Path(__file__).resolve().parents[2]

# Nine steps; each appends its number to a table (sqlite file or postgres URL: `sink`), step
# `fail_at` raises first.
NINE = "\n".join(["apiVersion: noetl.io/v1", "kind: Playbook",
                  "metadata: {name: nine_cli, path: tests/cli/nine}",
                  "workload: {sink: none, table: ran, fail_at: 7}", "workflow:"] + [f"""
  - step: {'start' if i == 1 else f's{i}'}
    type: python
    args: {{n: {i}, sink: "{{{{ workload.sink }}}}", table: "{{{{ workload.table }}}}",
            fail_at: "{{{{ workload.fail_at }}}}"}}
    code: |
      def main(n, sink, table, fail_at):
          print(f"step {{n}} runs")
          if n == fail_at:
              raise RuntimeError(f"step {{n}} fails")
          if sink.startswith("postgresql"):
              import psycopg
              with psycopg.connect(sink) as c:
                  c.execute(f"INSERT INTO {{table}} VALUES (%s)", (n,))
          else:
              import sqlite3
              with sqlite3.connect(sink) as c:
                  c.execute(f"CREATE TABLE IF NOT EXISTS {{table}} (n INTEGER)")
                  c.execute(f"INSERT INTO {{table}} VALUES (?)", (n,))
          return n""" + (f"\n    next: [{{step: s{i + 1}}}]" if i < 9 else "")
                                                       for i in range(1, 10)])

@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if not k.startswith("NOETL_")}
    e.update(NOETL_HOME=str(tmp_path / "home"), PYTHONUNBUFFERED="1")
    return e


@pytest.fixture
def cli(tmp_path: Path, env: dict[str, str]) -> Callable[..., subprocess.CompletedProcess[str]]:
    def run(*args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "noetl", *args], capture_output=True,
                              text=True, env=env, cwd=tmp_path, timeout=timeout)
    return run


@pytest.fixture(params=["sqlite", "postgres"])
def stores(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str, Any]]:
    """(store URL, side-effect sink, reader of the side-effect rows) on one backend."""
    table = f"ran_{secrets.token_hex(4)}"
    if request.param == "sqlite":
        import sqlite3

        sink = str(tmp_path / "side_effects.db")

        def rows() -> list[int]:
            with sqlite3.connect(sink) as c:
                return sorted(r[0] for r in c.execute(f"SELECT n FROM {table}"))

        yield f"sqlite:///{tmp_path / 'noetl.db'}", sink, (table, rows)
        return
    import psycopg

    url = request.getfixturevalue("pg_url")
    with psycopg.connect(url, autocommit=True) as c:
        c.execute(f"CREATE TABLE {table} (n INTEGER)")

    def pg_rows() -> list[int]:
        with psycopg.connect(url) as c:
            return sorted(r[0] for r in c.execute(f"SELECT n FROM {table}"))

    yield url, url, (table, pg_rows)


def test_resume_after_a_failure_at_step_seven_runs_only_seven_to_nine(
        cli: Callable[..., subprocess.CompletedProcess[str]], tmp_path: Path,
        stores: tuple[str, str, Any]) -> None:
    store, sink, (table, rows) = stores
    f = tmp_path / "nine.yaml"
    f.write_text(NINE)
    p = cli("run", str(f), "--json", "-q", "--store", store, "--set", f"sink={sink}",
            "--set", f"table={table}")
    assert p.returncode == 1, p.stderr
    failed = json.loads(p.stdout)
    assert failed["status"] == "FAILED" and failed["error"]["step"] == "s7"
    assert rows() == [1, 2, 3, 4, 5, 6]
    old = failed["execution_id"]

    p = cli("resume", old, "--set", "fail_at=0", "--json", "--store", store)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["status"] == "COMPLETED" and out["result"] == 9
    assert set(s["status"] for s in out["steps"].values()) == {"COMPLETED"}
    assert rows() == [1, 2, 3, 4, 5, 6, 7, 8, 9]  # steps 1-6 were not executed again
    new = out["execution_id"]
    # the steps' output, as it came, on stderr (stdout holds the one JSON object)
    assert [ln.split(" ", 1)[1] for ln in p.stderr.splitlines() if " out " in ln] == [
        "s7 out step 7 runs", "s8 out step 8 runs", "s9 out step 9 runs"]

    p = cli("logs", new, "--store", store)
    assert p.returncode == 0, p.stderr
    assert [ln.split(" ", 1)[1] for ln in p.stdout.splitlines()] == [
        "s7 out step 7 runs", "s8 out step 8 runs", "s9 out step 9 runs"]
    p = cli("events", new, "--json", "--store", store)
    evs = json.loads(p.stdout)
    assert [e["node_name"] for e in evs if e["event_type"] == "step_reused"] == [
        "start", "s2", "s3", "s4", "s5", "s6"]
    assert [e["node_name"] for e in evs if e["event_type"] == "action_started"] == [
        "s7", "s8", "s9"]


def test_logs_shows_stdout_stderr_and_logging_with_filters(
        cli: Callable[..., subprocess.CompletedProcess[str]], tmp_path: Path) -> None:
    f = tmp_path / "writes.yaml"
    f.write_text(WRITES)
    gate = tmp_path / "gate"
    gate.write_text("open")
    p = cli("run", str(f), "--json", "-q", "--set", f"gate={gate}")
    assert p.returncode == 0, p.stderr
    assert "PRINTED-BY-STEP" not in p.stderr  # --quiet
    eid = json.loads(p.stdout)["execution_id"]
    p = cli("logs", eid)
    assert p.returncode == 0, p.stderr
    assert [ln.split(" ", 1)[1] for ln in p.stdout.splitlines()] == WRITES_LINES
    p = cli("logs", eid, "--step", "each", "--item", "1", "--json")
    recs = [json.loads(ln) for ln in p.stdout.splitlines()]
    assert [(r["step"], r["index"], r["stream"], r["message"]) for r in recs] == [
        ("each", 1, "stdout", "ITEM-2")]
    p = cli("logs", "424242")
    assert p.returncode == 1 and "not found" in p.stderr


def _reader(stream: Any, into: list[str]) -> threading.Thread:
    def pump() -> None:
        for chunk in iter(lambda: stream.readline(), ""):
            into.append(chunk)
    t = threading.Thread(target=pump, daemon=True)
    t.start()
    return t


def _running_id(store_url: str) -> str:
    store = open_store(store_url)
    try:
        with store.read() as tx:
            rows, _ = tx.list_executions(status="RUNNING")
        return str(rows[0].execution_id) if rows else ""
    finally:
        store.close()


RETRIES = """\
apiVersion: noetl.io/v1
kind: Playbook
metadata: {name: retries, path: tests/retries}
workflow:
  - step: start
    type: python
    retry: {max_attempts: 3, initial_delay: 0}
    code: |
      def main():
          print("trying")
          raise RuntimeError("nope")
"""


def test_logs_mark_each_retried_attempt(
        cli: Callable[..., subprocess.CompletedProcess[str]], tmp_path: Path) -> None:
    f = tmp_path / "retries.yaml"
    f.write_text(RETRIES)
    p = cli("run", str(f), "--json", "-q")
    assert p.returncode == 1, p.stderr
    p = cli("logs", json.loads(p.stdout)["execution_id"])
    assert p.returncode == 0, p.stderr
    assert [ln.split(" ", 1)[1] for ln in p.stdout.splitlines()] == [
        "start out trying", "start#2 out trying", "start#3 out trying"]


LOOP = """\
apiVersion: noetl.io/v1
kind: Playbook
metadata: {name: loop_events, path: tests/loop_events}
workflow:
  - step: start
    type: iterator
    collection: "{{ ['a', 'b'] }}"
    element: x
    task:
      type: python
      args: {x: "{{ x }}"}
      code: |
        def main(x):
            return x
"""


def test_events_table_names_the_loop_item(
        cli: Callable[..., subprocess.CompletedProcess[str]], tmp_path: Path) -> None:
    f = tmp_path / "loop.yaml"
    f.write_text(LOOP)
    p = cli("run", str(f), "--json", "-q")
    assert p.returncode == 0, p.stderr
    p = cli("events", json.loads(p.stdout)["execution_id"])
    assert p.returncode == 0, p.stderr
    rows = [[c.strip() for c in ln.split("│")[1:-1]] for ln in p.stdout.splitlines()
            if ln.startswith("│")]
    items = sorted((r[1], r[2]) for r in rows if r[1].startswith("action_"))
    assert items == [("action_completed", "start[0]"), ("action_completed", "start[1]"),
                     ("action_started", "start[0]"), ("action_started", "start[1]")]
    assert ("step_started", "start") in [(r[1], r[2]) for r in rows]


def test_logs_follow_prints_records_as_they_come_and_stops_at_the_end(
        tmp_path: Path, env: dict[str, str]) -> None:
    f = tmp_path / "writes.yaml"
    f.write_text(WRITES)
    gate = tmp_path / "gate"
    store = f"sqlite:///{tmp_path / 'noetl.db'}"
    run = subprocess.Popen([sys.executable, "-m", "noetl", "run", str(f), "-q", "--json",
                            "--store", store, "--set", f"gate={gate}"], env=env, cwd=tmp_path,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    follow = None
    try:
        eid = wait_until(lambda: _running_id(store), 30, "the execution to start")
        follow = subprocess.Popen([sys.executable, "-m", "noetl", "logs", eid, "--follow",
                                   "--store", store], env=env, cwd=tmp_path,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        out: list[str] = []
        _reader(follow.stdout, out)
        wait_until(lambda: any("LOGGED-BY-STEP" in ln for ln in out), 30, "the first records")
        assert follow.poll() is None  # still following: the execution waits at the gate
        assert not any("AFTER-GATE" in ln for ln in out)
        gate.write_text("open")
        assert follow.wait(60) == 0
        assert run.wait(60) == 0
        wait_until(lambda: any("LAST-RUNS" in ln for ln in out), 5, "the last record")
        assert [ln.split(" ", 1)[1].rstrip("\n") for ln in out] == WRITES_LINES
    finally:
        for p in (run, follow):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait(10)


ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\r")


def test_run_prints_the_steps_output_live_on_a_terminal(tmp_path: Path,
                                                       env: dict[str, str]) -> None:
    """On a pseudo-terminal: the live table, and above it what the steps print, write to
    stderr and log, while the execution is still running (held at a gate)."""
    import fcntl
    import pty
    import struct
    import termios

    f = tmp_path / "writes.yaml"
    f.write_text(WRITES)
    gate = tmp_path / "gate"
    store = f"sqlite:///{tmp_path / 'noetl.db'}"
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 160, 0, 0))
    proc = subprocess.Popen([sys.executable, "-m", "noetl", "run", str(f), "--store", store,
                             "--set", f"gate={gate}"], env={**env, "TERM": "xterm-256color"},
                            cwd=tmp_path, stdin=slave, stdout=slave, stderr=slave,
                            start_new_session=True)
    os.close(slave)
    chunks: list[bytes] = []

    def pump() -> None:
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()

    def screen() -> str:
        return ANSI.sub("", b"".join(chunks).decode("utf-8", "replace"))

    try:
        wait_until(lambda: all(m in screen() for m in ("PRINTED-BY-STEP", "STDERR-OF-STEP",
                                                   "LOGGED-BY-STEP 42")), 60,
               f"the three kinds of output on the terminal; got:\n{screen()[-2000:]}")
        assert proc.poll() is None and "AFTER-GATE" not in screen()  # live: still running
        assert "RUNNING" in screen()  # the live table is drawn
        text = screen()
        assert "start out PRINTED-BY-STEP" in text and "start err STDERR-OF-STEP" in text
        assert "start INFO etl.load: LOGGED-BY-STEP 42" in text
        gate.write_text("open")
        assert proc.wait(60) == 0
        reader.join(10)
        final = screen()
        assert "hold out AFTER-GATE" in final and "last out LAST-RUNS" in final
        assert "COMPLETED" in final
        eid = re.findall(r"execution (\d+) COMPLETED", final)[-1]
        st = open_store(store)
        try:
            with st.read() as tx:  # what was stored is what the steps wrote, no terminal art
                stored = [(r["step"], line) for r in tx.get_logs(int(eid))
                          for line in r["message"].split("\n")]
        finally:
            st.close()
        assert stored == [("start", "PRINTED-BY-STEP"), ("start", "STDERR-OF-STEP"),
                          ("start", "LOGGED-BY-STEP 42"), ("hold", "BEFORE-GATE"),
                          ("hold", "AFTER-GATE"), ("each", "ITEM-1"), ("each", "ITEM-2"),
                          ("last", "LAST-RUNS")]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        os.close(master)


def test_rerun_with_the_same_inputs_and_with_overrides(
        cli: Callable[..., subprocess.CompletedProcess[str]], tmp_path: Path) -> None:
    f = tmp_path / "nine.yaml"
    f.write_text(NINE)
    sink = tmp_path / "fx.db"
    p = cli("run", str(f), "--json", "-q", "--set", f"sink={sink}", "--set", "fail_at=3")
    assert p.returncode == 1
    old = json.loads(p.stdout)["execution_id"]
    p = cli("rerun", old, "--json", "-q")  # the same inputs: fails at 3 again
    assert p.returncode == 1
    assert json.loads(p.stdout)["error"]["step"] == "s3"
    p = cli("rerun", old, "--set", "fail_at=0")
    assert p.returncode == 0, p.stderr
    assert f"re-ran execution {old} as execution " in p.stderr
    assert "s9 out step 9 runs" in p.stdout and "COMPLETED" in p.stdout
    p = cli("resume", old, "--no-wait", "--json")  # left queued for a server's workers
    assert p.returncode == 0, p.stderr
    started = json.loads(p.stdout)
    assert started["kind"] == "resume" and started["source_execution_id"] == old
    p = cli("resume", started["execution_id"])
    assert p.returncode == 1 and "still RUNNING" in p.stderr


def test_logs_rerun_and_resume_against_a_server(
        cli: Callable[..., subprocess.CompletedProcess[str]], tmp_path: Path) -> None:
    from noetl.worker.http_backend import HttpBackend
    from noetl.worker.pool import WorkerPool
    from tests.api.conftest import start_server

    srv = start_server(f"sqlite:///{tmp_path / 'server.db'}")
    sink = tmp_path / "srv.db"
    try:
        with HttpBackend(srv.url, wait_seconds=1) as b, WorkerPool(b, 2, b.services()):
            p = cli("catalog", "register", str(_write(tmp_path, NINE)), "--server", srv.url)
            assert p.returncode == 0, p.stderr
            p = cli("execute", "tests/cli/nine", "--server", srv.url, "--json",
                    "--set", f"sink={sink}")
            assert p.returncode == 1
            old = json.loads(p.stdout)["execution_id"]
            p = cli("logs", old, "--server", srv.url)
            assert p.stdout.splitlines()[-1].split(" ", 1)[1] == "s7 out step 7 runs"
            p = cli("resume", old, "--server", srv.url, "--set", "fail_at=0", "--json")
            assert p.returncode == 0, p.stderr
            out = json.loads(p.stdout)
            assert out["status"] == "COMPLETED"
            assert "s9 out step 9 runs" in p.stderr
            p = cli("logs", out["execution_id"], "--server", srv.url, "--follow", "--json")
            assert [json.loads(ln)["step"] for ln in p.stdout.splitlines()] == ["s7", "s8", "s9"]
            p = cli("rerun", old, "--server", srv.url, "--no-wait", "--json")
            assert json.loads(p.stdout)["kind"] == "rerun"
    finally:
        srv.stop()
    import sqlite3

    with sqlite3.connect(sink) as c:  # the resumed part ran once (the re-run fails at 7)
        assert sorted(r[0] for r in c.execute("SELECT n FROM ran WHERE n > 6")) == [7, 8, 9]


def _write(tmp: Path, text: str) -> Path:
    f = tmp / "pb.yaml"
    f.write_text(text)
    return f
