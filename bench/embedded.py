"""Embedded scenarios (engine + in-process worker pool, ``LocalRunner``) on one store:
``seq40``, ``seq7``, ``scale`` and ``loop``. Times come from the engine's event timestamps."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench import playbooks
from bench.stats import Row, ratio_row
from noetl.dsl import parse_playbook
from noetl.dsl.model import Playbook
from noetl.local import LocalRunner

# targets from issue 6, per store label
SEQ40_MS = {"sqlite": 2.0, "postgres": 5.0}
SEQ7_MS = {"sqlite": 50.0, "postgres": 100.0}
LOOP1000_S = {"sqlite": 2.0, "postgres": 4.0}
LOOP_RATIO = 12.0  # 10x the items may take at most 12x the time
SCALE_RATIO = 1.5  # issue 2: "same per-step cost"; our tolerance for noise


@dataclass
class Reps:
    """How many measured runs each size gets (after one warm-up run where noted)."""

    seq40: int = 20
    seq7: int = 20
    scale: tuple[tuple[int, int], ...] = ((10, 30), (100, 10), (1000, 3))
    loop: tuple[tuple[int, int], ...] = ((100, 5), (1000, 3), (10000, 1))


FULL = Reps()
QUICK = Reps(seq40=5, seq7=5, scale=((10, 3), (100, 2), (1000, 1)),
             loop=((100, 2), (1000, 1)))
# PostgreSQL is slower per statement: fewer repetitions of the big sizes keep `make bench` short
FULL_PG = Reps(seq40=10, seq7=10, scale=((10, 15), (100, 5), (1000, 2)),
               loop=((100, 3), (1000, 2), (10000, 1)))


class Bench:
    """One ``LocalRunner`` on one store, reused across scenarios (warm process)."""

    def __init__(self, url: str, label: str, concurrency: int = 4, log: Callable[[str], None] = print):
        self.url = url
        self.label = label
        self.runner = LocalRunner(url, concurrency=concurrency)
        self.log = log
        self._plans: dict[str, Playbook] = {}

    def __enter__(self) -> Bench:
        self.runner.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.runner.close()

    def playbook(self, text: str) -> Playbook:
        if text not in self._plans:
            self._plans[text] = parse_playbook(text, "<bench>")
        return self._plans[text]

    def run(self, text: str, args: dict[str, Any] | None = None,
            timeout: float = 600) -> tuple[int, float]:
        """Run to completion; return (execution id, client wall-clock time of the request)."""
        pb = self.playbook(text)
        requested = time.time()
        ex = self.runner.engine.start(pb, args=args)
        desc = self.runner.wait(ex.execution_id, timeout=timeout, tick=0.05)
        if desc["status"] != "COMPLETED":
            raise RuntimeError(f"benchmark execution {ex.execution_id} ended {desc['status']}: "
                               f"{desc.get('error')}")
        return ex.execution_id, requested

    def stamp(self, eid: int, event_type: str, node: str | None = None) -> float:
        """``created_at`` of the first event of a type (and node) in an execution."""
        with self.runner.store.read() as tx:
            events = tx.get_events(eid, 0, 100000, event_type=event_type)
        for e in events:
            if node is None or e.node_name == node:
                return e.created_at
        raise LookupError(f"no {event_type} event for {node or 'execution'} in {eid}")

    def exec_span(self, eid: int) -> float:
        return self.stamp(eid, "execution_completed") - self.stamp(eid, "execution_started")

    # scenarios -------------------------------------------------------------

    def seq40(self, reps: int) -> list[Row]:
        text = playbooks.sequential(40, "seq40")
        self.run(text)  # warm-up
        row = Row("seq40", self.label, "per-step overhead", "ms", target=SEQ40_MS[self.label])
        for _ in range(reps):
            eid, _ = self.run(text)
            row.values.append(self.exec_span(eid) / 40 * 1000)
        self.log(f"  seq40 [{self.label}] median {row.median:.3f} ms/step")
        return [row]

    def seq7(self, reps: int) -> list[Row]:
        text = playbooks.SEQ7
        self.run(text)
        row = Row("seq7", self.label, "request → execution_completed", "ms",
                  target=SEQ7_MS[self.label])
        engine = Row("seq7", self.label, "execution_started → completed", "ms")
        for _ in range(reps):
            eid, requested = self.run(text)
            row.values.append((self.stamp(eid, "execution_completed") - requested) * 1000)
            engine.values.append(self.exec_span(eid) * 1000)
        self.log(f"  seq7 [{self.label}] median {row.median:.2f} ms")
        return [row, engine]

    def scale(self, sizes: tuple[tuple[int, int], ...]) -> list[Row]:
        """Runs of the sizes are interleaved (10, 100, 1000, 10, 100, 10, ...) so that load
        from elsewhere on the machine falls on all sizes alike and the ratio stays fair."""
        rows: dict[int, Row] = {}
        texts = {n: playbooks.sequential(n, f"seq{n}") for n, _ in sizes}
        for n, _ in sizes:
            rows[n] = Row("scale", self.label, f"per-step, {n} steps", "ms")
            if n <= 100:
                self.run(texts[n])
        left = dict(sizes)
        while any(left.values()):
            for n in texts:
                if left[n]:
                    left[n] -= 1
                    eid, _ = self.run(texts[n])
                    rows[n].values.append(self.exec_span(eid) / n * 1000)
        for n, row in rows.items():
            self.log(f"  scale {n} [{self.label}] median {row.median:.3f} ms/step")
        out = list(rows.values())
        if 1000 in rows and 10 in rows:
            out.append(ratio_row("scale", self.label, "per-step ratio 1000/10", rows[1000], rows[10],
                                 SCALE_RATIO, "issue 2: same per-step cost"))
        return out

    def loop(self, sizes: tuple[tuple[int, int], ...]) -> list[Row]:
        text = playbooks.loop()
        self.run(text, {"n": 10})
        totals: dict[int, Row] = {}
        out: list[Row] = []
        for n, reps in sizes:
            total = Row("loop", self.label, f"loop step total, {n} items", "s",
                        target=LOOP1000_S[self.label] if n == 1000 else None)
            per_item = Row("loop", self.label, f"per item, {n} items", "ms")
            for _ in range(reps):
                eid, _ = self.run(text, {"n": n}, timeout=1800)
                span = (self.stamp(eid, "step_completed", "each")
                        - self.stamp(eid, "step_started", "each"))
                total.values.append(span)
                per_item.values.append(span / n * 1000)
            totals[n] = total
            out += [total, per_item]
            self.log(f"  loop {n} [{self.label}] median {total.median:.2f} s")
        if 10000 in totals and 1000 in totals:
            out.append(ratio_row("loop", self.label, "time ratio 10,000/1,000 items", totals[10000],
                                 totals[1000], LOOP_RATIO, "≤12 ⇒ near-linear"))
        return out
