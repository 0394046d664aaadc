"""Step logs on a real store: what steps print, write to stderr and log is captured per job
(worker threads and isolated processes), bounded, redacted, stored apart from the events,
and readable while a long step still runs."""

from __future__ import annotations

import logging
import re
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from noetl.dsl import parse_playbook
from noetl.local import LocalRunner
from noetl.store import open_store
from noetl.tools.base import Services
from noetl.tools.output import StepLog, _Router, capture_job
from noetl.worker.runner import run_work
from tests.helpers import run_yaml
from tests.steplogs import WRITES

EXCEPTION = """
apiVersion: noetl.io/v1
kind: Playbook
metadata: {name: logs_exception}
workflow:
  - step: start
    type: python
    code: |
      import logging
      def main():
          logging.warning("careful")
          try:
              1 / 0
          except ZeroDivisionError:
              logging.getLogger("etl").exception("it broke")
          return 1
    next: [{step: quiet}]
  - step: quiet
    type: python
    code: |
      def main():
          return 2
"""


def _logs(runner: LocalRunner, eid: int, **kw: Any) -> list[dict[str, Any]]:
    with runner.store.read() as tx:
        return tx.get_logs(eid, **kw)


@pytest.mark.parametrize("isolate", [False, True], ids=["thread", "child-process"])  # timeout: a child
def test_stdout_stderr_and_logging_are_stored_per_step_and_item(
        sqlite_url: str, tmp_path: Path, isolate: bool) -> None:
    gate = tmp_path / "gate"
    gate.write_text("open")
    text = re.sub(r"^( *)type: python\n", r"\1type: python\n\1timeout: 60\n", WRITES,
                  flags=re.M) if isolate else WRITES
    pb = parse_playbook(text, "<test>")
    with LocalRunner(sqlite_url) as runner:
        desc = runner.run(pb, args={"gate": str(gate)}, timeout=60)
        assert desc["status"] == "COMPLETED", desc["error"]
        eid = int(desc["execution_id"])
        rows = _logs(runner, eid)
        item1 = _logs(runner, eid, step="each", index=1)
        ids = [r["log_id"] for r in rows]
        after = _logs(runner, eid, since=ids[2])
        with runner.store.read() as tx:
            events = tx.get_events(eid, 0, 10000)
    lines = [(r["step"], r["index"], r["stream"], r["level"], r["logger"], line)
             for r in rows for line in r["message"].split("\n")]
    assert sorted(lines[:3]) == [  # a child process's streams are read one after the other
        ("start", None, "log", "INFO", "etl.load", "LOGGED-BY-STEP 42"),
        ("start", None, "stderr", "WARNING", None, "STDERR-OF-STEP"),
        ("start", None, "stdout", "INFO", None, "PRINTED-BY-STEP")]
    assert lines[3:] == [
        ("hold", None, "stdout", "INFO", None, "BEFORE-GATE"),
        ("hold", None, "stdout", "INFO", None, "AFTER-GATE"),
        ("each", 0, "stdout", "INFO", None, "ITEM-1"),
        ("each", 1, "stdout", "INFO", None, "ITEM-2"),
        ("last", None, "stdout", "INFO", None, "LAST-RUNS")]
    assert [r["message"] for r in item1] == ["ITEM-2"]
    # ids order the records; `since` pages on them
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert [r["log_id"] for r in after] == ids[3:]
    # not in the events (only the python step's meta.stdout, kept for NoETL compatibility)
    for e in events:
        assert "STDERR-OF-STEP" not in str(e.result) + str(e.meta) + str(e.context)
        assert "LOGGED-BY-STEP" not in str(e.result) + str(e.meta) + str(e.context)


def test_logged_exceptions_keep_their_traceback_and_silent_steps_add_nothing(
        sqlite_url: str) -> None:
    pb = parse_playbook(EXCEPTION, "<test>")
    with LocalRunner(sqlite_url) as runner:
        desc = runner.run(pb, timeout=60)
        rows = _logs(runner, int(desc["execution_id"]))
    assert desc["status"] == "COMPLETED"
    assert [(r["step"], r["level"], r["logger"]) for r in rows] == [
        ("start", "WARNING", "root"), ("start", "ERROR", "etl")]
    assert rows[0]["message"] == "careful"
    assert rows[1]["message"].startswith("it broke\nTraceback (most recent call last)")
    assert rows[1]["message"].endswith("ZeroDivisionError: division by zero")


