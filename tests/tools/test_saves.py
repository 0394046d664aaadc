"""Postgres saves and the HTTP→Postgres transfer, through whole playbooks on LocalRunner."""

from __future__ import annotations

from typing import Any

import pytest

from noetl.credentials import put_credential
from noetl.local import LocalRunner
from tests.tools.pgutil import pg_fields, query, run_text, unique


@pytest.fixture
def runner(pg_url: str, sqlite_url: str, noetl_home: Any) -> Any:
    with LocalRunner(sqlite_url) as r:
        put_credential(r.store, "pg_local", "postgres", pg_fields(pg_url))
        yield r


SAVES = """
apiVersion: noetl.io/v1
kind: Playbook
metadata: {name: pg_saves}
workload: {table: x}
workflow:
  - step: start
    next: [{step: create}]
  - step: create
    type: postgres
    auth: pg_local
    command: |
      CREATE TABLE {{ workload.table }} (id int, k2 text, v text, extra jsonb,
                                         PRIMARY KEY (id, k2));
    next: [{step: rows}]
  - step: rows
    type: python
    code: |
      def main():
          return [{"id": 1, "k2": "a", "v": "one", "extra": {"n": 1}},
                  {"id": 2, "k2": "a", "v": "two", "extra": [1, 2]}]
    save:
      storage: {type: postgres, table: "{{ workload.table }}", auth: pg_local}
      data: "{{ result }}"
    next: [{step: upsert}]
  - step: upsert
    type: python
    code: |
      def main():
          return {"id": 1, "k2": "a", "v": "ONE"}
    save:
      storage: postgres
      table: "{{ workload.table }}"
      auth: pg_local
      mode: upsert
      key: [id, k2]
    next: [{step: keys_only}]
  - step: keys_only
    type: noop
    save:
      storage: postgres
      auth: pg_local
      table: "{{ workload.table }}"
      mode: upsert
      key: "id, k2"
      data: {id: 2, k2: a}
    next: [{step: custom}]
  - step: custom
    type: python
    code: |
      def main():
          return {"id": 3, "v": "it's 100% :fine", "x": {"a": 1}}
    save:
      storage: postgres
      auth: pg_local
      statement: >-
        INSERT INTO {{ workload.table }} (id, k2, v, extra)
        VALUES (:id, ':not_a_param', :v, CAST(:x AS jsonb))
      data: "{{ result }}"
    next: [{step: end}]
  - step: end
"""


def test_insert_upsert_and_statement_saves(runner: Any, pg_url: str) -> None:
    t = unique("sv")
    desc, events = run_text(SAVES, runner, {"table": t})
    assert desc["status"] == "COMPLETED", desc["error"]
    rows = query(pg_url, f"SELECT id, k2, v, extra FROM {t} ORDER BY id")
    assert rows == [(1, "a", "ONE", {"n": 1}), (2, "a", "two", [1, 2]),
                    (3, ":not_a_param", "it's 100% :fine", {"a": 1})]
    saves = {e.node_name: e.result["meta"]["save"] for e in events
             if e.event_type == "action_completed" and e.result and
             (e.result.get("meta") or {}).get("save")}
    assert saves["rows"] == {"storage": "postgres", "table": t, "rows": 2, "mode": "insert"}
    assert saves["upsert"]["mode"] == "upsert" and saves["custom"] == {
        "storage": "postgres", "statement": True, "rows": 1}


def test_failed_save_fails_the_step(runner: Any) -> None:
    desc, _ = run_text("""
    apiVersion: noetl.io/v1
    kind: Playbook
    metadata: {name: bad_save}
    workflow:
      - step: start
        next: [{step: s}]
      - step: s
        type: python
        code: "def main():\\n    return {'a': 1}"
        save: {storage: postgres, auth: pg_local, table: no_such_table_here}
        next: [{step: end}]
      - step: end
    """, runner)
    assert desc["status"] == "FAILED"
    assert desc["error"]["step"] == "s"
    assert 'relation "no_such_table_here" does not exist' in desc["error"]["message"]


EDGE = [
    "it's a \"quote\"", "unicode ✓ 日本語 🎉", "'; DROP TABLE x; --", "line1\nline2\r\n\ttab",
    "back\\slash \\n \\\\", "", None, "{{ not a template }}", "$$ dollar $$", ":name %s %(x)s",
]


def test_save_edge_cases_round_trip(runner: Any, pg_url: str) -> None:
    t = unique("edge")
    query_setup = f"CREATE TABLE {t} (i int PRIMARY KEY, v text)"
    import psycopg

    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(query_setup.encode())
    desc, _ = run_text("""
    apiVersion: noetl.io/v1
    kind: Playbook
    metadata: {name: edge}
    workflow:
      - step: start
        next: [{step: s}]
      - step: s
        type: python
        code: |
          def main(values):
              return [{"i": n, "v": v} for n, v in enumerate(values)]
        args: {values: "{{ workload.values }}"}
        save: {storage: postgres, auth: pg_local, table: "{{ workload.table }}",
               mode: upsert, key: i}
        next: [{step: end}]
      - step: end
    """, runner, {"table": t, "values": EDGE})
    assert desc["status"] == "COMPLETED", desc["error"]
    back = [v for _, v in query(pg_url, f"SELECT i, v FROM {t} ORDER BY i")]
    assert back == EDGE
    assert query(pg_url, "SELECT to_regclass('x') IS NULL") == [(True,)]


TRANSFER = """
apiVersion: noetl.io/v1
kind: Playbook
metadata: {name: transfer}
workflow:
  - step: start
    next: [{step: create}]
  - step: create
    type: postgres
    auth: pg_local
    command: |
      CREATE TABLE IF NOT EXISTS {{ workload.table }} (post_id int PRIMARY KEY, user_id int,
                                                       title text, body text);
    next: [{step: move}]
  - step: move
    type: transfer
    chunk_size: 10
    source: {type: http, url: "{{ workload.url }}", method: GET,
             data_path: "{{ workload.path }}"}
    target:
      type: postgres
      auth: pg_local
      table: "{{ workload.table }}"
      mode: "{{ workload.mode }}"
      key: post_id
      mapping: {post_id: id, user_id: userId, title: title, body: body}
    next: [{step: end}]
  - step: end
"""


def test_http_to_postgres_transfer(runner: Any, pg_url: str, stub: Any) -> None:
    from tests.tools.conftest import POSTS

    t = unique("tr")
    args = {"table": t, "url": f"{stub.url}/posts", "path": "", "mode": "insert"}
    desc, _ = run_text(TRANSFER, runner, args)
    assert desc["status"] == "COMPLETED", desc["error"]
    assert desc["steps"]["move"]["result"] == {"rows_transferred": 25, "chunks": 3,
                                               "source_status_code": 200, "table": t}
    rows = query(pg_url, f"SELECT post_id, user_id, title, body FROM {t} ORDER BY post_id")
    assert rows == [(p["id"], p["userId"], p["title"], p["body"]) for p in POSTS]
    # the same rows again, wrapped in the response, as an upsert: no duplicates, no error
    args.update(url=f"{stub.url}/posts?wrapped=1", path="result.items", mode="upsert")
    desc, _ = run_text(TRANSFER, runner, args)
    assert desc["status"] == "COMPLETED", desc["error"]
    assert query(pg_url, f"SELECT count(*) FROM {t}") == [(25,)]
    # a plain insert of the same keys violates the primary key: the step fails
    args.update(mode="insert")
    desc, _ = run_text(TRANSFER, runner, args)
    assert desc["status"] == "FAILED" and "duplicate key" in desc["error"]["message"]
