"""A loop item's report on PostgreSQL: the item's own job update travels in the unit's one
statement; only the last item's is written at once (the loop's results are read from every
item's row right after it)."""

from __future__ import annotations

from typing import Any

import pytest

from noetl.domain.lifecycle import JobKind
from noetl.store.postgres import PgTx
from tests.helpers import run_yaml

pytestmark = pytest.mark.postgres

LOOP = """
apiVersion: noetl.io/v1
kind: Playbook
metadata: {name: loop_writes}
workflow:
  - step: start
    type: python
    code: "def main():\\n    return list(range(12))"
    next: [{step: each}]
  - step: each
    type: iterator
    collection: "{{ start }}"
    element: n
    mode: async
    concurrency: 3
    task:
      type: python
      args: {n: "{{ n }}"}
      code: "def main(n):\\n    return n * n"
"""


def test_only_the_last_items_update_is_written_apart(fresh_pg_url: str,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    apart: list[int | None] = []
    real = PgTx.update_job

    def spy(self: PgTx, job: Any) -> None:
        if job.kind == JobKind.ITEM:
            apart.append(job.index)
        real(self, job)

    monkeypatch.setattr(PgTx, "update_job", spy)
    desc, _ = run_yaml(LOOP, fresh_pg_url, concurrency=3)
    assert desc["status"] == "COMPLETED"
    assert desc["result"] == [n * n for n in range(12)]  # every item's result, in order
    assert len(apart) == 1, apart  # the last to finish, whichever index it had
