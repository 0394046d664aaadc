"""Servers and workers as separate processes on one PostgreSQL database."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from noetl.client import Client
from tests.distributed.conftest import Cluster, base_env

pytestmark = pytest.mark.postgres
FIX = Path(__file__).resolve().parents[1] / "fixtures" / "noetl"
TERMINAL = ("execution_completed", "execution_failed", "execution_cancelled")
TOKEN = "dist-t0ken"

TWO_STEPS = """\
apiVersion: noetl.io/v1
kind: Playbook
metadata: {name: two, path: tests/dist/two}
workload: {k: 1}
workflow:
  - step: start
    type: python
    args: {k: "{{ workload.k }}"}
    code: |
      def main(k):
          return {"k": k + 1}
    next: [{step: second}]
  - step: second
    type: python
    args: {k: "{{ start.k }}"}
    code: |
      def main(k):
          return {"k": k * 10}
"""

SLOW = """\
apiVersion: noetl.io/v1
kind: Playbook
metadata: {name: slow, path: tests/dist/slow}
workflow:
  - step: start
    type: python
    code: |
      def main():
          import time
          time.sleep(2.5)
          return {"slept": True}
"""


MARKED = """\
apiVersion: noetl.io/v1
kind: Playbook
metadata: {name: marked, path: tests/dist/marked}
workload: {marker: ""}
workflow:
  - step: start
    type: python
    args: {marker: "{{ workload.marker }}"}
    code: |
      def main(marker):
          import time
          open(marker, "w").close()
          time.sleep(2.5)
          return {"slept": True}
