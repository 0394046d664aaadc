"""Run-time errors in the user's terms (issue 12, item 7).

A template that only fails at run time (``noetl validate`` passes it) and a python step that
raises: ``noetl run`` (a real subprocess) prints a few lines naming the step, the field, the
template and the message, or the YAML file's line that raised; never the engine's frames, which
stay in the stored traceback (``noetl status ID --json``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from noetl.dsl import load_playbook
from noetl.local import LocalRunner
from tests.httpstub import StubHandler, serving

ENGINE_FRAMES = ("runner.py", "templates.py", "jinja2", "sandbox.py", "session.py")

# `start.items` is a number: `join` fails only when it runs (validation cannot know the type)
TEMPLATE_AT_RUN_TIME = """\
apiVersion: noetl.io/v1
kind: Playbook
metadata: {name: runtime_template, path: tests/runtime_template}
workflow:
  - step: start
    type: python
    code: |
      def main():
          return {"items": 5}
    next: [use]
  - step: use
    type: python
    args:
      total: "{{ start.items | join(',') }}"
    code: |
      def main(total):
          return total
    next: [end]
  - step: end
"""

EDGE_TEMPLATE_AT_RUN_TIME = """\
apiVersion: noetl.io/v1
kind: Playbook
metadata: {name: runtime_edge, path: tests/runtime_edge}
workflow:
  - step: start
    type: python
    code: |
      def main():
          return {"items": 5}
    next:
      - when: "{{ start.items | length > 1 }}"
        then: [end]
  - step: end
"""

PYTHON_RAISES = """\
apiVersion: noetl.io/v1
kind: Playbook
metadata: {name: python_raises, path: tests/python_raises}
workload: {divisor: 0}
workflow:
  - step: start
    type: python
    args: {d: "{{ workload.divisor }}"}
    code: |
      def ratio(n, d):
          return n / d

      def main(d):
          return ratio(42, d)
    next: [end]
  - step: end
"""


@pytest.fixture
def cli(tmp_path: Path):
    env = {**os.environ, "NOETL_HOME": str(tmp_path / "home")}
    for k in ("NOETL_STORE_URL", "NOETL_SERVER_URL"):
        env.pop(k, None)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "noetl", *args], capture_output=True,
                              text=True, env=env, cwd=tmp_path, timeout=120)

    return run


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _line_of(text: str, needle: str) -> int:
    lines = [i for i, line in enumerate(text.splitlines(), 1) if needle in line]
    assert len(lines) == 1, needle
    return lines[0]


def _stored_error(cli, out: str) -> dict:
    eid = next(w for line in out.splitlines() if line.startswith("execution ")
               for w in line.split()[1:2])
    status = cli("status", eid, "--json")
    assert status.returncode == 0, status.stderr
    return json.loads(status.stdout)["error"]


def test_template_error_prints_few_lines_naming_step_field_template(cli, tmp_path: Path) -> None:
    f = _write(tmp_path, "flow.yaml", TEMPLATE_AT_RUN_TIME)
    assert cli("validate", str(f)).returncode == 0  # only the run can see it
    p = cli("run", str(f))
    assert p.returncode == 1, p.stdout + p.stderr
    report = p.stderr.strip().splitlines()
    assert 1 <= len(report) <= 10, p.stderr
    assert report[0] == ("error in step use, field args.total: TemplateError: "
                         "TypeError: 'int' object is not iterable")
    assert report[1] == "  template: {{ start.items | join(',') }}"
    everything = p.stdout + p.stderr
    assert "Traceback" not in everything
    assert not [frame for frame in ENGINE_FRAMES if frame in everything], everything
    # the step table (stdout) names the failed step with the reason only
    row = next(line for line in p.stdout.splitlines() if line.startswith("│ use "))
    assert "FAILED" in row and "TemplateError: TypeError: 'int' object" in row
    # the engine's frames are kept in the stored record, behind the user's summary
    err = _stored_error(cli, p.stdout)
    assert (err["step"], err["field"], err["template"]) == (
        "use", "args.total", "{{ start.items | join(',') }}")
    assert err["reason"] == "TypeError: 'int' object is not iterable"
    assert "templates.py" in err["traceback"] and "runner.py" in err["traceback"]
    assert "noetl status" in report[-1] and "--json" in report[-1]


def test_edge_template_error_names_the_edge(cli, tmp_path: Path) -> None:
    f = _write(tmp_path, "edge.yaml", EDGE_TEMPLATE_AT_RUN_TIME)
    assert cli("validate", str(f)).returncode == 0
    p = cli("run", str(f))
    assert p.returncode == 1
    report = p.stderr.strip().splitlines()
    assert len(report) <= 10, p.stderr
    assert report[0].startswith("error in step start, field next 'end' → when: TemplateError: ")
    assert "has no len()" in report[0]
    assert report[1] == "  template: {{ start.items | length > 1 }}"
    assert "Traceback" not in p.stdout + p.stderr


@pytest.mark.parametrize("isolated", [False, True], ids=["in-thread", "child-process"])
def test_python_error_names_the_yaml_file_and_line(cli, tmp_path: Path, isolated: bool) -> None:
    text = PYTHON_RAISES.replace("    next: [end]", "    timeout: 60\n    next: [end]") \
        if isolated else PYTHON_RAISES
    f = _write(tmp_path, "ratio.yaml", text)
    raised, called = _line_of(text, "return n / d"), _line_of(text, "return ratio(42, d)")
    p = cli("run", str(f))
    assert p.returncode == 1
    report = p.stderr.strip().splitlines()
    assert report[0] == (f"error in step start ({f}, line {raised}): ZeroDivisionError: "
                         "division by zero")
    assert f'  File "{f}", line {called}, in main' in report
    assert f'  File "{f}", line {raised}, in ratio' in report
    assert "    return n / d" in report  # the line as written in the YAML file
    assert "<step code" not in p.stderr
    assert not [frame for frame in ENGINE_FRAMES if frame in p.stdout + p.stderr]
    err = _stored_error(cli, p.stdout)
    assert err["at"] == f"{f}, line {raised}"
    assert "python.py" in err["traceback"]  # the whole traceback keeps the engine's frames


def _run_file(path: Path, store: str) -> dict:
    with LocalRunner(store, concurrency=2) as runner:
        return runner.run(load_playbook(path), timeout=60)


def test_workbook_and_loop_task_code_are_mapped_too(tmp_path: Path, sqlite_url: str) -> None:
    text = textwrap.dedent("""\
        apiVersion: noetl.io/v1
        kind: Playbook
        metadata: {name: mapped}
        workbook:
          - name: checker
            type: python
            code: |
              def main(x):
                  assert x < 2, f"item {x} is too big"
                  return x
        workflow:
          - step: start
            next: [loop]
          - step: loop
            type: iterator
            collection: [1, 2]
            element: x
            task:
              type: workbook
              name: checker
              args: {x: "{{ x }}"}
            next: [wb]
          - step: wb
            type: workbook
            name: checker
            args: {x: 5}
        """)
    f = _write(tmp_path, "mapped.yaml", text)
    desc = _run_file(f, sqlite_url)
    assert desc["status"] == "FAILED"
    err = desc["steps"]["loop"]["error"]
    line = _line_of(text, "assert x < 2")
    assert err["at"] == f"{f}, line {line}", err
    assert f'File "{f}", line {line}, in main' in err["user_traceback"]


def test_syntax_error_at_run_time_names_the_yaml_line(tmp_path: Path, sqlite_url: str,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Validation refuses this (tests/dsl/broken/005); with the deep checks off, the run-time
    error still names the YAML line."""
    monkeypatch.setattr("noetl.dsl.deep.check_deep", lambda *a, **k: None)
    text = textwrap.dedent("""\
        apiVersion: noetl.io/v1
        kind: Playbook
        metadata: {name: syntax}
        workflow:
          - step: start
            type: python
            code: |
              def main():
                  x = 1
                  return x +
        """)
    f = _write(tmp_path, "syntax.yaml", text)
    err = _run_file(f, sqlite_url)["error"]
    line = _line_of(text, "return x +")
    assert err["type"] == "SyntaxError"
    assert f"({f}, line {line})" in err["message"]
    assert err["at"] == f"{f}, line {line}"


