"""Fuzz: hundreds of malformed playbooks (hypothesis, derandomized and bounded) through the
validator in-process, ``noetl validate``, ``noetl run`` and ``POST /api/catalog/register``: no
traceback, no hang (each case ≤ 5 s), every one refused with exit 2 or a 4xx naming the problem.

Each generated case carries one mistake of a kind the validator must catch, with random content
(random keys, values, depths, widths, unicode), so every case must be refused."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from noetl.dsl import load_playbook
from noetl.dsl.checks import EDGE_KEYS, HTTP_METHODS, SAVE_KEYS, SAVE_MODES
from noetl.errors import PlaybookError
from tests.api.conftest import start_server

N_CASES = 320
LIMIT_S = 5.0


def _base(step: dict[str, Any] | None = None, **top: Any) -> dict[str, Any]:
    start = {"step": "start", "type": "python", "code": "def main():\n    return 1\n",
             "next": [{"step": "end"}]}
    start.update(step or {})
    doc = {"apiVersion": "noetl.io/v1", "kind": "Playbook", "metadata": {"name": "fuzz"},
           "workload": {"k": 1}, "workflow": [start, {"step": "end"}]}
    doc.update(top)
    return doc


def _dump(doc: dict[str, Any]) -> bytes:
    return yaml.safe_dump(doc, allow_unicode=True, sort_keys=False).encode("utf-8")


ident = st.from_regex(r"[a-z_][a-z0-9_]{0,12}", fullmatch=True)
junk = st.one_of(st.text(max_size=30), st.lists(st.integers(), max_size=3),
                 st.dictionaries(ident, st.integers(), max_size=2), st.booleans())
bad_number = st.one_of(st.sampled_from([float("nan"), float("inf"), -float("inf"), 1e300, -1,
                                        10**29, 0.0 - 5]), st.text(min_size=1, max_size=10)
                       .filter(lambda t: "{{" not in t), st.lists(st.integers(), max_size=2))


def _edge_key(draw: Any) -> bytes:
    key = draw(ident.filter(lambda k: k not in EDGE_KEYS))
    return _dump(_base({"next": [{"step": "end", key: draw(junk)}]}))


def _retry(draw: Any) -> bytes:
    field = draw(st.sampled_from(["initial_delay", "max_delay", "backoff_multiplier",
                                  "max_attempts"]))
    return _dump(_base({"retry": {field: draw(bad_number)}}))


def _iter_number(draw: Any) -> bytes:
    field = draw(st.sampled_from(["concurrency", "limit", "chunk"]))
    return _dump(_base({"type": "iterator", "collection": [1, 2], "element": "n",
                        "task": {"type": "python", "code": "def main(n): return n"},
                        "code": None, field: draw(bad_number)}))


def _method(draw: Any) -> bytes:
    m = draw(st.text(min_size=1, max_size=8).filter(
        lambda t: t.upper() not in HTTP_METHODS and "{{" not in t))
    return _dump(_base({"type": "http", "url": "http://127.0.0.1:9/", "code": None,
                        "method": m}))


def _save_mode(draw: Any) -> bytes:
    m = draw(st.text(min_size=1, max_size=8).filter(
        lambda t: t.lower() not in SAVE_MODES and "{{" not in t))
    return _dump(_base({"save": {"storage": "event", "mode": m}}))


def _python(draw: Any) -> bytes:
    body = draw(st.text(alphabet="abc()=: \n+", max_size=40))
    return _dump(_base({"code": f"def main(:\n    {body}\n"}))


def _template(draw: Any) -> bytes:
    inner = draw(st.text(alphabet="abcxyz.|+*() 0123456789", max_size=30))
    depth = draw(st.integers(0, 3000))
    return _dump(_base({"args": {"v": "{{ " + "(" * depth + inner + " }"}}))


def _not_utf8(draw: Any) -> bytes:
    raw = _dump(_base())
    at = draw(st.integers(0, len(raw)))
    return raw[:at] + draw(st.sampled_from([b"\xff", b"\xc3\x28", b"\xed\xa0\x80"])) + raw[at:]


def _deep(draw: Any) -> bytes:
    depth = draw(st.integers(201, 5000))
    opener, closer = draw(st.sampled_from([("[", "]"), ("{a: ", "}")]))
    return _dump(_base()) + f"extra: {opener * depth}1{closer * depth}\n".encode()


def _alias_bomb(draw: Any) -> bytes:
    width = draw(st.integers(8, 30))
    lines = ["a0: &a0 [" + ", ".join(["x"] * width) + "]"]
    for i in range(1, 12):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]")
    return _dump(_base()) + ("\n".join(lines) + "\n").encode()


def _name_type(draw: Any) -> bytes:
    return _dump(_base(metadata={"name": draw(st.one_of(
        st.lists(st.integers(), min_size=1, max_size=3),
        st.dictionaries(ident, st.integers(), min_size=1, max_size=2)))}))


def _next_target(draw: Any) -> bytes:
    name = draw(ident.filter(lambda n: n not in ("start", "end")))
    return _dump(_base({"next": [{"step": name}]}))


def _timeout(draw: Any) -> bytes:
    return _dump(_base({"timeout": draw(bad_number)}))


def _step_type(draw: Any) -> bytes:
    from noetl.dsl.model import STEP_TYPES

    t = draw(ident.filter(lambda n: n not in STEP_TYPES))
    return _dump(_base({"type": t}))


def _task_key(draw: Any) -> bytes:
    from noetl.dsl.model import COMMON_STEP_KEYS, TOOL_KEYS

    key = draw(ident.filter(lambda k: k not in COMMON_STEP_KEYS | TOOL_KEYS["python"]))
    return _dump(_base({"type": "iterator", "collection": [1], "element": "n",
                        "code": None, "task": {"type": "python",
                                               "code": "def main(n): return n",
                                               key: 1}}))


def _save_key(draw: Any) -> bytes:
    key = draw(ident.filter(lambda k: k not in SAVE_KEYS))
    return _dump(_base({"save": {"storage": "event", key: 1}}))


CASES: dict[str, Callable[[Any], bytes]] = {
    "edge_key": _edge_key,
    "retry": _retry,
    "iter_number": _iter_number,
    "method": _method,
    "save_mode": _save_mode,
    "python": _python,
    "template": _template,
    "not_utf8": _not_utf8,
    "deep": _deep,
    "alias_bomb": _alias_bomb,
    "name_type": _name_type,
    "next_target": _next_target,
    "timeout": _timeout,
    "step_type": _step_type,
    "task_key": _task_key,
    "save_key": _save_key,
}


@st.composite
def case(draw: Any) -> tuple[str, bytes]:
    kind = draw(st.sampled_from(list(CASES)))
    return kind, CASES[kind](draw)


def test_malformed_playbooks_are_refused_everywhere(tmp_path: Path) -> None:
    cases: list[tuple[str, bytes]] = []

    @settings(max_examples=N_CASES, derandomize=True, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(case())
    def collect(c: tuple[str, bytes]) -> None:
        cases.append(c)

    collect()
    assert len(cases) >= 300
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    files = []
    for i, (kind, data) in enumerate(cases):
        f = corpus / f"{i:04d}_{kind}.yaml"
        f.write_bytes(data)
        files.append(f)

    # In-process: every case is a PlaybookError (never another exception), each within 5 s.
    slowest = 0.0
    for f in files:
        t0 = time.monotonic()
        try:
            load_playbook(f)
        except PlaybookError as exc:
            assert exc.problems and all(p.message for p in exc.problems)
        else:
            raise AssertionError(f"{f.name} validated:\n{f.read_bytes()[:2000]!r}")
        slowest = max(slowest, time.monotonic() - t0)
    assert slowest <= LIMIT_S

    # `noetl validate --json` over the folder: one process, exit 2, every file refused.
    env = {**os.environ, "NOETL_HOME": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-m", "noetl", "validate", "--json", str(corpus)],
                          capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    doc = json.loads(proc.stdout)
    assert len(doc["files"]) == len(files)
    assert all(not r["valid"] and r["problems"] for r in doc["files"])
    assert not any("cannot be validated" in p["message"] for r in doc["files"]
                   for p in r["problems"])

    # `noetl run` (the real CLI code, in-process): exit 2 before anything runs.
    runner = CliRunner()
    from noetl.cli.main import app

    store = f"sqlite:///{tmp_path / 'run.db'}"
    for f in files:
        t0 = time.monotonic()
        res = runner.invoke(app, ["run", str(f), "--store", store], env={"NOETL_HOME": str(tmp_path)})
        assert res.exit_code == 2, (f.name, res.output[-1000:], res.exception)
        assert time.monotonic() - t0 <= LIMIT_S
        assert "Traceback" not in res.output

    # POST /api/catalog/register on a real server: 4xx naming the problem, never 5xx.
    server = start_server(f"sqlite:///{tmp_path / 'api.db'}")
    try:
        with server.client() as http:
            for f in files:
                data = f.read_bytes()
                body = {"content_base64": base64.b64encode(data).decode()}
                t0 = time.monotonic()
                r = http.post("/api/catalog/register", json=body)
                assert time.monotonic() - t0 <= LIMIT_S
                assert 400 <= r.status_code < 500, (f.name, r.status_code, r.text[:500])
                assert r.json().get("problems") or "UTF-8" in r.text, (f.name, r.text[:500])
            assert http.get("/health").status_code == 200
    finally:
        server.stop()
