"""NoETL corpus: every one of the 23 fixtures is accepted (validated, compiled, registered under
its own catalog path); the Snowflake ones, which cannot run offline, fail truthfully."""

from __future__ import annotations

import pytest

from noetl.dsl import load_playbook
from noetl.plan import compile_plan
from tests.compat.conftest import CORPUS, Compat, events_of

pytestmark = pytest.mark.postgres
ALL = sorted(p.relative_to(CORPUS).as_posix() for p in CORPUS.rglob("*.yaml"))
SNOWFLAKE = ["data_transfer/snowflake_postgres.yaml", "snowflake_transfer/snowflake_transfer.yaml",
             "snowflake_transfer/snowflake_transfer_query.yaml"]


def test_every_fixture_registers(compat: Compat) -> None:
    assert len(ALL) == 23
    paths = []
    for rel in ALL:
        pb = load_playbook(CORPUS / rel)
        plan = compile_plan(pb)
        assert plan.steps, rel
        entry = compat.runner.engine.register((CORPUS / rel).read_text(), rel)
        assert entry.path == pb.path, rel
        paths.append(entry.path)
    assert len(set(paths)) == 23  # 23 distinct catalog paths


@pytest.mark.parametrize("rel", SNOWFLAKE)
def test_snowflake_fixture_fails_without_snowflake(compat: Compat, rel: str) -> None:
    """Offline there is no Snowflake tool: the first Snowflake step fails, naming the step type,
    before anything connects anywhere; nothing after it runs."""
    desc, events = compat.run(rel)
    assert desc["status"] == "FAILED"
    assert desc["error"]["step"] == "create_sf_database"
    assert desc["error"]["message"] == "no tool for step type 'snowflake' on this worker"
    assert desc["steps"]["create_sf_database"]["attempts"] == 1
    assert not events_of(events, "setup_pg_table", "action_started")
