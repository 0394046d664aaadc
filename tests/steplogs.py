"""A playbook whose steps print, write to stderr and log: shared by the CLI, API and UI tests
of step logs. ``hold`` waits for the file ``workload.gate`` (so a test can look while it runs);
``last`` fails when ``workload.fail`` is true (so a test can resume it)."""

from __future__ import annotations

import textwrap

WRITES_PATH = "tests/steplogs/writes"
WRITES = textwrap.dedent("""
    apiVersion: noetl.io/v1
    kind: Playbook
    metadata: {name: writes_three, path: tests/steplogs/writes}
    workload: {gate: /nonexistent, fail: false}
    workflow:
      - step: start
        type: python
        code: |
          import logging, sys
          def main():
              print("PRINTED-BY-STEP")
              sys.stderr.write("STDERR-OF-STEP\\n")
              logging.getLogger("etl.load").info("LOGGED-BY-STEP %d", 42)
              return 1
        next: [{step: hold}]
      - step: hold
        type: python
        args: {gate: "{{ workload.gate }}"}
        code: |
          import os, time
          def main(gate):
              print("BEFORE-GATE")
              deadline = time.time() + 90
              while not os.path.exists(gate):
                  if time.time() > deadline:
                      raise TimeoutError("gate never opened")
                  time.sleep(0.02)
              print("AFTER-GATE")
              return 2
        next: [{step: each}]
      - step: each
        type: iterator
        collection: [1, 2]
        element: x
        task:
          type: python
          args: {x: "{{ x }}"}
          code: |
            def main(x):
                print(f"ITEM-{x}")
                return x
        next: [{step: last}]
      - step: last
        type: python
        args: {fail: "{{ workload.fail }}"}
        code: |
          def main(fail):
              print("LAST-RUNS")
              if fail:
                  raise RuntimeError("last fails")
              return "ok"
    """)

# What `noetl logs` prints for a whole run, without the time column.
WRITES_LINES = ["start out PRINTED-BY-STEP", "start err STDERR-OF-STEP",
                "start INFO etl.load: LOGGED-BY-STEP 42", "hold out BEFORE-GATE",
                "hold out AFTER-GATE", "each[0] out ITEM-1", "each[1] out ITEM-2",
                "last out LAST-RUNS"]
