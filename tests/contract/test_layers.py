"""The import contracts of pyproject.toml ([tool.importlinter]) hold: layers import downward
only, and no package has an import cycle between its modules (function-local and
TYPE_CHECKING imports count)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_import_contracts_hold() -> None:
    exe = Path(sys.executable).with_name("lint-imports")
    proc = subprocess.run([str(exe), "--no-cache", "--no-logo"], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 broken" in proc.stdout


def test_no_module_import_cycle() -> None:
    import grimp

    graph = grimp.build_graph("noetl")
    cycles = []
    for m in sorted(graph.modules):
        for imported in graph.find_modules_directly_imported_by(m):
            if graph.chain_exists(imported, m):
                cycles.append((m, imported))
    assert not cycles, f"import cycles through: {cycles[:10]}"
