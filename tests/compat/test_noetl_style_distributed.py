"""The second compatibility suite through ``noetl server start`` (PostgreSQL store) and two
``noetl worker start`` processes: the same playbooks and the same checks as the embedded run
(tests/compat/noetl_style_cases.py). What the server keeps of each run (step inputs, saved data)
is also scanned for template text: a completed run must show none."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.fernet import Fernet

from noetl.client import Client
from tests.compat.conftest import fresh_database
from tests.compat.noetl_style_api import SuiteApi, serve_suite_api
from tests.compat.noetl_style_cases import CASES, ENV, Run, playbooks
from tests.compat.template_tap import scan_run
from tests.compat.test_distributed import EnvCluster, check_events
from tests.tools.pgutil import pg_fields

pytestmark = pytest.mark.postgres


class Distributed:
    def __init__(self, client: Client, target: str, api: SuiteApi):
        self.client, self.target, self.api = client, target, api
        self.runs: list[Run] = []

    def run(self, name: str, args: dict[str, Any] | None = None) -> Run:
        eid = self.client.run(f"noetl_style/{name}", args=args)["execution_id"]
        desc = self.client.wait(eid, 120)
        events = self.client.events(eid, limit=100000)
        check_events(events)
        run = Run(desc, events)
        self.runs.append(run)
        return run

    def query(self, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
        import psycopg

        with psycopg.connect(self.target) as conn:
            return list(conn.execute(sql.encode(), params).fetchall())


@pytest.fixture(scope="module")
def dsuite(pg_admin_url: str, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[Distributed]:
    with serve_suite_api() as api, fresh_database(pg_admin_url) as store_url, \
            fresh_database(pg_admin_url) as target:
        c = EnvCluster(store_url, tmp_path_factory.mktemp("noetl-style-cluster"))
        c.extra_env = {"NOETL_ENCRYPTION_KEY": Fernet.generate_key().decode(),
                       "NOETL_HTTP_REWRITE": api.rewrite(), **ENV}
        try:
            c.server("a")
            c.worker("w-a", "a")
            c.worker("w-b", "a")
            with Client(c.urls["a"]) as cl:
                cl.put_credential("pg_local", "postgres", pg_fields(target))
                for path in playbooks():
                    cl.register(path.read_text())
                yield Distributed(cl, target, api)
        finally:
            c.stop_all()


@pytest.mark.parametrize("case", sorted(CASES))
def test_noetl_style_distributed(dsuite: Distributed, case: str) -> None:
    start = len(dsuite.runs)
    CASES[case](dsuite)
    for run in dsuite.runs[start:]:
        assert run.events and {e["worker_id"] for e in run.events
                               if e["event_type"] == "action_started"} <= {"w-a", "w-b"}
        if run.desc["status"] == "COMPLETED":
            assert scan_run(run.desc, run.events) == [], run.eid


LEAKY = """\
apiVersion: noetl.io/v1
kind: Playbook
metadata: {name: leaky_remote, path: noetl_style_scan/leaky_remote}
workflow:
  - step: start
    type: python
    args: {t: "{% raw %}{{ left_as_is }}{% endraw %}"}
    code: |
      def main(t):
          return t
"""


def test_scan_flags_template_text_kept_by_the_server(dsuite: Distributed) -> None:
    """The scan of distributed runs can fail: a remote run whose step input holds template
    text is found both by scan_run and by the tap on Client.wait."""
    from tests.compat.template_tap import TAP

    since = len(TAP.leaks)
    dsuite.client.register(LEAKY)
    eid = dsuite.client.run("noetl_style_scan/leaky_remote")["execution_id"]
    desc = dsuite.client.wait(eid, 60)
    TAP.intended.add(str(eid))
    assert desc["status"] == "COMPLETED", desc["error"]
    found = scan_run(desc, dsuite.client.events(eid))
    assert found == ["step 'start' input.t: '{{ left_as_is }}'"]
    assert [x.execution_id for x in TAP.leaks[since:]] == [str(eid)]
