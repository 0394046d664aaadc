"""Validation time against playbook size (issue 13: linear in steps; 8,000 steps ≤ 1 s,
40,000 steps ≤ 5 s). ``python -m bench.validate [N ...]`` prints one JSON line per size."""

from __future__ import annotations

import gc
import json
import sys
import time

from noetl.dsl import parse_playbook
from noetl.plan import compile_plan


def playbook_text(n: int) -> str:
    """A chain of ``n`` steps: python steps with args and a template, routers between."""
    lines = ["apiVersion: noetl.io/v1", "kind: Playbook", "metadata: {name: big}",
             "workload: {k: 1}", "workflow:"]
    for i in range(n):
        name = "start" if i == 0 else f"s{i}"
        nxt = f"s{i + 1}" if i + 1 < n else "end"
        if i % 2:
            lines += [f"  - step: {name}", "    type: python", f"    args: {{x: '{{{{ workload.k }}}} {i}'}}",
                      f"    code: 'def main(x): return [x, {i}]'", f"    next: [{{step: {nxt}}}]"]
        else:
            lines += [f"  - step: {name}", f"    next: [{nxt}]"]
    lines += ["  - step: end"]
    return "\n".join(lines) + "\n"


def measure(n: int) -> dict[str, float | int]:
    from noetl import templates

    text = playbook_text(n)
    templates.template_facts.cache_clear()  # as a fresh process would: nothing parsed yet
    gc.collect()
    t0, c0 = time.perf_counter(), time.process_time()
    pb = parse_playbook(text, "big.yaml")
    compile_plan(pb)
    return {"steps": n + 1, "seconds": round(time.perf_counter() - t0, 3),
            "cpu_seconds": round(time.process_time() - c0, 3)}


def main(argv: list[str]) -> None:
    for n in [int(a) for a in argv] or [8_000, 40_000]:
        sys.stdout.write(json.dumps(measure(n)) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
