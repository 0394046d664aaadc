"""Every outcome is recordable (issue 13, items 2 and 3): results and errors that JSON or the
store cannot hold, and values the engine cannot process at run time, end the execution with
a clear error (or, for a lone surrogate, the escaped text) within lease time + 5 s, and the
next job on the same worker runs normally. Embedded (SQLite) and through a server (PostgreSQL)."""

from __future__ import annotations

import textwrap
import time
from collections.abc import Callable
from typing import Any

import pytest

from noetl.dsl import parse_playbook
from noetl.local import LocalRunner
from noetl.settings import Settings
from tests.helpers import assert_one_terminal

PY = """\
apiVersion: noetl.io/v1
kind: Playbook
metadata: {{name: p, path: t/p}}
workflow:
  - step: start
    type: python
    code: |
{code}
"""
OK = PY.format(code="      def main():\n          return {'ok': 1}\n")

BAD_RESULTS = [
    ("def main():\n    return 10 ** 5000\n", "more than 4000 digits"),
    ("def main():\n    d = {}\n    d['me'] = d\n    return d\n", "contains itself"),
    ("def main():\n    return {(1, 2): 'x'}\n", "key of type tuple"),
    ("def main():\n    return {'x': float('nan')}\n", "not a JSON number"),
    ("def main():\n    raise ValueError({'k': 10 ** 5000} and 'bad \\ud800 value')\n",
     "bad \\ud800 value"),
]

DEFAULT_LEASE_SECONDS = Settings.from_env().lease_seconds  # as the runner reads it


def _py(code: str) -> str:
    return PY.format(code=textwrap.indent(code, "      "))


def _run(runner: Any, text: str) -> dict[str, Any]:
    t0 = time.monotonic()
    d = runner.run(parse_playbook(text, "<t>"), timeout=DEFAULT_LEASE_SECONDS + 30)
    assert time.monotonic() - t0 < DEFAULT_LEASE_SECONDS + 5 + 10  # + slack for a loaded box
    with runner.store.read() as tx:
        assert_one_terminal(tx.get_events(int(d["execution_id"]), 0, 10000))
    return d


@pytest.mark.parametrize("code, message", BAD_RESULTS)
def test_unrecordable_outcomes_fail_the_step(sqlite_url: str, code: str, message: str) -> None:
    with LocalRunner(sqlite_url, concurrency=1) as runner:
        d = _run(runner, _py(code))
        assert d["status"] == "FAILED"
        assert message in d["error"]["message"], d["error"]
        assert _run(runner, OK)["status"] == "COMPLETED"


def test_lone_surrogate_is_escaped(sqlite_url: str) -> None:
    with LocalRunner(sqlite_url, concurrency=1) as runner:
        d = _run(runner, _py("def main():\n    return {'s': '\\ud800', '\\udc00k': 'nul\\x00'}\n"))
        assert d["status"] == "COMPLETED", d["error"]
        assert d["result"] == {"s": "\\ud800", "\\udc00k": "nul\\x00"}


RUNTIME_VALUES = ["concurrency: abc", "limit: abc", "chunk: x",
                  "retry: {max_attempts: 100000000000000000000000000000, initial_delay: 0}",
                  "retry: {max_attempts: 3, initial_delay: .nan, max_delay: .inf}"]


def _loop(field: str) -> str:
    return f"""\
apiVersion: noetl.io/v1
kind: Playbook
metadata: {{name: l, path: t/l}}
workflow:
  - step: start
    next: [{{step: each}}]
  - step: each
    type: iterator
    collection: "{{{{ [1, 2, 3] }}}}"
    element: x
    {field}
    task: {{type: python, code: "def main():\\n    raise ValueError('boom')"}}
"""


@pytest.mark.parametrize("field", RUNTIME_VALUES)
def test_values_the_engine_cannot_process_end_cleanly(sqlite_url: str, field: str) -> None:
    """Refused by validation (exit 2 / 422), refused at start with the reason, or the
    execution ends FAILED: never RUNNING for ever, never a traceback."""
    from noetl.errors import PlaybookError

    with LocalRunner(sqlite_url, concurrency=1) as runner:
        try:
            d = _run(runner, _loop(field))
        except PlaybookError as exc:
            assert "invalid playbook" in str(exc)
        else:
            assert d["status"] in ("FAILED", "COMPLETED"), d
        assert _run(runner, OK)["status"] == "COMPLETED"


def test_through_a_server(pg_url: str, serve: Callable[..., Any]) -> None:
    from noetl.worker.http_backend import HttpBackend
    from noetl.worker.pool import WorkerPool

    api = serve(pg_url)
    from noetl.client import Client

    client = Client(api.url)
    with HttpBackend(api.url, wait_seconds=1) as b, WorkerPool(b, 1, b.services()):
        for code, message in BAD_RESULTS[:3]:
            client.register(_py(code).replace("t/p", "t/srv"))
            eid = client.run(path="t/srv", version="latest", args={})["execution_id"]
            d = client.wait(eid, DEFAULT_LEASE_SECONDS + 30)
            assert d["status"] == "FAILED" and message in d["error"]["message"], d["error"]
        client.register(_py("def main():\n    return {'s': '\\ud800'}\n").replace("t/p", "t/s2"))
        d = client.wait(client.run(path="t/s2", version="latest", args={})["execution_id"], 30)
        assert d["status"] == "COMPLETED" and d["result"] == {"s": "\\ud800"}, d


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
def test_a_report_the_engine_cannot_store_fails_its_step(request: pytest.FixtureRequest,
                                                         sqlite_url: str, store: str) -> None:
    """A report sent past the worker's check (another client, an old worker) that the store
    refuses: the step fails with the reason, the report is answered (not retried for ever)."""
    from noetl.engine.core import Engine
    from noetl.store.factory import open_store

    url = sqlite_url if store == "sqlite" else request.getfixturevalue("fresh_pg_url")
    engine = Engine(open_store(url))
    ex = engine.start(parse_playbook(OK, "<t>"))
    (work,) = engine.lease("w1", 1)
    status = engine.report(int(work["job_id"]), "w1",
                           {"status": "ok", "data": {"s": "\ud800", "n": "a\x00b"},
                            "report_id": "r1"})
    assert status == "ok"
    d = engine.describe(ex.execution_id)
    assert d["status"] == "FAILED"
    assert "could not record this step's outcome" in d["error"]["message"], d["error"]
    again = engine.report(int(work["job_id"]), "w1", {"status": "ok", "data": 1,
                                                      "report_id": "r1"})
    assert again in ("duplicate", "cancelled")  # answered, changes nothing
    assert engine.describe(ex.execution_id)["status"] == "FAILED"
    ex2 = engine.start(parse_playbook(OK, "<t>"))
    (work2,) = engine.lease("w1", 1)
    assert engine.report(int(work2["job_id"]), "w1", {"status": "ok", "data": 2}) == "ok"
    assert engine.describe(ex2.execution_id)["status"] == "COMPLETED"
