"""The broken-playbook corpus (tests/dsl/broken): one mistake per file. Each file's first line
is ``# expect: MESSAGE``; the line with the mistake ends with ``# <-- here``. ``# structural``
marks mistakes the JSON Schema must reject too. ``noetl validate`` must report every one with
exit 2, the message, that line, and no traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from noetl.cli.validate import check_file

BROKEN = Path(__file__).parent / "broken"
FILES = sorted(BROKEN.glob("*.yaml"))


def expectation(path: Path) -> tuple[str, int, bool]:
    raw = path.read_bytes().decode("utf-8", errors="replace").splitlines()
    assert raw[0].startswith("# expect: ")
    marked = [i for i, line in enumerate(raw, 1) if line.rstrip().endswith("# <-- here")]
    assert len(marked) == 1, f"{path.name}: mark the line with the mistake"
    return raw[0].removeprefix("# expect: "), marked[0], "# structural" in raw[:3]


def test_corpus_is_large_enough() -> None:
    assert len(FILES) >= 60


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_each_mistake_is_named_with_its_line(path: Path) -> None:
    message, line, _ = expectation(path)
    out = check_file(path)
    assert not out["valid"]
    found = [(p["line"], p["message"]) for p in out["problems"]]
    assert any(message in f"{p['where']} (line {p['line']}): {p['message']}" and p["line"] == line
               for p in out["problems"]), f"expected line {line}: {message!r}; got {found}"
    assert not any("cannot be validated" in m for _, m in found)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NOETL_HOME": os.environ.get("TMPDIR", "/tmp")}
    return subprocess.run([sys.executable, "-m", "noetl", "validate", *args], capture_output=True,
                          text=True, timeout=120, env=env)


def test_cli_reports_every_file_with_exit_2_and_no_traceback() -> None:
    proc = _cli(str(BROKEN))
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr + proc.stdout
    for path in FILES:
        _, line, _ = expectation(path)
        assert f"{path}: invalid playbook" in proc.stderr
        assert f"(line {line}): " in proc.stderr
    one = _cli(str(FILES[0]))
    assert one.returncode == 2
    assert "unknown edge key 'wehn' (did you mean 'when'?)" in one.stderr


def test_cli_json_lists_problems_per_file() -> None:
    proc = _cli("--json", str(FILES[0]), str(FILES[1]))
    assert proc.returncode == 2
    doc = json.loads(proc.stdout)
    assert doc["valid"] is False
    assert [f["file"] for f in doc["files"]] == [str(FILES[0]), str(FILES[1])]
    first = doc["files"][0]["problems"][0]
    assert first["severity"] == "error"
    assert first["line"] == expectation(FILES[0])[1]
    assert "wehn" in first["message"]