def test_a_job_that_writes_nothing_ships_no_logs() -> None:
    work = {"job_id": "1", "execution_id": "1", "step": "s", "kind": "step", "attempt": 1,
            "action": {"type": "python", "code": "def main():\n    return 5\n"}, "args": {},
            "ctx": {"workload": {}, "execution_id": "1", "results": {}, "extra": {}}}
    out = run_work(work)
    assert out["status"] == "ok" and out["data"] == 5
    assert "logs" not in out


def test_output_is_bounded_with_a_truncated_marker() -> None:
    log = StepLog(limit=10_000)
    services = Services(log=log)
    code = "def main():\n    for i in range(5000):\n        print('x' * 20)\n    return 1\n"
    work = {"job_id": "1", "execution_id": "1", "step": "big", "kind": "step", "attempt": 1,
            "action": {"type": "python", "code": code}, "args": {},
            "ctx": {"workload": {}, "execution_id": "1", "results": {}, "extra": {}}}
    out = run_work(work, services)
    assert out["status"] == "ok"
    recs = out["logs"]
    kept = sum(len(r["message"]) for r in recs if r["stream"] == "stdout")
    assert 9000 < kept <= 10_000
    assert recs[-1]["stream"] == "noetl" and recs[-1]["message"].startswith("[log truncated: ")
    assert "limit is 10000" in recs[-1]["message"]
    assert len(recs) < 10  # consecutive prints are joined into few records


def test_resolved_secrets_are_redacted_from_logs() -> None:
    services = Services(secrets={"hunter2-secret"})
    code = ("import logging\ndef main():\n    print('token hunter2-secret here')\n"
            "    logging.warning('pw=%s', 'hunter2-secret')\n    return 1\n")
    work = {"job_id": "1", "execution_id": "1", "step": "s", "kind": "step", "attempt": 1,
            "action": {"type": "python", "code": code}, "args": {},
            "ctx": {"workload": {}, "execution_id": "1", "results": {}, "extra": {}}}
    out = run_work(work, services)
    assert [r["message"] for r in out["logs"]] == ["token *** here", "pw=***"]


def test_step_records_below_the_process_level_stay_out_of_its_log() -> None:
    """A step's INFO record is captured even though the process logs WARNING and above;
    the process's own handler does not get it; records from other threads are unchanged."""
    seen: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record.getMessage())

    h = Keep()
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(h)
    root.setLevel(logging.WARNING)
    try:
        code = ("import logging\ndef main():\n    logging.getLogger('a.b').info('step info')\n"
                "    logging.getLogger('a.b').warning('step warning')\n    return 1\n")
        work = {"job_id": "1", "execution_id": "1", "step": "s", "kind": "step", "attempt": 1,
                "action": {"type": "python", "code": code}, "args": {},
                "ctx": {"workload": {}, "execution_id": "1", "results": {}, "extra": {}}}
        out = run_work(work)
        logging.getLogger("a.b").info("process info")  # not a step: dropped as before
        logging.getLogger("a.b").warning("process warning")
    finally:
        root.removeHandler(h)
        root.setLevel(old_level)
    assert [r["message"] for r in out["logs"]] == ["step info", "step warning"]
    assert seen == ["step warning", "process warning"]


def test_stdout_of_other_threads_is_not_captured(capsys: pytest.CaptureFixture[str]) -> None:
    """Only the thread running the job writes to its log; the process's output is untouched
    and still says whether it is a terminal."""
    started = threading.Event()
    release = threading.Event()

    def other() -> None:
        started.wait(10)
        print("from another thread")
        release.set()

    t = threading.Thread(target=other)
    t.start()
    code = ("def main(go, done):\n    go.set()\n    done.wait(10)\n    print('from the step')\n"
            "    return 1\n")
    work = {"job_id": "1", "execution_id": "1", "step": "s", "kind": "step", "attempt": 1,
            "action": {"type": "python", "code": code}, "args": {"go": started, "done": release},
            "ctx": {"workload": {}, "execution_id": "1", "results": {}, "extra": {}}}
    out = run_work(work)
    t.join(10)
    assert [r["message"] for r in out["logs"]] == ["from the step"]
    assert "from another thread" in capsys.readouterr().out