def test_rerun_and_resume_name_the_same_yaml_line(cli, tmp_path: Path) -> None:
    """`noetl rerun` and `noetl resume` (each a process of its own, compiling the plan from
    the stored snapshot) report the python step's error at the file's line as `noetl run` did."""
    f = _write(tmp_path, "ratio.yaml", PYTHON_RAISES)
    raised = _line_of(PYTHON_RAISES, "return n / d")
    p = cli("run", str(f), "--json", "-q")
    assert p.returncode == 1, p.stderr
    first = json.loads(p.stdout)
    assert first["error"]["at"] == f"{f}, line {raised}"
    for verb in ("rerun", "resume"):
        p = cli(verb, first["execution_id"], "--json", "-q")
        assert p.returncode == 1, p.stderr
        err = json.loads(p.stdout)["error"]
        assert err["at"] == f"{f}, line {raised}", (verb, err)
        assert f'File "{f}", line {raised}, in ratio' in err["user_traceback"]
        assert "<step code" not in err["user_traceback"]
    p = cli("rerun", first["execution_id"])  # the summary a person reads
    assert p.returncode == 1
    assert (f"error in step start ({f}, line {raised}): ZeroDivisionError: division by zero"
            in p.stderr.splitlines()), p.stderr



class Trickle(StubHandler):
    """Promises 1,000 bytes and sends one every 0.2 s: every read arrives within the http
    tool's per-read timeout, so only the step's timeout ends the step."""

    def route(self, parts: Any, query: dict[str, str], body: Any) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "1000")
        self.end_headers()
        for _ in range(1000):
            self.wfile.write(b"x")
            self.wfile.flush()
            time.sleep(0.2)  # the stub's pace, not the test's synchronisation


def test_run_exits_after_a_step_timeout_without_waiting_for_the_tool(tmp_path: Path) -> None:
    """A call the worker cannot stop (an http response trickling in, 200 s long) fails the
    step with TimeoutError after its ``timeout``; ``noetl run`` exits then, not when the call
    returns (the subprocess is given 60 s)."""
    with serving(Trickle) as url:
        f = _write(tmp_path, "slow.yaml", f"""\
apiVersion: noetl.io/v1
kind: Playbook
metadata: {{name: slow_http, path: tests/slow_http}}
workflow:
  - step: start
    type: http
    timeout: 1
    endpoint: "{url}/slow"
    next: [end]
  - step: end
""")
        p = subprocess.run([sys.executable, "-m", "noetl", "run", str(f)], capture_output=True,
                           text=True, env={**os.environ, "NOETL_HOME": str(tmp_path / "home")},
                           cwd=tmp_path, timeout=60)
    assert p.returncode == 1, p.stdout + p.stderr
    assert "TimeoutError: step 'start' timed out after 1 s" in p.stderr, p.stderr
