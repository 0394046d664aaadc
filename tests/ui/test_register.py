"""The Catalog page's Register playbook form in Chromium against a real server: a refused
playbook shows the API's problems (source and line, the line's text, the message, the
did-you-mean) inline, and nothing is registered; fixed, it registers, shows its warnings and
opens; a chosen file is named in the problems."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

from tests.ui.conftest import Server, _stop, open_page, screenshot, start_server

TYPO = textwrap.dedent("""\
    apiVersion: noetl.io/v1
    kind: Playbook
    metadata: {name: typo, path: tests/ui/register_typo}
    workflow:
      - step: start
        next: [{step: end, agrs: {x: 1}}]
      - step: end
        descripton: the end
    """)
PATH = "tests/ui/register_typo"


def _versions(server: Server) -> list[int]:
    with server.client() as c:
        r = c.get(f"/api/catalog/{PATH}")
    return [] if r.status_code == 404 else [v["version"] for v in r.json()["versions"]]


def _problems(page: Any) -> list[dict[str, Any]]:
    return list(page.eval_on_selector_all("[data-testid=register-problem]", """rs => rs.map(r => ({
        line: r.dataset.line, severity: r.dataset.severity,
        at: r.querySelector('[data-testid=problem-line]').textContent,
        where: r.querySelector('[data-testid=problem-where]')?.textContent,
        source: r.querySelector('[data-testid=problem-source]')?.textContent,
        message: r.querySelector('[data-testid=problem-message]').textContent,
        hint: r.querySelector('[data-testid=problem-hint] code')?.textContent}))"""))


def test_refused_playbook_shows_line_and_did_you_mean(page: Any, server: Server) -> None:
    assert _versions(server) == []
    page.goto(f"{server.url}/#/catalog")
    page.click("[data-testid=register-open]")
    page.fill("[data-testid=register-yaml]", TYPO)
    page.click("[data-testid=register-submit]")
    refused = page.wait_for_selector("[data-testid=register-refused]")
    text = refused.inner_text()
    assert "Not registered: pasted YAML has 1 problem" in text
    assert '{"' not in text and "problems" not in text  # a list, not the JSON body
    ignored = {  # validation lists the warnings with the errors (one pass)
        "line": "8", "severity": "warning", "at": "pasted YAML, line 8", "where": "step 'end'",
        "source": "8    descripton: the end", "message": "unknown key 'descripton' (ignored)",
        "hint": "description"}
    assert _problems(page) == [{
        "line": "6", "severity": "error", "at": "pasted YAML, line 6",
        "where": "step 'start' → next[0]", "source": "6    next: [{step: end, agrs: {x: 1}}]",
        "message": "unknown edge key 'agrs'", "hint": "args"}, ignored]
    assert "did you mean args?" in (page.text_content("[data-testid=problem-hint]") or "")
    screenshot(page, "catalog-register-refused.png")
    assert _versions(server) == []  # refused: nothing stored

    # the line link selects that line in the text area
    page.click("[data-testid=problem-line]")
    picked = page.eval_on_selector("[data-testid=register-yaml]",
                                   "t => t.value.slice(t.selectionStart, t.selectionEnd)")
    assert picked == "    next: [{step: end, agrs: {x: 1}}]"

    # fixed as the hint says: registered, with the ignored key listed as a warning, and opened
    page.fill("[data-testid=register-yaml]", TYPO.replace("agrs", "args"))
    page.click("[data-testid=register-submit]")
    done = page.wait_for_selector(f"[data-testid=register-result][data-path='{PATH}']")
    assert "Registered tests/ui/register_typo version 1" in done.inner_text()
    assert "1 warning (registered anyway)" in done.inner_text()
    assert _problems(page) == [ignored]
    page.wait_for_selector(f"[data-testid=catalog-item].sel[data-path='{PATH}']")
    page.wait_for_selector("[data-testid=run-button]:has-text('Run v1')")
    assert _versions(server) == [1]


def test_refused_file_is_named_and_a_yaml_error_has_its_line(page: Any, server: Server) -> None:
    page.goto(f"{server.url}/#/catalog?register=1")
    page.set_input_files("[data-testid=register-file]", files=[{
        "name": "broken.yaml", "mimeType": "text/yaml",
        "buffer": b"apiVersion: noetl.io/v1\nkind: Playbook\nworkflow: [\n"}])
    page.wait_for_selector("[data-testid=register-file-note]:has-text('broken.yaml: 3 lines')")
    page.click("[data-testid=register-submit]")
    page.wait_for_selector("[data-testid=register-refused]")
    [p] = _problems(page)
    assert p["at"].startswith("broken.yaml, line ") and p["where"] == "yaml"
    assert p["message"].startswith("syntax error:") and p["hint"] is None

    # edited after loading: still named, as edited; an empty text is refused by the API
    page.fill("[data-testid=register-yaml]", "")
    page.click("[data-testid=register-submit]")
    page.wait_for_selector("[data-testid=register-refused]:has-text('the playbook content is empty')")
    assert not page.query_selector("[data-testid=register-problem]")
    page.fill("[data-testid=register-yaml]", "- just\n- a list\n")
    page.click("[data-testid=register-submit]")
    page.wait_for_selector("[data-testid=register-problem]")
    [p] = _problems(page)
    assert p["at"] == "broken.yaml (edited), line 1"
    assert p["message"] == "a playbook must be a YAML mapping"


def test_register_on_a_server_that_asks_for_a_token(browser: Any, tmp_path: Path) -> None:
    """Behind a token the form registers with the page's token; the empty catalog's shell
    command says the shell needs NOETL_API_TOKEN too."""
    srv = start_server(tmp_path / "tok", workers=0, token="reg-token")
    try:
        with open_page(browser) as page:
            page.goto(f"{srv.url}/#/catalog")
            page.wait_for_selector("#token-dialog[open]")
            page.fill("#token-input", "reg-token")
            page.click("#token-form button[type=submit]")
            empty = page.wait_for_selector("[data-testid=catalog-empty]")
            assert "set NOETL_API_TOKEN" in empty.inner_text()
            page.click("[data-testid=register-open]")
            page.fill("[data-testid=register-yaml]", TYPO.replace("agrs", "args"))
            page.click("[data-testid=register-submit]")
            page.wait_for_selector(f"[data-testid=register-result][data-path='{PATH}']")
            assert not page.is_visible("#token-dialog")
        with srv.client("reg-token") as c:
            assert [v["version"] for v in c.get(f"/api/catalog/{PATH}").json()["versions"]] == [1]
    finally:
        _stop(srv.procs)
