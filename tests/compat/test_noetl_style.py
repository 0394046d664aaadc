"""The second compatibility suite, embedded: every playbook in tests/compat/noetl_style run on a
SQLite store with 8 worker threads, against the loopback API and a scratch PostgreSQL target,
each checked for the data its author meant (tests/compat/noetl_style_cases.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from noetl.credentials import put_credential, store_credentials
from noetl.local import LocalRunner
from noetl.store import open_store
from noetl.tools.base import Services
from tests.compat.conftest import fresh_database
from tests.compat.noetl_style_api import SuiteApi, serve_suite_api
from tests.compat.noetl_style_cases import CASES, CHILDREN, ENV, SUITE, Run, playbooks
from tests.helpers import assert_one_terminal
from tests.tools.pgutil import pg_fields

pytestmark = pytest.mark.postgres


class Embedded:
    def __init__(self, runner: LocalRunner, target: str, api: SuiteApi):
        self.runner, self.target, self.api = runner, target, api

    def run(self, name: str, args: dict[str, Any] | None = None) -> Run:
        eid = self.runner.engine.start(path=f"noetl_style/{name}", args=args).execution_id
        desc = self.runner.wait(eid, 90)
        with self.runner.store.read() as tx:
            events = tx.get_events(eid, 0, 100000)
        assert_one_terminal(events)
        return Run(desc, [e.to_dict() for e in events])

    def query(self, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
        import psycopg

        with psycopg.connect(self.target) as conn:
            return list(conn.execute(sql.encode(), params).fetchall())


@pytest.fixture(scope="module")
def suite(pg_admin_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Embedded]:
    home = tmp_path_factory.mktemp("noetl-style")
    with serve_suite_api() as api, fresh_database(pg_admin_url) as target, \
            pytest.MonkeyPatch.context() as mp:
        mp.setenv("NOETL_HOME", str(home))
        mp.delenv("NOETL_STORE_URL", raising=False)
        mp.setenv("NOETL_HTTP_REWRITE", api.rewrite())
        for k, v in ENV.items():
            mp.setenv(k, v)
        store = open_store(f"sqlite:///{home / 'noetl.db'}")
        services = Services(credentials=store_credentials(store), data_dir=str(home / "data"))
        try:
            with LocalRunner(store, concurrency=8, services=services) as runner:
                put_credential(store, "pg_local", "postgres", pg_fields(target))
                for path in playbooks():
                    runner.engine.register(path.read_text(), str(path))
                yield Embedded(runner, target, api)
        finally:
            store.close()


def test_every_playbook_has_a_check() -> None:
    stems = {p.stem for p in playbooks()} - set(CHILDREN)
    assert stems == set(CASES)
    assert len(CASES) >= 18
    readme = (SUITE / "README.md").read_text()
    assert all(f"`{s}.yaml`" in readme for s in stems | set(CHILDREN))


@pytest.mark.parametrize("case", sorted(CASES))
def test_noetl_style_embedded(suite: Embedded, case: str) -> None:
    CASES[case](suite)
