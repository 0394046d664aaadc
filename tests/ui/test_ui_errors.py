"""A failed step's error in the UI, in the user's terms first (issue 12, item 7): a run-time
template error shows the step, the field and the template as written, then the message; a
python error shows the step's own frames at the playbook's lines; the whole traceback (engine
frames included) is kept behind a toggle. Real server, worker and Chromium."""

from __future__ import annotations

from typing import Any

from tests.cli.test_runtime_errors import PYTHON_RAISES, TEMPLATE_AT_RUN_TIME
from tests.ui.conftest import Server, screenshot, wait_until
from tests.ui.test_ui import node_states, run_from_catalog, wait_status

TEMPLATE = "{{ start.items | join(',') }}"


def _open_failed_step(page: Any, server: Server, content: str, path: str, step: str) -> str:
    server.register(content)
    eid = run_from_catalog(page, server, path)
    wait_status(page, "FAILED")
    wait_until(lambda: node_states(page).get(step) == "FAILED", 10, f"{step} node failed")
    page.click(f"[data-testid=graph-node][data-name='{step}']")
    page.wait_for_selector("[data-testid=step-error]")
    return eid


def tid(name: str) -> str:
    return f"[data-testid={name}]"


def _top(page: Any, selector: str) -> float:
    box = page.locator(selector).bounding_box()
    assert box is not None, f"{selector} is not shown"
    return float(box["y"])


def test_template_error_shows_the_users_template_first(page: Any, server: Server) -> None:
    eid = _open_failed_step(page, server, TEMPLATE_AT_RUN_TIME, "tests/runtime_template", "use")
    box = "step-error"
    # first what the user wrote: where, then the template itself, then the message
    text = page.inner_text(tid(box))
    assert text.splitlines()[0] == "step use · field args.total"
    assert page.inner_text(tid(f"{box}-template")) == TEMPLATE
    assert page.inner_text(tid(f"{box}-message")) == (
        "TemplateError: TypeError: 'int' object is not iterable")
    assert _top(page, tid(f"{box}-where")) < _top(page, tid(f"{box}-template")) \
        < _top(page, tid(f"{box}-message"))
    assert text.index(TEMPLATE) < text.index("'int' object is not iterable")
    # the engine's frames are kept, but behind the toggle: not shown until asked for
    engine = tid(f"{box}-engine-traceback")
    assert not page.is_visible(engine)
    assert "templates.py" not in text and "Traceback" not in text
    page.click(f"{tid(box)} details summary")
    page.wait_for_selector(engine, state="visible")
    assert "templates.py" in page.inner_text(engine)
    assert _top(page, tid(f"{box}-message")) < _top(page, engine)
    # the execution's own error box (the header) says the same, template first
    head = page.inner_text("[data-testid=exec-error]")
    assert head.splitlines()[0] == "step use · field args.total"
    assert page.inner_text("[data-testid=exec-error-template]") == TEMPLATE
    api = server.execution(eid)["error"]
    assert (api["step"], api["field"], api["template"]) == ("use", "args.total", TEMPLATE)
    screenshot(page, "execution-template-error.png")


def test_python_error_shows_the_playbooks_lines(page: Any, server: Server) -> None:
    _open_failed_step(page, server, PYTHON_RAISES, "tests/python_raises", "start")
    lines = PYTHON_RAISES.splitlines()
    raised = next(i for i, t in enumerate(lines, 1) if "return n / d" in t)
    box = "step-error"
    assert page.inner_text(tid(f"{box}-message")) == "ZeroDivisionError: division by zero"
    # a catalog run names the catalog path and the registered text's lines
    assert f"tests/python_raises, line {raised}" in page.inner_text(tid(f"{box}-where"))
    own = page.inner_text(tid(f"{box}-traceback"))
    assert f'File "tests/python_raises", line {raised}, in ratio' in own
    assert "<step code" not in own and "python.py" not in own
    assert not page.is_visible(tid(f"{box}-engine-traceback"))
