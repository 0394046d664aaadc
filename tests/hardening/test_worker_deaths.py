"""Cases 1-5 of issue 13 and the poison job, through a real ``noetl server start`` and one
real ``noetl worker start`` process (concurrency 1, supervised) on PostgreSQL: each bad job
ends its execution FAILED with a clear error within lease time + 5 s (a poison job: after its
lease expired NOETL_MAX_LEASE_EXPIRIES times), and the next job on the same worker runs
normally. A step that kills its worker process costs a process restart; a job that keeps
killing workers fails with "worker died while running this step" instead of killing the
next one."""

from __future__ import annotations

import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from noetl.client import Client
from noetl.errors import PlaybookError
from tests.distributed.conftest import Cluster, base_env

pytestmark = pytest.mark.postgres

LEASE = 2.0
SLACK = 10.0  # a loaded two-core machine: process restarts take seconds
WORKER = "w1"


def _pb(path: str, body: str) -> str:
    return (f"apiVersion: noetl.io/v1\nkind: Playbook\nmetadata: {{name: x, path: {path}}}\n"
            "workflow:\n" + textwrap.indent(textwrap.dedent(body), "  "))


def _py(path: str, code: str, extra: str = "") -> str:
    return _pb(path, f"- step: start\n  type: python\n{extra}  code: |\n"
               + textwrap.indent(textwrap.dedent(code), "    "))


OK = _py("t/ok", "def main():\n    return {'ok': 1}\n")
# kills the worker process that runs it, in a thread or in the child process it gets after
# its first worker died (its parent is then the worker)
KILLER = _py("t/killer", """\
    import posix
    import signal
    import sys
    def main():
        pid = posix.getppid() if sys.argv[0] == "-c" else posix.getpid()
        posix.kill(pid, signal.SIGKILL)
    """)

LOOP = """\
- step: start
  next: [{step: each}]
- step: each
  type: iterator
  collection: [1, 2]
  element: x
  %s
  task: {type: python, code: "def main(x):\\n    return x"}
"""
BAD: list[tuple[str, str, str]] = [  # (case, playbook, expected text of the error)
    ("1 when", _pb("t/c1a", """\
        - step: start
          next: [{step: end, when: "{{ (10 ** (10 ** 7 + 3)) > 1 }}"}]
        - step: end
        """), "template refused"),
    ("1 args", _pb("t/c1b", """\
        - step: start
          type: python
          args: {v: "{{ 10 ** (10 ** 9) }}"}
          code: "def main(v):\\n    return v"
        """), "template refused"),
    ("2 huge int", _py("t/c2a", "def main():\n    return 10 ** 5000\n"), "4000 digits"),
    ("2 cycle", _py("t/c2b", "def main():\n    d = {}\n    d['d'] = d\n    return d\n"),
     "contains itself"),
    ("3 limit", _pb("t/c3a", LOOP % 'limit: "{{ \'abc\' }}"'), "limit: must be a whole number"),
    ("3 concurrency", _pb("t/c3b", LOOP % 'mode: async\n  concurrency: "{{ \'abc\' }}"'),
     "concurrency: must be a whole number"),
    ("4 sys.exit", _py("t/c4a", "import sys\ndef main():\n    sys.exit(3)\n"), "3"),
    ("4 KeyboardInterrupt", _py("t/c4b", "def main():\n    raise KeyboardInterrupt('k')\n"),
     "k"),
    ("4 os._exit", _py("t/c4c", "import os\ndef main():\n    os._exit(1)\n"), "_exit"),
    # round the step's os: the worker process dies, is started again, and the job, re-leased,
    # runs in a child process that dies alone
    ("4 posix._exit", _py("t/c4d", "import posix\ndef main():\n    posix._exit(7)\n"),
     "exited with code 7"),
]


@pytest.fixture
def one_worker(fresh_pg_url: str, tmp_path: Path) -> Iterator[tuple[Cluster, Client]]:
    cluster = Cluster(fresh_pg_url, tmp_path)
    try:
        url = cluster.server("s", env_extra={"NOETL_MAX_LEASE_EXPIRIES": "1"})
        cluster.worker(WORKER, "s", concurrency=1, lease=str(LEASE), log_level="info")
        cluster.wait_log(WORKER, "threads leasing from")
        with Client(url) as client:
            yield cluster, client
    finally:
        cluster.stop_all()


def _run(client: Client, text: str, args: dict[str, Any] | None = None,
         timeout: float = LEASE + 5 + SLACK) -> dict[str, Any]:
    path = text.split("path: ", 1)[1].split("}", 1)[0]
    client.register(text)
    t0 = time.monotonic()
    eid = client.run(path, args=args)["execution_id"]
    d = client.wait(eid, timeout)
    d["seconds"] = time.monotonic() - t0
    ends = [e for e in client.events(eid) if e["event_type"] in
            ("execution_completed", "execution_failed", "execution_cancelled")]
    assert len(ends) == 1, ends
    return d


def _ok_on_the_same_worker(client: Client) -> None:
    d = _run(client, OK)
    assert d["status"] == "COMPLETED" and d["result"] == {"ok": 1}, d
    started = [e["worker_id"] for e in client.events(d["execution_id"])
               if e["event_type"] == "action_started"]
    assert started == [WORKER]


