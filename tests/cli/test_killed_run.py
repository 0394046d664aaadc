"""A ``noetl run`` killed (``kill -9``) mid-step, as real subprocesses on one NOETL_HOME: the
next ``noetl run`` runs only its own playbook (not the stale step), ``noetl status`` says
what is true of the killed execution in embedded mode, and ``noetl resume`` carries it on in
place to its one end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from noetl.domain.records import Job, now
from noetl.store import open_store
from tests.helpers import assert_one_terminal, wait_until

REPO = Path(__file__).resolve().parents[2]
RUNNER_GRACE = 10.0  # seconds a closing runner waits for a step still running (LocalRunner)

# `hold` records that it ran, then waits for the gate file; `after` records that it ran
SLOW = """
apiVersion: noetl.io/v1
kind: Playbook
metadata: {name: slow, path: tests/cli/slow}
workload: {gate: none, sink: none}
workflow:
  - step: start
    next: [{step: hold, args: {gate: "{{ workload.gate }}", sink: "{{ workload.sink }}"}}]
  - step: hold
    type: python
    code: |
      def main(gate, sink):
          import os, time
          with open(sink, "a") as f:
              f.write("hold\\n")
          deadline = time.monotonic() + 120
          while not os.path.exists(gate) and time.monotonic() < deadline:
              time.sleep(0.02)
          return {"held": os.path.exists(gate)}
    next: [{step: after, args: {sink: "{{ workload.sink }}"}}]
  - step: after
    type: python
    code: |
      def main(sink):
          with open(sink, "a") as f:
              f.write("after\\n")
          return "after"
    next: [{step: end}]
  - step: end
"""


@pytest.fixture
def home(tmp_path: Path) -> Iterator[dict[str, Any]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NOETL_")}
    env.update(NOETL_HOME=str(tmp_path / "home"), PYTHONUNBUFFERED="1",
               NOETL_LEASE_SECONDS="1")  # the killed run's lease runs out soon
    procs: list[subprocess.Popen[str]] = []
    yield {"env": env, "tmp": tmp_path, "procs": procs,
           "store": f"sqlite:///{tmp_path / 'home' / 'noetl.db'}"}
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait(10)
    (tmp_path / "gate").write_text("open")  # a step process left behind ends


def _cli(h: dict[str, Any], *args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "noetl", *args], capture_output=True, text=True,
                          env=h["env"], cwd=h["tmp"], timeout=timeout)


def _read(h: dict[str, Any], fn: Any) -> Any:
    store = open_store(h["store"])
    try:
        with store.read() as tx:
            return fn(tx)
    finally:
        store.close()


def _hold_job(h: dict[str, Any], eid: int) -> Job:
    jobs = _read(h, lambda tx: [j for j in tx.list_jobs(execution_id=eid) if j.step == "hold"])
    assert len(jobs) == 1, jobs
    return jobs[0]  # type: ignore[no-any-return]


def _killed_run(h: dict[str, Any]) -> int:
    """Start `noetl run slow.yaml`, wait until `hold` runs, kill -9 it; the execution id."""
    tmp: Path = h["tmp"]
    (tmp / "slow.yaml").write_text(SLOW)
    sink = tmp / "sink.txt"
    p = subprocess.Popen([sys.executable, "-m", "noetl", "run", "slow.yaml", "-q",
                          "--set", f"gate={tmp / 'gate'}", "--set", f"sink={sink}"],
                         env=h["env"], cwd=tmp, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    h["procs"].append(p)
    wait_until(lambda: sink.exists() and sink.read_text() == "hold\n", 60, "`hold` to run")
    rows = _read(h, lambda tx: tx.list_executions(status="RUNNING")[0])
    assert len(rows) == 1
    eid = int(rows[0].execution_id)
    # while it runs, resume refuses: the execution is being run by a live process
    busy = _cli(h, "resume", str(eid), "-q")
    assert busy.returncode != 0 and "still being run" in busy.stderr, busy.stderr
    p.kill()  # SIGKILL: no clean-up at all
    p.wait(30)
    return eid


def test_next_run_runs_only_its_own_and_resume_carries_the_killed_one_on(
        home: dict[str, Any]) -> None:
    h, tmp = home, home["tmp"]
    sink = tmp / "sink.txt"
    eid = _killed_run(h)
    wait_until(lambda: (_hold_job(h, eid).lease_until or 0) < now(), 30,
               "the killed run's lease to run out")

    t0 = time.monotonic()
    second = _cli(h, "run", str(REPO / "examples" / "hello_world.yaml"), "-q", "--json")
    took = time.monotonic() - t0
    assert second.returncode == 0, second.stderr
    assert json.loads(second.stdout)["status"] == "COMPLETED"
    # it did not take the killed execution's stale step (the gate is shut: a stale `hold` run
    # by it would have held it until the runner's grace ran out)
    assert sink.read_text() == "hold\n"
    assert took < RUNNER_GRACE - 2, took
    job = _hold_job(h, eid)
    assert (job.status, job.attempts) == ("leased", 1)
    assert _read(h, lambda tx: tx.get_execution(eid)).status == "RUNNING"

    # what status says is true in embedded mode: nothing re-queues it, resume carries it on
    st = _cli(h, "status", str(eid), "--json")
    assert st.returncode == 0, st.stderr
    why = json.loads(st.stdout)["steps"]["hold"]["waiting"]
    assert why["reason"] == "lease_expired"
    assert f"noetl resume {eid}" in why["message"] and "re-queued" not in why["message"]

    (tmp / "gate").write_text("open")
    res = _cli(h, "resume", str(eid), "-q", "--json")
    assert res.returncode == 0, res.stderr
    desc = json.loads(res.stdout)
    assert (desc["execution_id"], desc["status"], desc["result"]) == (str(eid), "COMPLETED",
                                                                       "after")
    assert sink.read_text() == "hold\nhold\nafter\n"  # the step lost with the run ran again
    events = _read(h, lambda tx: tx.get_events(eid, 0, 100000))
    assert_one_terminal(events)
    assert [e.event_type for e in events if e.node_name == "hold"].count("action_retry") == 1
    # carried on in place: no new execution (the two runs' only)
    assert _read(h, lambda tx: tx.list_executions()[1]) == 2


def test_resume_right_after_the_kill_takes_the_dead_process_lease_over_at_once(
        home: dict[str, Any]) -> None:
    """The lease of a process of this host that is gone is taken over without waiting for it
    to run out."""
    h, tmp = home, home["tmp"]
    h["env"]["NOETL_LEASE_SECONDS"] = "600"
    eid = _killed_run(h)
    assert (_hold_job(h, eid).lease_until or 0) > now() + 60  # far from running out
    (tmp / "gate").write_text("open")
    t0 = time.monotonic()
    res = _cli(h, "resume", str(eid), "-q", "--json")
    assert res.returncode == 0, res.stderr
    assert time.monotonic() - t0 < 60  # the lease's 600 s were not waited for
    assert json.loads(res.stdout)["status"] == "COMPLETED"
    assert (tmp / "sink.txt").read_text() == "hold\nhold\nafter\n"
    assert_one_terminal(_read(h, lambda tx: tx.get_events(eid, 0, 100000)))
