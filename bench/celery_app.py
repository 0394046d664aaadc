"""The Celery side of ``make bench-peers`` (imported only in bench/.peers-venv, never by NoETL).

Tasks doing what the NoETL playbooks' python steps do: ``step`` returns a small dict (the
sequential steps; in a chain it receives the previous result), ``item`` returns ``x + 1`` (a
map item) and ``total`` sums the items (the reduce, a chord's callback). Broker and result
backend: Redis at ``NOETL_BENCH_REDIS_URL``; everything else is Celery's default."""

from __future__ import annotations

import os
from typing import Any

from celery import Celery

REDIS_URL = os.environ.get("NOETL_BENCH_REDIS_URL", "redis://127.0.0.1:6379/12")
QUEUE = "noetl-bench"  # the bench's own queue, so nothing else on this Redis takes its tasks

app = Celery("noetl_bench", broker=REDIS_URL, backend=REDIS_URL)
app.conf.task_default_queue = QUEUE
app.conf.result_expires = 3600  # the bench's results leave Redis by themselves


@app.task
def step(prev: Any = None, *, i: int) -> dict[str, Any]:
    return {"i": i, "ok": True}


@app.task
def item(x: int) -> int:
    return x + 1


@app.task
def total(values: list[int]) -> dict[str, int]:
    return {"sum": sum(values), "count": len(values)}
