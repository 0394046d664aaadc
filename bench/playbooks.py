"""Playbook generators. Each returns YAML text; :func:`write` puts it in a directory."""

from __future__ import annotations

from pathlib import Path

HEAD = """apiVersion: noetl.io/v1
kind: Playbook
metadata:
  name: {name}
  path: bench/{name}
"""


def sequential(n: int, name: str | None = None) -> str:
    """``start`` → ``s0`` … ``s{n-1}`` (python steps each returning a small dict) → ``end``."""
    name = name or f"seq{n}"
    lines = [HEAD.format(name=name), "workflow:", "  - step: start", "    next: [{step: s0}]"]
    for i in range(n):
        nxt = f"s{i + 1}" if i < n - 1 else "end"
        lines += [
            f"  - step: s{i}",
            "    type: python",
            "    code: |",
            "      def main():",
            f"          return {{'i': {i}, 'ok': True}}",
            f"    next: [{{step: {nxt}}}]",
        ]
    lines += ["  - step: end", "    type: end", ""]
    return "\n".join(lines)


# The seven-step shape: a start router with an edge argument, five python steps (four on the
# path taken: templated args from earlier results, one ``when``/``else`` branch with the other
# branch not taken) and an end.
SEQ7 = HEAD.format(name="seq7") + """workload:
  user: ada
  amount: 42
workflow:
  - step: start
    next:
      - step: fetch
        args: {user: "{{ workload.user }}"}
  - step: fetch
    type: python
    code: |
      def main(user):
          return {"user": user, "orders": [1, 2, 3]}
    next: [{step: enrich}]
  - step: enrich
    type: python
    args: {orders: "{{ fetch.orders }}", amount: "{{ workload.amount }}"}
    code: |
      def main(orders, amount):
          return {"total": sum(orders) * amount, "count": len(orders)}
    next:
      - when: "{{ result.total > 100 }}"
        step: big
      - else:
          - step: small
  - step: big
    type: python
    args: {total: "{{ enrich.total }}"}
    code: |
      def main(total):
          return {"tier": "big", "total": total}
    next: [{step: report}]
  - step: small
    type: python
    code: |
      def main():
          return {"tier": "small"}
    next: [{step: report}]
  - step: report
    type: python
    args: {tier: "{{ big.tier }}", user: "{{ fetch.user }}"}
    code: |
      def main(tier, user):
          return {"line": f"{user}: {tier}"}
    next: [{step: end}]
  - step: end
    type: end
"""


def loop(name: str = "loop", concurrency: int = 16, mode: str = "async") -> str:
    """``make`` builds ``range(workload.n)``; ``each`` runs a tiny python task per item."""
    return HEAD.format(name=name) + f"""workload: {{n: 100}}
workflow:
  - step: start
    next: [{{step: make}}]
  - step: make
    type: python
    args: {{n: "{{{{ workload.n }}}}"}}
    code: |
      def main(n):
          return list(range(n))
    next: [{{step: each}}]
  - step: each
    type: iterator
    collection: "{{{{ make }}}}"
    element: x
    mode: {mode}
    concurrency: {concurrency}
    task:
      type: python
      code: |
        def main(x):
            return x + 1
    next: [{{step: end}}]
  - step: end
    type: end
"""


def crash_once(marker: Path, name: str = "crash_once") -> str:
    """One step that, on its first attempt, writes its process id to ``marker`` and sleeps
    (the harness kills that worker); on any later attempt it returns at once."""
    return HEAD.format(name=name) + f"""workflow:
  - step: start
    next: [{{step: work}}]
  - step: work
    type: python
    code: |
      def main():
          import os, time
          path = {str(marker)!r}
          if os.path.exists(path):
              return {{"pid": os.getpid(), "recovered": True}}
          with open(path + ".tmp", "w") as f:
              f.write(str(os.getpid()))
          os.replace(path + ".tmp", path)
          time.sleep(120)
          return {{"pid": os.getpid(), "recovered": False}}
    next: [{{step: end}}]
  - step: end
    type: end
"""


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / f"{name}.yaml"
    path.write_text(text, encoding="utf-8")
    return path
