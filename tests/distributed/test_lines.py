"""A python step's error names the playbook's line in every mode: a plan compiled again from
the stored snapshot by another server process, or by a direct worker, or for a re-run or a
resume, gives the same ``at`` as ``noetl execute`` on the same catalog entry. Real
``noetl server start`` processes on PostgreSQL, real HTTP and direct workers, the real CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator

import pytest

from noetl.client import Client
from noetl.store import open_store
from tests.distributed.conftest import Cluster, base_env

pytestmark = pytest.mark.postgres

RAISES = """\
apiVersion: noetl.io/v1
kind: Playbook
metadata: {name: lines, path: tests/dist/lines}
workload: {divisor: 0}
workflow:
  - step: start
    type: python
    args: {d: "{{ workload.divisor }}"}
    code: |
      def ratio(n, d):
          return n / d

      def main(d):
          return ratio(42, d)
"""
RAISED = next(i for i, line in enumerate(RAISES.splitlines(), 1) if "return n / d" in line)
AT = f"tests/dist/lines, line {RAISED}"  # a catalog entry's file is its path
ONE = {"NOETL_SERVER_WORKERS": "0", "NOETL_SERVER_PROCESSES": "1"}


@pytest.fixture(scope="module")
def two(pg_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """Servers ``a`` and ``b`` (one process each, no worker inside), an HTTP worker on ``b``
    only: what ``a`` starts, ``b`` hands out, from a plan it compiles from the store."""
    c = Cluster(pg_url, tmp_path_factory.mktemp("lines"))
    try:
        c.server("a", env_extra=ONE)
        c.server("b", env_extra=ONE)
        c.worker("w-b", "b")
        yield c
    finally:
        c.stop_all()


def cli(c: Cluster, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "noetl", *args], capture_output=True, text=True,
                          env=base_env(c.home), cwd=c.home, timeout=120)


def error_of(cl: Client, eid: str) -> dict:
    desc = cl.wait(eid, 60)
    assert desc["status"] == "FAILED", desc
    err: dict = desc["steps"]["start"]["error"]
    return err


def assert_at_the_line(err: dict, what: str) -> None:
    assert err.get("at") == AT, (what, err)
    assert f'File "tests/dist/lines", line {RAISED}, in ratio' in err["user_traceback"], what
    assert "<step code" not in err["user_traceback"], what


def test_every_mode_names_the_same_line(two: Cluster) -> None:
    with Client(two.urls["a"]) as a, Client(two.urls["b"]) as b:
        a.register(RAISES)
        # embedded: `noetl execute` on the same store compiles the catalog entry itself
        p = cli(two, "execute", "tests/dist/lines", "--store", two.pg_url, "--json")
        assert p.returncode == 1, p.stderr
        embedded = json.loads(p.stdout)
        assert_at_the_line(embedded["error"], "embedded")
        # started on b, leased through b: the plan b compiled from the catalog entry
        assert_at_the_line(error_of(b, b.run("tests/dist/lines")["execution_id"]), "b")
        # started on a, leased through b: b compiles it from the stored snapshot
        started = a.run("tests/dist/lines")["execution_id"]
        assert_at_the_line(error_of(a, started), "a → b")
        # a re-run through server a, run by b's worker
        p = cli(two, "rerun", started, "--server", two.urls["a"], "--json", "-q")
        assert p.returncode == 1, p.stderr
        assert_at_the_line(json.loads(p.stdout)["error"], "rerun --server")
        # a resume by the CLI on the store itself (a process that never saw the plan)
        p = cli(two, "resume", started, "--store", two.pg_url, "--json", "-q")
        assert p.returncode == 1, p.stderr
        assert_at_the_line(json.loads(p.stdout)["error"], "resume --store")
        # a direct worker in place of the HTTP one: it compiles the snapshot itself
        two.kill("w-b")
        two.direct("d-1")
        assert_at_the_line(error_of(a, a.run("tests/dist/lines")["execution_id"]), "direct")
        p = cli(two, "resume", started, "--server", two.urls["b"], "--no-wait", "--json")
        assert p.returncode == 0, p.stderr
        resumed = json.loads(p.stdout)["execution_id"]
        assert_at_the_line(error_of(b, resumed), "resume --server, direct worker")


def test_the_stored_snapshot_names_the_file(two: Cluster) -> None:
    """What the store holds of an execution: the playbook and, apart, its file and lines."""
    with Client(two.urls["a"]) as a:
        a.register(RAISES)
        eid = a.run("tests/dist/lines")["execution_id"]
        error_of(a, eid)
    store = open_store(two.pg_url)
    try:
        with store.read() as tx:
            stored = tx.get_playbook(int(eid))
    finally:
        store.close()
    assert stored is not None
    assert stored["_noetl_source"] == {"source": "tests/dist/lines",
                                       "code_lines": {"step:start": RAISED - 1}}
    assert stored["metadata"]["path"] == "tests/dist/lines"
