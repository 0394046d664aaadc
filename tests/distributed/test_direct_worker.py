"""Direct workers (`noetl worker start --store postgresql://...`, issue 16 item 1): worker
processes that lease, run and report on PostgreSQL themselves, beside a `noetl server start
--no-workers` that only serves the API. Real server, real worker subprocesses, a real receiver
for notifications."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import SplitResult

import pytest
from cryptography.fernet import Fernet

from noetl.client import Client
from tests.conftest import scratch_database
from tests.distributed.conftest import Cluster, base_env
from tests.distributed.test_cluster import SLOW, TERMINAL, TWO_STEPS, check_events, run_all
from tests.helpers import wait_until
from tests.httpstub import StubHandler, serving
from tests.tools.pgutil import pg_fields

pytestmark = pytest.mark.postgres
KEY = Fernet.generate_key().decode()

CHILD = """\
apiVersion: noetl.io/v1
kind: Playbook
metadata: {name: child, path: tests/direct/child}
workload: {x: 1}
workflow:
  - step: start
    type: python
    args: {x: "{{ workload.x }}"}
    code: |
      def main(x):
          return {"doubled": x * 2}
"""

PARENT = """\
apiVersion: noetl.io/v1
kind: Playbook
metadata: {name: parent, path: tests/direct/parent}
workload: {values: [1, 2, 3, 4, 5]}
notify:
  - url: RECEIVER
    name: receiver
    status: completed
workflow:
  - step: start
    type: python
    args: {values: "{{ workload.values }}"}
    code: |
      def main(values):
          return {"n": len(values)}
    next: [{step: squares}]
  - step: squares
    type: iterator
    collection: "{{ workload.values }}"
    element: v
    mode: async
    task:
      type: python
      args: {v: "{{ v }}"}
      code: |
        def main(v):
            return v * v
    next: [{step: child}]
  - step: child
    type: playbook
    path: tests/direct/child
    args: {x: "{{ start.n }}"}
    next: [{step: total}]
  - step: total
    type: python
    args: {squares: "{{ squares }}", child: "{{ child.doubled }}"}
    code: |
      def main(squares, child):
          return {"sum": sum(squares), "child": child}
"""

SECRET = """\
apiVersion: noetl.io/v1
kind: Playbook
metadata: {name: secret, path: tests/direct/secret}
workflow:
  - step: start
    type: postgres
    auth: pg_direct
    command: "SELECT 2 AS two"
