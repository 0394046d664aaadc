"""``noetl validate``: check one or more playbooks (files or folders) and report every problem
with its line, as text or as JSON (for CI and editors). Exit 2 when any file has an error."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from noetl.errors import PlaybookError, Problem


def expand(paths: list[Path]) -> list[Path]:
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            out.extend(sorted(q for q in p.rglob("*") if q.suffix in (".yaml", ".yml")
                              and q.is_file()))
        else:
            out.append(p)
    return out


def _problem(p: Problem, severity: str | None = None) -> dict[str, Any]:
    return {"severity": severity or p.severity, "where": p.where, "line": p.line,
            "message": p.message}


def check_file(path: Path) -> dict[str, Any]:
    """One file's outcome: ``{"file", "valid", "steps", "problems": [...]}``. Never raises."""
    from noetl.dsl import load_playbook

    out: dict[str, Any] = {"file": str(path), "valid": False, "problems": []}
    try:
        pb = load_playbook(path)
        from noetl.plan import compile_plan

        plan = compile_plan(pb)
    except PlaybookError as exc:
        out["problems"] = [_problem(p) for p in exc.problems]  # errors, then warnings
        return out
    except RecursionError:
        out["problems"] = [_problem(Problem("document", "nested too deeply to validate"))]
        return out
    except Exception as exc:
        out["problems"] = [_problem(Problem("document", f"cannot be validated: "
                                            f"{type(exc).__name__}: {str(exc)[:300]}"))]
        return out
    out.update(valid=True, path=pb.path, steps=len(plan.steps),
               problems=[_problem(p, "warning") for p in pb.warning_problems])
    return out


def _at(line: int | None) -> str:
    return f" (line {line})" if line else ""


def run(files: list[Path], as_json: bool) -> int:
    results = [check_file(f) for f in expand(files)]
    if not results:
        sys.stderr.write("no playbook files found\n")
        return 2
    if as_json:
        sys.stdout.write(json.dumps({"valid": all(r["valid"] for r in results),
                                     "files": results}, indent=2) + "\n")
    else:
        for r in results:
            lines = [f"{p['where']}{_at(p['line'])}: {p['message']}" for p in r["problems"]]
            if r["valid"]:
                for w in lines:
                    sys.stderr.write(f"warning: {r['file']}: {w}\n")
                n = r["steps"]
                sys.stdout.write(f"{r['file']}: valid playbook '{r['path']}' "
                                 f"({n} step{'' if n == 1 else 's'})\n")
            else:
                marks = ["warning: " if p["severity"] == "warning" else "" for p in r["problems"]]
                sys.stderr.write(f"{r['file']}: invalid playbook\n"
                                 + "".join(f"  - {m}{w}\n" for m, w in zip(marks, lines, strict=True)))
    return 0 if all(r["valid"] for r in results) else 2
