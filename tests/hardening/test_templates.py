"""Bounded templates (issue 13, item 1): huge powers, repetitions and sizes are refused at once,
compiling never folds them, a render has a time limit, and the server keeps answering while a
hostile template is being rendered."""

from __future__ import annotations

import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from noetl.errors import TemplateError
from noetl.templates import names_in, render_str

HOSTILE = [
    "{{ (10 ** (10 ** 7 + 3)) > 1 }}",
    "{{ 10 ** (10 ** 9) }}",
    "{{ 'x' * 10 ** 9 }}",
    "{{ [0] * 10 ** 9 }}",
    "{{ 'x'.center(10 ** 9) }}",
    "{{ 'x' | center(10 ** 9) }}",
    "{{ '%*s' % (10 ** 9, 'x') }}",
    "{{ '%*s' | format(10 ** 9, 'x') }}",
    "{% set ns = namespace(x=2) %}{% for i in range(64) %}{% set ns.x = ns.x * ns.x %}"
    "{% endfor %}{{ ns.x }}",
    "{% set ns = namespace(s='ab') %}{% for i in range(64) %}{% set ns.s = ns.s + ns.s %}"
    "{% endfor %}{{ ns.s | length }}",
    "{% set l = [1] %}{% for i in range(64) %}{{ l.extend(l) }}{% endfor %}",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_template_refused_quickly(text: str) -> None:
    t0 = time.monotonic()
    names_in(text)  # compiles: nothing is folded
    with pytest.raises(TemplateError, match="template refused"):
        render_str(text, {}, "probe")
    assert time.monotonic() - t0 < 2


def test_ordinary_arithmetic_still_works() -> None:
    assert render_str("{{ 2 ** 62 + 1 }}", {}) == 2 ** 62 + 1
    assert render_str("{{ 'ab' * 3 ~ ('c' + 'd') }}", {}) == "abababcd"
    assert render_str("{{ 7 // 2 }} {{ 7 % 3 }} {{ '%05d' % 42 }}", {}) == "3 1 00042"
    assert render_str("{{ [1, 2] * 2 }}", {}) == [1, 2, 1, 2]


def test_render_time_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    from noetl import sandbox

    monkeypatch.setattr(sandbox, "RENDER_SECONDS", 0.5)
    t0 = time.monotonic()
    with pytest.raises(TemplateError, match="time limit"):
        render_str("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}"
                   "{% endfor %}", {}, "probe")
    assert time.monotonic() - t0 < 10
    assert render_str("{{ 1 + 1 }}", {}) == 2  # the thread renders normally afterwards


def test_validate_does_not_fold(tmp_path: Path) -> None:
    pb = tmp_path / "p.yaml"
    pb.write_text("apiVersion: noetl.io/v1\nkind: Playbook\nmetadata: {name: p, path: t/p}\n"
                  "workflow:\n  - step: start\n    type: noop\n"
                  "    args: {v: \"{{ 10 ** (10 ** 9) }}\"}\n")
    r = subprocess.run([sys.executable, "-m", "noetl", "validate", str(pb)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode in (0, 2), r.stderr


def test_health_answers_while_hostile_template_renders(
        server_proc: Callable[..., str]) -> None:
    url = server_proc({"NOETL_TEMPLATE_TIMEOUT": "6"})
    c = httpx.Client(base_url=url, timeout=60)
    c.post("/api/catalog/register", json={"content": (
        "apiVersion: noetl.io/v1\nkind: Playbook\nmetadata: {name: h, path: t/h}\n"
        "workflow:\n  - step: start\n    type: noop\n")}).raise_for_status()
    eid = c.post("/api/run/playbook", json={"path": "t/h", "args": {}}).json()["execution_id"]
    # the power is refused at once
    r = c.post("/api/context/render", json={"execution_id": eid,
                                            "template": "{{ (10 ** (10 ** 7 + 3)) > 1 }}"})
    assert r.status_code == 422 and "template refused" in r.text, r.text
    # a render that only ends at its time limit, while /health is asked
    answer: list[httpx.Response] = []
    t = threading.Thread(target=lambda: answer.append(c.post("/api/context/render", json={
        "execution_id": eid, "template": "{% for i in range(100000) %}{% for j in "
                                         "range(100000) %}{% endfor %}{% endfor %}"})))
    t0 = time.perf_counter()
    t.start()
    times = []
    with httpx.Client(base_url=url, timeout=30) as h:
        h.get("/health")  # connection open
        while time.monotonic() - t0 < 3:  # the render runs for 6 s: probe from 1 s to 3 s
            s = time.perf_counter()
            assert h.get("/health").status_code == 200
            if s - t0 > 1:
                times.append(time.perf_counter() - s)
    assert t.is_alive(), "the hostile render ended before the probes: nothing was measured"
    t.join(60)
    assert time.perf_counter() - t0 < 40
    assert answer and answer[0].status_code == 422 and "time limit" in answer[0].text
    # not frozen (it was 12 s): a generous bound that holds on a loaded machine; the < 100 ms
    # figure is measured by the benchmark (python -m bench --only health)
    assert statistics.median(times) < 0.5 and max(times) < 3, times