def test_each_case_fails_cleanly_and_the_next_job_runs(one_worker: tuple[Cluster, Client]
                                                       ) -> None:
    cluster, client = one_worker
    for case, text, message in BAD:
        d = _run(client, text)
        assert d["status"] == "FAILED", (case, d)
        assert message in d["error"]["message"], (case, d["error"])
        _ok_on_the_same_worker(client)
    assert "died (code 7); starting it again" in cluster.log(WORKER)
    # 2: a lone surrogate and a NUL in a result are recorded, escaped
    d = _run(client, _py("t/c2c", "def main():\n    return {'s': '\\ud800', 'n': 'a\\x00b'}\n"))
    assert d["status"] == "COMPLETED" and d["result"] == {"s": "\\ud800", "n": "a\\x00b"}, d
    # 3: an inline child that is not YAML (templates or not: it is never rendered) and 5: a
    # NUL in a run's args are refused with a 4xx naming them; nothing runs
    with pytest.raises(PlaybookError, match=r"step 'child' → content → yaml"):
        client.register(_pb("t/c3c", """\
            - step: start
              next: [{step: child}]
            - step: child
              type: playbook
              content: "{{ 'a: [' }}"
            """))
    # 1: the workload, rendered when the execution starts
    d = _run(client, _pb("t/c1c", "- step: start\n").replace(
        "workflow:", "workload: {v: \"{{ 10 ** (10 ** 9) }}\"}\nworkflow:"))
    assert d["status"] == "FAILED" and "template refused" in d["error"]["message"], d
    for body in ('{"path": "t/o\\u0000k"}', '{"path": "t/ok", "version": "1\\u0000"}'):
        r = httpx.post(client.server_url + "/api/run/playbook", content=body,
                       headers={"Content-Type": "application/json"}, timeout=30)
        assert 400 <= r.status_code < 500, (body, r.status_code, r.text)
    # a NUL inside an arg is data: kept (as JSON text), the step sees it, its result escapes it
    d = _run(client, _py("t/c5", "def main(v):\n    return {'v': v}\n",
                         "  args: {v: '{{ workload.v }}'}\n").replace(
        "workflow:", "workload: {v: ''}\nworkflow:"), args={"v": "a\x00b"})
    assert d["status"] == "COMPLETED" and d["result"] == {"v": "a\\x00b"}, d
    _ok_on_the_same_worker(client)


def test_a_poison_job_fails_instead_of_killing_the_next_worker(
        one_worker: tuple[Cluster, Client]) -> None:
    cluster, client = one_worker
    # killed twice (in a thread, then in the child process it gets), then failed: 2 leases
    d = _run(client, KILLER, timeout=2 * (LEASE + 5) + 2 * SLACK)
    assert d["status"] == "FAILED", d
    assert "worker died while running this step" in d["error"]["message"], d["error"]
    assert d["error"]["type"] == "LeaseExpired"
    evs = client.events(d["execution_id"])
    retries = [e for e in evs if e["event_type"] == "action_retry"]
    assert [r["context"]["reason"] for r in retries] == ["lease_expired", "lease_expired"]
    assert cluster.log(WORKER).count("starting it again") == 2
    _ok_on_the_same_worker(client)
    assert cluster.procs[WORKER].poll() is None  # the supervisor is still there


def test_several_supervised_processes(fresh_pg_url: str, tmp_path: Path) -> None:
    """`--processes 2 --worker-id ID`: two worker processes ID-0 and ID-1 lease side by side;
    SIGTERM stops both and the supervisor exits 0."""
    import signal

    cluster = Cluster(fresh_pg_url, tmp_path)
    try:
        url = cluster.server("s")
        env = {**base_env(tmp_path), "NOETL_LEASE_SECONDS": str(LEASE)}
        cluster._spawn("pool", ["worker", "start", "--server", url, "--worker-id", "p",
                                "--processes", "2", "--concurrency", "1", "--wait-seconds", "1",
                                "--log-level", "info"], env)
        deadline = time.monotonic() + 30
        while cluster.log("pool").count("threads leasing from") < 2:
            assert time.monotonic() < deadline, cluster.log("pool")
            time.sleep(0.05)
        marker = tmp_path / "both"
        slow = _py("t/slow", f"""\
            import os, time
            def main():
                open({str(marker)!r} + str(os.getpid()), "w").close()
                deadline = time.monotonic() + 20
                while len([f for f in os.listdir({str(tmp_path)!r})
                           if f.startswith("both")]) < 2:  # until the other one runs too
                    assert time.monotonic() < deadline, "the other process never ran"
                    time.sleep(0.02)
                return {{"pid": os.getpid()}}
            """)
        with Client(url) as client:
            client.register(slow)
            eids = [client.run("t/slow")["execution_id"] for _ in range(2)]
            descs = [client.wait(e, 60) for e in eids]
            assert all(d["status"] == "COMPLETED" for d in descs), descs
            workers = {e["worker_id"] for eid in eids for e in client.events(eid)
                       if e["event_type"] == "action_started"}
        assert workers == {"p-0", "p-1"}
        assert cluster.kill("pool", signal.SIGTERM) == 0
    finally:
        cluster.stop_all()


def test_a_process_that_stops_with_results_unrecorded_is_not_restarted() -> None:
    """Exit code 3 (UNRECORDED_EXIT): the process stopped on its own, some results were not
    recorded; the supervisor does not start it again and exits with that code."""
    import sys
    import threading

    from noetl.worker.supervisor import UNRECORDED_EXIT, Supervisor

    sup = Supervisor([[sys.executable, "-c", f"import sys; sys.exit({UNRECORDED_EXIT})"]])
    assert sup.run(threading.Event(), grace=5) == UNRECORDED_EXIT
    assert sup.procs[0].exit_code == UNRECORDED_EXIT