"""


def check_events(evs: list[dict[str, Any]]) -> None:
    """One terminal event; step and action events in pairs; no re-run without action_retry."""
    types = [e["event_type"] for e in evs]
    assert sum(t in TERMINAL for t in types) == 1, types
    assert types[-1] in TERMINAL, types
    by_node: dict[str, Counter[str]] = {}
    for e in evs:
        if e["node_name"]:
            by_node.setdefault(e["node_name"], Counter())[e["event_type"]] += 1
    for node, n in by_node.items():
        if n["step_started"]:
            assert n["step_started"] == n["step_completed"] + n["step_failed"], (node, n)
        if n["action_started"]:
            assert n["action_started"] == (n["action_completed"] + n["action_failed"]
                                           + lease_retries(evs, node)), (node, n)
            assert n["action_started"] <= 1 + n["action_retry"], (node, n)


def lease_retries(evs: list[dict[str, Any]], node: str) -> int:
    return sum(1 for e in evs if e["node_name"] == node and e["event_type"] == "action_retry"
               and (e["context"] or {}).get("reason") == "lease_expired")


def run_all(cl: Client, starts: list[dict[str, Any]], timeout: float = 60) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    return [cl.wait(s["execution_id"], max(1.0, deadline - time.monotonic())) for s in starts]


def test_core_fixtures_complete(cluster: Cluster) -> None:
    with Client(cluster.urls["a"]) as cl:
        paths = {}
        for rel in ("hello_world/hello_world.yaml",
                    "control_flow_workbook/control_flow_workbook.yaml",
                    "test_start_with_action.yaml", "test_end_with_action.yaml"):
            paths[rel] = cl.register((FIX / rel).read_text())["path"]
        flow = paths["control_flow_workbook/control_flow_workbook.yaml"]
        starts = [cl.run(paths["hello_world/hello_world.yaml"]), cl.run(flow),
                  cl.run(flow, args={"temperature_c": 10}),
                  cl.run(paths["test_start_with_action.yaml"]),
                  cl.run(paths["test_end_with_action.yaml"])]
        hello, hot, cold, start_a, end_a = run_all(cl, starts, 30)
        for d in (hello, hot, cold, start_a, end_a):
            assert d["status"] == "COMPLETED", d["error"]
            check_events(cl.events(d["execution_id"]))
    assert hello["steps"]["test_step"]["result"] == {"message": "Hello World"}
    assert hot["steps"]["hot_task_a"]["result"] == {"who": "A"}
    assert hot["steps"]["hot_task_b"]["result"] == {"who": "B"}
    assert hot["steps"]["cold_task"]["status"] == "SKIPPED"
    assert cold["steps"]["cold_task"]["result"] == {"who": "C"}
    assert cold["result"] == {"who": "C"}
    assert start_a["steps"]["process"]["result"] == {"from_start": True, "processed": True}
    assert end_a["result"] == {"cleaned_up": True, "table": "temp_session_12345"}


def test_fifty_at_once(cluster: Cluster) -> None:
    with Client(cluster.urls["a"]) as cl:
        cl.register(TWO_STEPS)
        t0 = time.monotonic()
        with ThreadPoolExecutor(8) as ex:
            starts = list(ex.map(lambda i: cl.run("tests/dist/two", args={"k": i}), range(50)))
        descs = run_all(cl, starts, 60)
        elapsed = time.monotonic() - t0
        assert len({d["execution_id"] for d in descs}) == 50
        for i, d in enumerate(descs):
            assert d["status"] == "COMPLETED", d["error"]
            assert d["result"] == {"k": (i + 1) * 10}
        workers: Counter[str] = Counter()
        for d in descs:
            evs = cl.events(d["execution_id"])
            check_events(evs)
            workers.update(e["worker_id"] for e in evs if e["event_type"] == "action_started")
    print(f"50 executions x 2 steps on 2 workers: {elapsed:.2f} s; jobs per worker {workers}")
    assert set(workers) == {"w-a", "w-b"}  # both workers took part


def test_worker_killed_mid_step_is_rerun_by_the_other(cluster: Cluster) -> None:
    with Client(cluster.urls["a"]) as cl:
        cl.register(SLOW)
        eid = cl.run("tests/dist/slow")["execution_id"]
        deadline = time.monotonic() + 20
        first = None
        while first is None:
            first = next((e for e in cl.events(eid) if e["event_type"] == "action_started"),
                         None)
            assert time.monotonic() < deadline, "the slow step never started"
            time.sleep(0.05)
        victim = first["worker_id"]
        survivor = "w-b" if victim == "w-a" else "w-a"
        assert cluster.kill(victim, signal.SIGKILL) == -signal.SIGKILL
        t0 = time.monotonic()
        desc = cl.wait(eid, 30)
        recovered = time.monotonic() - t0
        evs = cl.events(eid)
    cluster.ready_worker(victim, "a")  # back to two workers for the next tests
    assert desc["status"] == "COMPLETED" and desc["result"] == {"slept": True}
    assert desc["steps"]["start"]["attempts"] == 2
    retry = [e for e in evs if e["event_type"] == "action_retry"]
    assert len(retry) == 1 and retry[0]["context"]["reason"] == "lease_expired"
    starts = [(e["worker_id"], e["attempt"]) for e in evs if e["event_type"] == "action_started"]
    assert starts == [(victim, 1), (survivor, 2)]
    check_events(evs)
    print(f"recovered from kill -9 in {recovered:.2f} s (lease 2 s + 2.5 s step)")


def test_two_servers_with_token(cluster: Cluster) -> None:
    url_b = cluster.server("b", token=TOKEN)
    cluster.ready_worker("w-c", "b", concurrency=2, token=TOKEN)
    # without the token: 401 and nothing changes
    with Client(url_b, token=TOKEN) as cl_b:
        before = len(cl_b.catalog_list())
        n_exec = cl_b.executions()["total"]
    for path, body in (("/api/catalog/register", {"content": TWO_STEPS}),
                       ("/api/run/playbook", {"path": "tests/dist/two"})):
        r = httpx.post(url_b + path, json=body, timeout=10)
        assert r.status_code == 401, r.text
    assert httpx.get(url_b + "/api/executions", timeout=10).status_code == 401
    assert httpx.get(url_b + "/health", timeout=10).json() == {"status": "ok"}
    # a worker without the token is refused at start, with a message
    assert cluster.worker("w-x", "b").wait(30) == 1
    cluster.procs.pop("w-x")
    assert "refused this worker" in cluster.log("w-x") and "401" in cluster.log("w-x")
    with Client(url_b, token=TOKEN) as cl_b, Client(cluster.urls["a"]) as cl_a:
        assert len(cl_b.catalog_list()) == before
        assert cl_b.executions()["total"] == n_exec
        # a little work per step (0.2 s) so that every worker thread gets some
        cl_b.register(TWO_STEPS.replace("tests/dist/two", "tests/dist/two_slow").replace(
            "return {\"k\": k + 1}", "import time; time.sleep(0.2); return {\"k\": k + 1}"))
        starts = []
        for i in range(20):
            cl = cl_a if i % 2 else cl_b
            starts.append(cl.run("tests/dist/two_slow", args={"k": i}))
        descs = run_all(cl_b, starts, 60)
        workers: Counter[str] = Counter()
        for i, d in enumerate(descs):
            assert d["status"] == "COMPLETED", d["error"]
            assert d["result"] == {"k": (i + 1) * 10}
            evs = cl_a.events(d["execution_id"])
            check_events(evs)
            workers.update(e["worker_id"] for e in evs if e["event_type"] == "action_started")
    print(f"two servers, jobs per worker: {workers}")
    assert workers["w-c"] > 0 and workers["w-a"] + workers["w-b"] > 0


def _run_marked(cl: Client, marker: Path) -> str:
    """Start MARKED and wait until its step runs in a worker (action_started is written when
    the job is leased, a moment before the worker has it: a stop then gives it back unrun)."""
    cl.register(MARKED)
    eid = str(cl.run("tests/dist/marked", args={"marker": str(marker)})["execution_id"])
    deadline = time.monotonic() + 20
    while not marker.exists():
        assert time.monotonic() < deadline, "the slow step never started"
        time.sleep(0.02)
    return eid


def _only_worker(cluster: Cluster, name: str) -> None:
    """Stop every other worker (SIGTERM, each exits 0): only ``name`` may take the next job."""
    for w in [n for n in cluster.procs if n.startswith("w-") and n != name]:
        assert cluster.kill(w, signal.SIGTERM) == 0


def test_sigterm_lets_the_running_job_finish(cluster: Cluster) -> None:
    """SIGTERM on a worker mid-step: it stops leasing, finishes the job, reports, exits 0."""
    assert cluster.kill("w-a", signal.SIGTERM) == 0  # idle workers stop at once
    assert cluster.kill("w-b", signal.SIGTERM) == 0
    with Client(cluster.urls["a"]) as cl:
        eid = _run_marked(cl, cluster.home / "marked.started")
        assert cluster.kill("w-c", signal.SIGTERM) == 0
        desc = cl.execution(eid)  # the worker reported before exiting
        evs = cl.events(eid)
    assert desc["status"] == "COMPLETED" and desc["steps"]["start"]["attempts"] == 1
    assert [e["worker_id"] for e in evs if e["event_type"] == "action_started"] == ["w-c"]
    assert not any(e["event_type"] == "action_retry" for e in evs)


def test_server_killed_mid_step_loses_nothing(cluster: Cluster) -> None:
    """The server a worker reports to dies while the job runs and comes back on the same
    address: the worker keeps retrying its report (same report_id) and it is recorded once."""
    from tests.distributed.conftest import free_port

    port = free_port()
    url = cluster.server("c", port=port)
    # a lease longer than the outage: its heartbeats cannot reach the dead server, and the
    # other server's reaper takes back a lease that runs out (then the step runs twice)
    cluster.ready_worker("w-d", "c", concurrency=1, lease="30")
    _only_worker(cluster, "w-d")
    with Client(url) as cl:
        eid = _run_marked(cl, cluster.home / "killed.started")
    cluster.kill("c", signal.SIGKILL)
    cluster.wait_log("w-d", "report failed")  # the step ended while the server was down
    cluster.server("c", port=port)
    with Client(url) as cl:
        desc = cl.wait(eid, 30)
        evs = cl.events(eid)
    assert desc["status"] == "COMPLETED" and desc["steps"]["start"]["attempts"] == 1
    types = [e["event_type"] for e in evs]
    assert types.count("action_completed") == 1 and "action_retry" not in types
    check_events(evs)
    assert "retrying" in cluster.log("w-d")
    assert cluster.kill("w-d", signal.SIGTERM) == 0


def test_sigterm_with_the_server_gone_says_which_results_were_not_recorded(
        cluster: Cluster) -> None:
    """The server dies while the job runs and stays down: on SIGTERM the worker retries the
    report for its grace only, then logs the job whose result was never recorded and exits 3
    (not 0: a clean stop), and its supervisor with it."""
    from tests.distributed.conftest import free_port

    url = cluster.server("g", port=free_port())
    cluster.ready_worker("w-g", "g", concurrency=1, lease="30", extra=("--grace", "1"))
    _only_worker(cluster, "w-g")
    with Client(url) as cl:
        _run_marked(cl, cluster.home / "gone.started")
    cluster.kill("g", signal.SIGKILL)
    cluster.wait_log("w-g", "report failed")  # the step ended; the server is gone
    t = time.monotonic()
    assert cluster.kill("w-g", signal.SIGTERM) == 3
    assert time.monotonic() - t < 15  # its grace (1 s) and the long-poll time, not forever
    log = cluster.log("w-g")
    assert "was not recorded before the worker stopped" in log, log
    assert "for 1 running job(s)" in log and "stopped: 0 job(s) run, 0 given back" in log, log


def _children(pid: int) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if int((d / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    out.append(int(d.name))
            except (OSError, ValueError, IndexError):
                continue
    return out


def test_server_with_two_processes(cluster: Cluster, tmp_path: Path) -> None:
    """`noetl server start --processes 2`: two server processes behind one port serve the
    runs (they share nothing but PostgreSQL); on SQLite the option is refused."""
    url = cluster.server("p", env_extra={"NOETL_SERVER_PROCESSES": "2"})
    servers = [c for c in _children(cluster.procs["p"].pid)
               if b"spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes()]
    assert len(servers) == 2, servers
    cluster.worker("w-p", "p", concurrency=8)
    with Client(url) as cl:
        cl.register(TWO_STEPS)
        with ThreadPoolExecutor(8) as ex:
            starts = list(ex.map(lambda i: cl.run("tests/dist/two", args={"k": i}), range(20)))
        descs = run_all(cl, starts, 60)
        for i, d in enumerate(descs):
            assert d["status"] == "COMPLETED" and d["result"] == {"k": (i + 1) * 10}
            check_events(cl.events(d["execution_id"]))
    assert cluster.kill("w-p", signal.SIGTERM) == 0
    assert cluster.kill("p", signal.SIGTERM) == 0
    assert all(not Path(f"/proc/{c}").exists() for c in servers)
    env = {**base_env(tmp_path), "NOETL_SERVER_PROCESSES": "2"}
    r = subprocess.run([sys.executable, "-m", "noetl", "server", "start", "--port", "1",
                        "--store", f"sqlite:///{tmp_path / 'x.db'}"], env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "--processes needs a PostgreSQL store" in r.stderr
