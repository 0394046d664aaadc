"""The playbook examples in the docs are real: every one validates, and the runnable ones reach
the status (and result) the docs claim.

Markers, on the line before a fenced ```yaml block that starts with ``apiVersion:``:

- ``<!-- runnable: STATUS -->`` or ``<!-- runnable: STATUS result=JSON -->``: run it with
  :class:`noetl.local.LocalRunner` on a fresh SQLite store and compare;
- ``<!-- register -->``: register it in the catalog before the file's runnable examples run
  (children of sub-playbook examples);
- ``<!-- invalid -->``: an example of a playbook that validation rejects.

Every other playbook block must validate.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from noetl.dsl import parse_playbook
from noetl.errors import PlaybookError
from noetl.local import LocalRunner

DOCS = Path(__file__).resolve().parents[2] / "docs"
DOC_FILES = ("playbook-reference.md", "semantics.md", "schedules.md")
MARKER = re.compile(r"<!--\s*(runnable|register|invalid)(?::\s*(\w+))?(?:\s+result=(.*?))?\s*-->")


@dataclass
class Example:
    doc: str
    line: int
    text: str
    marker: str | None  # runnable | register | invalid | None
    status: str | None = None
    result: Any = None
    has_result: bool = False
    expected_output: str | None = None  # invalid examples: the validator's message, if shown

    @property
    def id(self) -> str:
        return f"{self.doc}:{self.line}"


def extract(doc: str) -> list[Example]:
    lines = (DOCS / doc).read_text(encoding="utf-8").splitlines()
    out: list[Example] = []
    i = 0
    while i < len(lines):
        if lines[i].strip() != "```yaml":
            i += 1
            continue
        start = i + 1
        end = start
        while end < len(lines) and lines[end].strip() != "```":
            end += 1
        body = "\n".join(lines[start:end]) + "\n"
        if body.lstrip().startswith("apiVersion:"):
            prev = next((ln for ln in reversed(lines[:i]) if ln.strip()), "")
            m = MARKER.search(prev)
            ex = Example(doc, start + 1, body, m.group(1) if m else None)
            if m and m.group(1) == "runnable":
                ex.status = m.group(2)
                if m.group(3) is not None:
                    ex.result = json.loads(m.group(3))
                    ex.has_result = True
            if ex.marker == "invalid":
                ex.expected_output = _next_text_block(lines, end + 1)
            out.append(ex)
        i = end + 1
    return out


def _next_text_block(lines: list[str], i: int) -> str | None:
    while i < len(lines) and not lines[i].strip():
        i += 1
    if i >= len(lines) or lines[i].strip() != "```text":
        return None
    end = i + 1
    while end < len(lines) and lines[end].strip() != "```":
        end += 1
    return "\n".join(lines[i + 1:end])


ALL = [ex for d in DOC_FILES for ex in extract(d)]
RUNNABLE = [ex for ex in ALL if ex.marker == "runnable"]


def test_docs_have_runnable_examples() -> None:
    for doc in DOC_FILES:
        assert any(ex.doc == doc for ex in RUNNABLE), f"{doc} has no runnable example"
    assert all(ex.status in ("COMPLETED", "FAILED") for ex in RUNNABLE), \
        [ex.id for ex in RUNNABLE if ex.status not in ("COMPLETED", "FAILED")]


@pytest.mark.parametrize("ex", ALL, ids=lambda ex: ex.id)
def test_example_validates_as_documented(ex: Example) -> None:
    if ex.marker == "invalid":
        source = ex.id
        if ex.expected_output:
            source = ex.expected_output.split(": invalid playbook")[0]
        with pytest.raises(PlaybookError) as info:
            parse_playbook(ex.text, source)
        if ex.expected_output:
            assert str(info.value) == ex.expected_output
        return
    pb = parse_playbook(ex.text, ex.id)
    assert not pb.warnings, pb.warnings


@pytest.mark.parametrize("ex", RUNNABLE, ids=lambda ex: ex.id)
def test_runnable_example_reaches_documented_status(ex: Example, tmp_path: Path) -> None:
    with LocalRunner(f"sqlite:///{tmp_path / 'docs.db'}", concurrency=4) as runner:
        for child in (c for c in ALL if c.doc == ex.doc and c.marker == "register"):
            runner.engine.register(child.text, child.id)
        desc = runner.run(parse_playbook(ex.text, ex.id), timeout=60)
        with runner.store.read() as tx:
            events = tx.get_events(int(desc["execution_id"]), 0, 100000)
    terminal = [e.event_type for e in events
                if e.event_type in ("execution_completed", "execution_failed",
                                    "execution_cancelled")]
    detail = desc.get("error") or desc.get("result")
    assert desc["status"] == ex.status, f"{ex.id}: {desc['status']}: {detail}"
    assert terminal == [f"execution_{str(ex.status).lower()}"]
    if ex.status == "FAILED":
        assert desc["error"]["message"] and desc["error"]["type"]
    if ex.has_result:
        assert desc["result"] == ex.result, f"{ex.id}: result {desc['result']!r}"


def test_the_examples_descriptions_name_only_what_they_have() -> None:
    """An example's description names the parts it shows: a save, a loop, a condition only
    when the playbook has one."""
    import yaml

    for path in sorted((DOCS.parent / "examples").glob("*.yaml")):
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        words = str(doc["metadata"].get("description", "")).lower()
        steps = doc["workflow"]
        if "save" in words:
            assert any("save" in s or s.get("type") == "save" for s in steps), path.name
        if "loop" in words:
            assert any(s.get("type") == "iterator" or "loop" in s for s in steps), path.name
        if "conditional" in words:
            assert any(isinstance(e, dict) and "when" in e for s in steps
                       for e in s.get("next") or []), path.name
