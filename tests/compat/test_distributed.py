"""Issue 4 acceptance in distributed mode: ``noetl server start`` on PostgreSQL and two
``noetl worker start`` subprocesses (one cluster for the module): a 1,000-item loop, and corpus
fixtures run through the API."""

from __future__ import annotations

import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from noetl.client import Client
from tests.compat.conftest import (
    CORPUS,
    Api,
    fixture_path,
    fresh_database,
    rewrite_spec,
    serve_api,
)
from tests.distributed.conftest import Cluster
from tests.tools.pgutil import pg_fields

pytestmark = pytest.mark.postgres
TERMINAL = ("execution_completed", "execution_failed", "execution_cancelled")
N_ITEMS = 1000

LOOP = f"""\
apiVersion: noetl.io/v1
kind: Playbook
metadata: {{name: loop_1000, path: tests/compat/loop_1000}}
workload: {{n: {N_ITEMS}}}
workflow:
  - step: start
    type: iterator
    collection: "{{{{ range(workload.n) | list }}}}"
    element: i
    mode: async
    concurrency: 16
    task:
      type: python
      args: {{i: "{{{{ i }}}}"}}
      code: |
        def main(i):
            return {{"i": i, "square": i * i}}
"""


class EnvCluster(Cluster):
    """The shared test cluster, with extra environment for every process it starts."""

    extra_env: dict[str, str] = {}

    def _spawn(self, name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        return super()._spawn(name, args, {**env, **self.extra_env})


class Dist:
    def __init__(self, cluster: EnvCluster, client: Client, target: str, api: Api):
        self.cluster, self.client, self.target, self.api = cluster, client, target, api

    def query(self, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
        import psycopg

        with psycopg.connect(self.target) as conn:
            return list(conn.execute(sql.encode(), params).fetchall())


@pytest.fixture(scope="module")
def dist(pg_admin_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dist]:
    from cryptography.fernet import Fernet

    with serve_api() as api, fresh_database(pg_admin_url) as store_url, \
            fresh_database(pg_admin_url) as target:
        c = EnvCluster(store_url, tmp_path_factory.mktemp("compat-cluster"))
        c.extra_env = {"NOETL_ENCRYPTION_KEY": Fernet.generate_key().decode(),
                       "NOETL_HTTP_REWRITE": rewrite_spec(api)}
        try:
            c.server("a")
            c.worker("w-a", "a")
            c.worker("w-b", "a")
            with Client(c.urls["a"]) as cl:
                cl.put_credential("pg_local", "postgres", pg_fields(target))
                yield Dist(c, cl, target, api)
        finally:
            c.stop_all()


def check_events(evs: list[dict[str, Any]]) -> None:
    types = [e["event_type"] for e in evs]
    assert sum(t in TERMINAL for t in types) == 1, Counter(types)
    assert types[-1] in TERMINAL


def test_thousand_items_on_two_workers(dist: Dist) -> None:
    cl = dist.client
    cl.register(LOOP)
    t0 = time.monotonic()
    eid = cl.run("tests/compat/loop_1000")["execution_id"]
    desc = cl.wait(eid, 120)
    elapsed = time.monotonic() - t0
    assert desc["status"] == "COMPLETED", desc["error"]
    assert desc["result"] == [{"i": i, "square": i * i} for i in range(N_ITEMS)]
    evs = cl.events(eid, limit=100000)
    check_events(evs)
    started = [e for e in evs if e["event_type"] == "action_started" and e["node_name"] == "start"]
    done = [e for e in evs if e["event_type"] == "action_completed" and e["node_name"] == "start"]
    assert len(done) == N_ITEMS
    assert sorted(e["current_index"] for e in done) == list(range(N_ITEMS))
    per_worker = Counter(e["worker_id"] for e in started)
    print(f"{N_ITEMS} items on 2 workers: {elapsed:.2f} s; items per worker {dict(per_worker)}")
    assert set(per_worker) == {"w-a", "w-b"}, per_worker  # both workers took items
    assert sum(per_worker.values()) >= N_ITEMS


def _run(dist: Dist, rel: str, args: dict[str, Any] | None = None) -> dict[str, Any]:
    path = fixture_path(rel)
    entry = dist.client.register(Path(path).read_text())
    return dist.client.run(entry["path"], args=args)


def test_corpus_fixtures_distributed(dist: Dist) -> None:
    cl = dist.client
    cl.register((CORPUS / "playbook_composition/user_profile_scorer.yaml").read_text())  # child first
    starts = {name: _run(dist, rel) for name, rel in (
        ("hello", "hello_world/hello_world.yaml"),
        ("iterator", "iterator_save_test.yaml"),
        ("composition", "playbook_composition/playbook_composition.yaml"),
        ("transfer", "data_transfer/http_to_postgres_transfer.yaml"))}
    descs = {k: cl.wait(v["execution_id"], 60) for k, v in starts.items()}
    workers: Counter[str] = Counter()
    for k, d in descs.items():
        assert d["status"] == "COMPLETED", (k, d["error"])
        evs = cl.events(d["execution_id"])
        check_events(evs)
        workers.update(e["worker_id"] for e in evs if e["event_type"] == "action_started")
    assert descs["hello"]["steps"]["test_step"]["result"] == {"message": "Hello World"}

    eid = str(descs["iterator"]["execution_id"])
    assert dist.query("SELECT id, item_name, item_value FROM public.iterator_save_test "
                      "WHERE execution_id = %s ORDER BY id", (eid,)) == [
        (f"{eid}:item{i}", f"item{i}", i * 100) for i in (1, 2, 3)]

    comp = descs["composition"]
    users = comp["steps"]["process_users"]["result"]
    assert [u["user_name"] for u in users] == ["Alice", "Bob", "Charlie", "Diana"]
    assert all(0 < u["profile_score"] <= 24 and u["score_category"] == "Junior" for u in users)
    assert comp["result"]["validation_passed"] is True

    assert descs["transfer"]["steps"]["transfer_http_to_pg"]["result"]["rows_transferred"] == 25
    assert "/posts" in dist.api.paths()  # the workers reached the local API through the rewrite
    print(f"corpus on 2 workers: jobs per worker {dict(workers)}")


def test_reproductions_through_a_server_and_remote_workers(dist: Dist) -> None:
    """Issue 10: the bare-name, edge-name, child-data and workload-template rules hold when the
    steps run on remote workers (the work package carries what the templates need)."""
    cl = dist.client
    starts = {name: _run(dist, f"repro:{name}.yaml") for name in (
        "r02_args_in_tool_templates", "r03_edge_args_as_names", "r05b_loop_playbook_task_data",
        "r08_workload_templates_unrendered", "r09_python_context_lacks_results")}
    descs = {k: cl.wait(v["execution_id"], 60) for k, v in starts.items()}
    for k, d in descs.items():
        assert d["status"] == "COMPLETED", (k, d["error"])
        check_events(cl.events(d["execution_id"]))
    assert descs["r02_args_in_tool_templates"]["result"]["command_0"]["rows"] == [
        {"greeting": "hello Ada"}]
    assert descs["r03_edge_args_as_names"]["result"] == {"city": "Oslo", "t": 21}
    assert descs["r05b_loop_playbook_task_data"]["result"] == ["hi Oslo", "hi Rome"]
    r08 = descs["r08_workload_templates_unrendered"]["result"]
    assert r08["db_host"] == "localhost" and len(r08["job_id"]) == 36, r08
    assert descs["r09_python_context_lacks_results"]["result"] == {"seen": 42}