def test_the_process_stays_a_terminal_while_a_step_runs() -> None:
    """``noetl run`` draws its live table only on a terminal: routing stdout must not make
    the process's stdout look like a pipe (a step's own output is not a terminal)."""
    class Tty:
        def isatty(self) -> bool:
            return True

        def write(self, s: str) -> int:
            return len(s)

        def flush(self) -> None:
            pass

    router = _Router("stdout", Tty())  # type: ignore[arg-type]
    seen: list[bool] = []
    with capture_job(StepLog()):
        seen.append(router.isatty())
        t = threading.Thread(target=lambda: seen.append(router.isatty()))
        t.start()
        t.join(5)
    assert seen == [False, True]


def test_a_long_steps_output_is_stored_while_it_runs(sqlite_url: str, tmp_path: Path) -> None:
    """Heartbeats carry what a running job wrote so far: followers see it before the end."""
    gate = tmp_path / "gate"
    text = f"""
    apiVersion: noetl.io/v1
    kind: Playbook
    metadata: {{name: long_logs}}
    workflow:
      - step: start
        type: python
        code: |
          import os, time, logging
          def main():
              print("started working")
              logging.getLogger("etl").info("halfway")
              deadline = time.time() + 60
              while not os.path.exists({str(gate)!r}):
                  if time.time() > deadline:
                      raise TimeoutError("gate never opened")
                  time.sleep(0.02)
              print("done working")
              return 1
    """
    pb = parse_playbook(textwrap.dedent(text), "<test>")
    with LocalRunner(sqlite_url, lease_seconds=0.6) as runner:
        ex = runner.engine.start(pb)
        deadline = time.monotonic() + 30
        rows: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            rows = _logs(runner, ex.execution_id)
            if len(rows) >= 2:
                break
            time.sleep(0.05)
        assert [r["message"] for r in rows] == ["started working", "halfway"]
        assert not runner.engine.is_terminal(ex.execution_id)  # still running
        gate.write_text("open")
        desc = runner.wait(ex.execution_id, 30)
        assert desc["status"] == "COMPLETED"
        assert [r["message"] for r in _logs(runner, ex.execution_id)] == [
            "started working", "halfway", "done working"]


def test_logs_of_a_failed_step_and_its_retries_are_kept(sqlite_url: str) -> None:
    desc, _ = run_yaml("""
    apiVersion: noetl.io/v1
    kind: Playbook
    metadata: {name: logs_fail}
    workflow:
      - step: start
        type: python
        retry: {max_attempts: 2, initial_delay: 0}
        code: |
          def main():
              print("trying")
              raise RuntimeError("no luck")
    """, sqlite_url)
    assert desc["status"] == "FAILED"
    store = open_store(sqlite_url)
    try:
        with store.read() as tx:
            rows = tx.get_logs(int(desc["execution_id"]))
    finally:
        store.close()
    assert [(r["attempt"], r["message"]) for r in rows] == [(1, "trying"), (2, "trying")]


def test_warnings_outside_steps_still_reach_stderr_in_a_process_without_logging() -> None:
    """``noetl run`` configures no logging: once the step handler is on the root logger,
    Python's last-resort handler no longer fires, so ours stands in for it."""
    import subprocess
    import sys

    code = textwrap.dedent("""
        import logging
        from noetl.tools.output import StepLog, capture_job
        with capture_job(StepLog()) as log:
            logging.getLogger("x").warning("inside a step")
        print([r["message"] for r in log.drain()])
        logging.getLogger("y").warning("outside a step")
        logging.getLogger("y").info("info outside")
    """)
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "['inside a step']"
    assert p.stderr.strip() == "outside a step"
