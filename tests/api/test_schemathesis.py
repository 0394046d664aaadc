"""Schemathesis over every operation of the OpenAPI document, against a real uvicorn server on
loopback (SQLite store, a token configured), each case sent with the token and without it:
no 5xx, every status code documented for its operation, every JSON body matching its
documented schema (issue 13, item 9). Bounded: a few examples per operation, derandomized."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hypothesis
import pytest
import schemathesis
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    response_schema_conformance,
    status_code_conformance,
)

from tests.api.conftest import Running, start_server

TOKEN = "tok-schemathesis-0123456789"
EXAMPLES = 12
CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]
PB = ("apiVersion: noetl.io/v1\nkind: Playbook\nmetadata: {name: s, path: t/s}\n"
      "workflow:\n  - step: start\n    type: noop\n")


@pytest.fixture(scope="module")
def server() -> Iterator[Running]:
    with tempfile.TemporaryDirectory() as tmp:
        mp = pytest.MonkeyPatch()
        mp.setenv("NOETL_HOME", tmp)  # the SQLite credential key file
        srv = start_server(f"sqlite:///{Path(tmp) / 'noetl.db'}", token=TOKEN)
        try:
            with srv.client(TOKEN) as c:  # something to find: a playbook, a run, a credential
                c.post("/api/catalog/register", json={"content": PB}).raise_for_status()
                c.post("/api/run/playbook", json={"path": "t/s"}).raise_for_status()
                c.post("/api/credentials", json={"name": "c", "type": "basic",
                                                 "data": {"user": "u", "password": "p"}})
            yield srv
        finally:
            srv.stop()
            mp.undo()


@pytest.fixture(scope="module")
def api_schema(server: Running) -> Any:
    with server.client(TOKEN) as c:
        doc = c.get("/openapi.json").json()
    schema = schemathesis.openapi.from_dict(doc)
    schema.config.update(base_url=server.url)
    return schema


def _call(case: Any, with_token: bool) -> None:
    body = case.body
    if case.operation.path == "/api/queue/lease" and isinstance(body, dict) and isinstance(
            body.get("wait_seconds"), int | float) and not isinstance(body["wait_seconds"], bool):
        body["wait_seconds"] = min(body["wait_seconds"], 0.2)  # a long-poll: keep it short
    headers = {"Authorization": f"Bearer {TOKEN}"} if with_token else {}
    case.call_and_validate(headers=headers, checks=CHECKS, timeout=30)


def _operations(schema: Any) -> list[Any]:
    ops = [r.ok() for r in schema.get_all_operations()]
    assert len(ops) >= 25, [op.label for op in ops]  # every route of the API
    return ops


@pytest.mark.parametrize("with_token", [True, False], ids=["token", "no-token"])
def test_every_operation_conforms(api_schema: Any, with_token: bool) -> None:
    """With the token: valid and invalid requests (schemathesis' positive and negative
    modes) reach the routes; without it: every protected operation answers 401, documented."""
    from hypothesis import strategies as st
    from schemathesis import GenerationMode

    modes = [GenerationMode.POSITIVE, GenerationMode.NEGATIVE] if with_token else [
        GenerationMode.POSITIVE]
    failures: list[str] = []
    for op in _operations(api_schema):
        @hypothesis.settings(max_examples=EXAMPLES if with_token else 4, derandomize=True,
                             database=None, deadline=None,
                             suppress_health_check=list(hypothesis.HealthCheck),
                             phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate])
        @hypothesis.given(st.one_of(*(op.as_strategy(m) for m in modes)))
        def check(case: Any) -> None:
            _call(case, with_token)

        try:
            check()
        except (Exception, BaseExceptionGroup) as exc:  # one report for every operation
            failures.append(f"{op.label}: {str(exc)[:1500]}")
    assert not failures, "\n\n".join(failures)