"""


class Receiver(StubHandler):
    posts: list[Any] = []
    lock = threading.Lock()

    def route(self, parts: SplitResult, query: dict[str, str], body: Any) -> None:
        with self.lock:
            self.posts.append(body)
        self.send(200, {"ok": True})


@pytest.fixture(scope="module")
def direct(pg_admin_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """Server ``s`` (no in-server workers) and direct workers ``d-1``, ``d-2``, on a database
    of their own (the tests store credentials: other servers would need the key)."""
    with scratch_database(pg_admin_url) as url:
        c = Cluster(url, tmp_path_factory.mktemp("direct"))
        key = {"NOETL_ENCRYPTION_KEY": KEY}
        try:
            c.server("s", env_extra={"NOETL_SERVER_WORKERS": "0", **key}, log_level="info")
            c.direct("d-1", env_extra=key, log_level="info")
            c.direct("d-2", env_extra=key, log_level="info")
            for name in ("d-1", "d-2"):
                c.wait_log(name, "directly (")
            yield c
        finally:
            c.stop_all()


def _workers(evs: list[dict[str, Any]]) -> set[str]:
    return {e["worker_id"] for e in evs if e["event_type"] == "action_started"}


def test_playbook_with_loop_and_sub_playbook_completes(direct: Cluster) -> None:
    Receiver.posts = []
    with serving(Receiver) as receiver, Client(direct.urls["s"]) as cl:
        cl.register(CHILD)
        cl.register(PARENT.replace("RECEIVER", receiver + "/done"))
        eid = cl.run("tests/direct/parent")["execution_id"]
        desc = cl.wait(eid, 60)
        assert desc["status"] == "COMPLETED", desc["error"]
        assert desc["steps"]["start"]["result"] == {"n": 5}
        assert desc["steps"]["squares"]["result"] == [1, 4, 9, 16, 25]
        assert desc["steps"]["child"]["result"] == {"doubled": 10}
        assert desc["result"] == {"sum": 55, "child": 10}
        evs = cl.events(eid)
        types = [e["event_type"] for e in evs]
        assert sum(t in TERMINAL for t in types) == 1 and types[-1] == "execution_completed"
        items = Counter(e["event_type"] for e in evs if e["node_name"] == "squares")
        assert items["action_started"] == items["action_completed"] == 5, items
        (child,) = desc["children"]
        assert child["status"] == "COMPLETED"
        check_events(cl.events(child["execution_id"]))
        assert _workers(evs) | _workers(cl.events(child["execution_id"])) <= {"d-1", "d-2"}
        # the terminal notification the direct worker wrote, delivered by the server
        wait_until(lambda: Receiver.posts, 20, "the notification")
    (body,) = Receiver.posts
    assert body["execution_id"] == str(eid) and body["status"] == "COMPLETED"


def test_direct_workers_in_the_registry(direct: Cluster) -> None:
    with Client(direct.urls["s"]) as cl:
        items = {w["worker_id"]: w for w in cl.request("GET", "/api/workers")["items"]}
    for name in ("d-1", "d-2"):
        w = items[name]
        assert (w["mode"], w["state"], w["concurrency"]) == ("direct", "alive", 4)
        assert w["meta"]["store"].startswith("PostgreSQL 127.0.0.1:")
        assert "postgres@" not in w["meta"]["store"]  # no user, no password


def test_credentials_read_from_the_store(direct: Cluster) -> None:
    with Client(direct.urls["s"]) as cl:
        cl.put_credential("pg_direct", "postgres", pg_fields(direct.pg_url, "direct"))
        cl.register(SECRET)
        desc = cl.wait(cl.run("tests/direct/secret")["execution_id"], 60)
    assert desc["status"] == "COMPLETED", desc["error"]
    assert desc["steps"]["start"]["result"]["command_0"]["rows"][0]["two"] == 2


def test_worker_killed_mid_step_is_rerun_by_the_other(direct: Cluster) -> None:
    with Client(direct.urls["s"]) as cl:
        cl.register(SLOW)
        eid = cl.run("tests/dist/slow")["execution_id"]
        first = wait_until(lambda: next((e for e in cl.events(eid)
                                         if e["event_type"] == "action_started"), None),
                           20, "the slow step to start")
        victim = first["worker_id"]
        survivor = "d-2" if victim == "d-1" else "d-1"
        assert cluster_kill(direct, victim) == -signal.SIGKILL
        desc = cl.wait(eid, 30)
        evs = cl.events(eid)
    direct.direct(victim, env_extra={"NOETL_ENCRYPTION_KEY": KEY}, log_level="info")
    direct.wait_log(victim, "directly (")
    assert desc["status"] == "COMPLETED" and desc["result"] == {"slept": True}
    assert desc["steps"]["start"]["attempts"] == 2
    retry = [e for e in evs if e["event_type"] == "action_retry"]
    assert len(retry) == 1 and retry[0]["context"]["reason"] == "lease_expired"
    starts = [(e["worker_id"], e["attempt"]) for e in evs if e["event_type"] == "action_started"]
    assert starts == [(victim, 1), (survivor, 2)]
    check_events(evs)  # exactly one terminal event


def cluster_kill(c: Cluster, name: str) -> int:
    return c.kill(name, signal.SIGKILL)


def test_direct_and_http_workers_side_by_side(direct: Cluster) -> None:
    direct.worker("h-1", "s", log_level="info")
    direct.wait_log("h-1", "threads leasing from")
    try:
        with Client(direct.urls["s"]) as cl:
            cl.register(TWO_STEPS)
            with ThreadPoolExecutor(8) as ex:
                starts = list(ex.map(lambda i: cl.run("tests/dist/two", args={"k": i}),
                                     range(40)))
            descs = run_all(cl, starts, 60)
            took: Counter[str] = Counter()
            for i, d in enumerate(descs):
                assert d["status"] == "COMPLETED" and d["result"] == {"k": (i + 1) * 10}
                evs = cl.events(d["execution_id"])
                check_events(evs)
                took.update(e["worker_id"] for e in evs if e["event_type"] == "action_started")
        assert "h-1" in took and {"d-1", "d-2"} & set(took), took
    finally:
        assert direct.kill("h-1", signal.SIGTERM) == 0


def test_sigterm_stops_a_direct_worker_cleanly(direct: Cluster) -> None:
    direct.direct("d-3", env_extra={"NOETL_ENCRYPTION_KEY": KEY}, log_level="info")
    direct.wait_log("d-3", "directly (")
    assert direct.kill("d-3", signal.SIGTERM) == 0
    with Client(direct.urls["s"]) as cl:
        items = {w["worker_id"]: w for w in cl.request("GET", "/api/workers")["items"]}
    assert items["d-3"]["state"] == "stopped"


def test_no_key_with_stored_credentials_refused(direct: Cluster) -> None:
    """Credentials are stored (the test above): a direct worker without the key exits 1."""
    with Client(direct.urls["s"]) as cl:
        if not cl.request("GET", "/api/credentials")["items"]:
            cl.put_credential("pg_direct", "postgres", pg_fields(direct.pg_url, "direct"))
    r = subprocess.run([sys.executable, "-m", "noetl", "worker", "start", "--store",
                        direct.pg_url, "--no-supervise"], env=base_env(direct.home),
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "NOETL_ENCRYPTION_KEY is not set" in r.stderr, r.stderr


def test_sqlite_store_refused(tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "noetl", "worker", "start", "--store",
                        f"sqlite:///{tmp_path / 'x.db'}"], env=base_env(tmp_path),
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2, r.stderr
    assert "--store needs a PostgreSQL store" in r.stderr and "one writer" in r.stderr
    assert not (tmp_path / "x.db").exists()  # refused before it opened anything


def test_startup_line_shows_the_derived_sizes(direct: Cluster) -> None:
    from noetl.settings import cpu_count, default_worker_threads

    d2 = (direct.home / "d-2.log").read_text()
    assert "4 threads leasing from" in d2 and "(given)" in d2  # the fixture gave -c 4
    # not given: the supervisor derives the count and its worker process says so
    direct.direct("d-3", concurrency=None, env_extra={"NOETL_ENCRYPTION_KEY": KEY},
                  log_level="info")
    try:
        direct.wait_log("d-3", "threads leasing from")
        d3 = direct.log("d-3")
        assert f"{default_worker_threads()} threads leasing from" in d3
        assert f"(default for {cpu_count()} cores)" in d3 and "(given)" not in d3, d3
    finally:
        direct.kill("d-3", signal.SIGTERM)
    server = (direct.home / "s.log").read_text()
    assert f"noetl server: {cpu_count()} processes" in server or (
        cpu_count() == 1 and "noetl server: 1 process" in server)
    # each process says which store it serves (they log as the command does)
    assert server.count("noetl api: store postgresql://") == cpu_count(), server[-2000:]
    r = subprocess.run([sys.executable, "-m", "noetl", "worker", "start", "--help"],
                       env={**base_env(direct.home), "COLUMNS": "200"}, capture_output=True,
                       text=True, timeout=60)
    assert f"8 per core ({default_worker_threads()} here)" in r.stdout
    assert default_worker_threads() == 8 * cpu_count()
