"""Issue 14, items 3 and 4, in a real browser against real server and worker subprocesses:
`noetl server start` alone runs a playbook (its in-process workers), and the death of the only
worker is explained in the UI and by `noetl status` and repaired by the next worker."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.ui.conftest import (
    NOETL,
    REPO,
    Server,
    _stop,
    open_page,
    screenshot,
    start_server,
    wait_until,
)

LEASE = 2.0  # NOETL_LEASE_SECONDS of the kill test (server and workers)

GATED_ONE = textwrap.dedent("""\
    apiVersion: noetl.io/v1
    kind: Playbook
    metadata: {name: held, path: tests/ui/held}
    workload: {gate: /nonexistent}
    workflow:
      - step: start
        next: [{step: hold}]
      - step: hold
        type: python
        args: {gate: "{{ workload.gate }}"}
        code: |
          import os, time
          def main(gate):
              deadline = time.time() + 120
              while not os.path.exists(gate):
                  if time.time() > deadline:
                      raise TimeoutError("gate never opened")
                  time.sleep(0.05)
              return {"gate": "open"}
        next: [{step: end}]
      - step: end
    """)


@pytest.fixture
def new_page(browser: Any) -> Iterator[Any]:
    """A page of its own (these tests start their own servers, not the shared one)."""
    with open_page(browser) as pg:
        yield pg


def _status(page: Any) -> str | None:
    el = page.query_selector("[data-testid=exec-status] .badge")
    return el.get_attribute("data-status") if el else None


def _worker_states(page: Any) -> dict[str, str]:
    return dict(page.eval_on_selector_all(
        "[data-testid=worker-row]", "rs => rs.map(r => [r.dataset.worker, r.dataset.state])"))


def _cli_names_the_real_command(shown: str, url: str) -> None:
    """The shell command the empty catalog shows is one `noetl` really has, with `--server`."""
    import typer.main

    from noetl.cli.main import app

    words = shown.split()
    assert words == ["noetl", "catalog", "register", "playbook.yaml", "--server", url], shown
    group = typer.main.get_command(app)
    register = group.commands["catalog"].commands["register"]  # type: ignore[attr-defined]
    assert "--server" in [o for p in register.params for o in p.opts]


def test_fresh_server_alone_runs_hello_world_from_the_ui(new_page: Any, tmp_path: Path) -> None:
    """Issue 14's acceptance: `noetl server start` on a fresh SQLite store and nothing else (no
    `noetl worker start`, no `noetl catalog register`, no API call that writes): the empty
    catalog invites a register, Chromium registers examples/hello_world.yaml through the
    Register playbook form (its file input), Run completes it with its result; the Workers page
    shows the server's own pool, alive."""
    hello = REPO / "examples" / "hello_world.yaml"
    srv = start_server(tmp_path / "fresh", workers=0, server_workers=True)
    try:
        assert not (tmp_path / "fresh" / "worker0.log").exists()  # no other process
        page = new_page
        page.goto(f"{srv.url}/#/catalog")
        empty = page.wait_for_selector("[data-testid=catalog-empty]")
        assert "No playbooks yet" in empty.inner_text()
        _cli_names_the_real_command(page.text_content("[data-testid=register-cli]") or "", srv.url)
        assert page.text_content("[data-testid=catalog-list]") == "The catalog is empty."
        screenshot(page, "catalog-empty.png")

        page.click("[data-testid=register-open-empty]")
        page.set_input_files("[data-testid=register-file]", str(hello))
        wait_until(lambda: page.input_value("[data-testid=register-yaml]") == hello.read_text(),
                   10, "the chosen file's text in the form")
        assert "hello_world.yaml" in (page.text_content("[data-testid=register-file-note]") or "")
        screenshot(page, "catalog-register.png")
        page.click("[data-testid=register-submit]")
        done = page.wait_for_selector("[data-testid=register-result]")
        assert done.get_attribute("data-path") == "examples/hello_world"
        assert done.get_attribute("data-version") == "1"
        assert "Registered examples/hello_world version 1" in done.inner_text()
        assert "from hello_world.yaml" in done.inner_text()
        # ... and it is open: the list holds it, selected, and the Run form is for v1
        page.wait_for_selector(
            "[data-testid=catalog-item].sel[data-path='examples/hello_world']")
        page.wait_for_selector("[data-testid=run-button]:has-text('Run v1')")
        assert not page.query_selector("[data-testid=catalog-empty]")

        page.click("[data-testid=run-button]")
        page.wait_for_url(re.compile(r".*#/executions/\d+$"))
        eid = page.url.rsplit("/", 1)[-1]
        wait_until(lambda: _status(page) == "COMPLETED", 30, "hello_world COMPLETED in the UI")
        desc = srv.execution(eid)
        assert desc["status"] == "COMPLETED"
        assert desc["result"] == {"shout": "HELLO WORLD!"}
        assert {n: s["status"] for n, s in desc["steps"].items()} == {
            "start": "COMPLETED", "greet": "COMPLETED", "shout": "COMPLETED", "end": "COMPLETED"}
        with srv.client() as c:
            entry = c.post("/api/catalog/resource", json={"path": "examples/hello_world"}).json()
        assert entry["content"] == hello.read_text()  # the file, byte for byte
        page.goto(f"{srv.url}/#/workers")
        page.wait_for_selector("[data-testid=worker-row]")
        rows = page.query_selector_all("[data-testid=worker-row]")
        assert len(rows) == 1
        assert rows[0].get_attribute("data-state") == "alive"
        assert "server" in rows[0].inner_text()  # mode: the pool inside the server
        screenshot(page, "workers-server-pool.png")
    finally:
        _stop(srv.procs)


def _noetl_status(srv: Server, eid: str, *extra: str) -> str:
    env = {**srv.env, "COLUMNS": "200"}
    r = subprocess.run([*NOETL, "status", eid, "--server", srv.url, *extra], env=env,
                       capture_output=True, text=True, timeout=60, cwd=str(REPO))
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_killed_worker_is_explained_then_a_new_worker_finishes(new_page: Any,
                                                               tmp_path: Path) -> None:
    """kill -9 of the only worker while its step runs: within lease time + 2 s the UI says the
    step's lease expired and no worker is alive, `noetl status` says the same; a new worker
    then finishes the run (attempt 2)."""
    home = tmp_path / "kill"
    srv = start_server(home, workers=0, env_extra={"NOETL_LEASE_SECONDS": str(LEASE)})
    page = new_page
    gate = tmp_path / "gate"
    try:
        w1 = srv.add_worker(worker_id="w-1")
        srv.register(GATED_ONE)
        with srv.client() as c:
            eid = c.post("/api/run/playbook", json={"path": "tests/ui/held",
                                                    "args": {"gate": str(gate)}}).json()[
                "execution_id"]
        page.goto(f"{srv.url}/#/executions/{eid}")
        page.wait_for_selector("[data-testid=graph-node][data-name='hold']")
        page.click("[data-testid=graph-node][data-name='hold']")
        # running on w-1: the step panel says who holds the lease, until when
        wait_until(lambda: "leased by w-1 until" in (
            page.text_content("[data-testid=step-waiting]") or ""), 30, "hold leased by w-1")
        assert page.get_attribute("[data-testid=step-waiting]", "data-reason") == "leased"

        os.kill(w1.pid, signal.SIGKILL)
        killed = time.monotonic()
        w1.wait(10)

        def explained() -> bool:
            box = page.query_selector("[data-testid=exec-waiting][data-step='hold']")
            text = box.text_content() if box else ""
            return bool(text) and "the lease of w-1 expired" in text and \
                "no worker has polled" in text
        wait_until(explained, LEASE + 2, "the UI to say the lease expired and no worker is alive")
        took = time.monotonic() - killed
        print(f"explained {took:.2f} s after kill -9 (lease {LEASE} s)")
        assert took <= LEASE + 2, took
        panel = page.text_content("[data-testid=step-waiting]") or ""
        assert "the lease of w-1 expired" in panel and "(last: w-1, lost)" in panel
        screenshot(page, "execution-worker-lost.png")

        # `noetl status` says the same (the one explainer), as a table and in --json
        table = _noetl_status(srv, eid)
        assert "expired" in table and "heartbeating" in table and "w-1" in table
        why = json.loads(_noetl_status(srv, eid, "--json"))["steps"]["hold"]["waiting"]
        assert why["reason"] == "lease_expired" and why["stuck"] is True
        assert why["worker_id"] == "w-1" and "no worker has polled" in why["message"]

        page.goto(f"{srv.url}/#/workers")
        wait_until(lambda: _worker_states(page) == {"w-1": "lost"}, 10, "w-1 shown lost")

        # a new worker takes the job over and, once the gate opens, finishes the run
        srv.add_worker(worker_id="w-2")
        wait_until(lambda: _worker_states(page).get("w-2") == "alive", 20, "w-2 shown alive")
        wait_until(lambda: bool(page.query_selector(
            "[data-testid=worker-row][data-worker='w-2'] [data-testid=worker-job]")), 20,
            "w-2 holding the hold job")
        gate.write_text("open")
        page.goto(f"{srv.url}/#/executions/{eid}")
        wait_until(lambda: _status(page) == "COMPLETED", 30, "execution COMPLETED after w-2")
        assert not page.query_selector("[data-testid=exec-waiting]")
        desc = srv.execution(eid)
        assert desc["status"] == "COMPLETED"
        assert desc["steps"]["hold"]["attempts"] == 2
        assert all("waiting" not in s for s in desc["steps"].values())
        with srv.client() as c:
            evs = c.get(f"/api/executions/{eid}/events").json()["items"]
            metrics = c.get("/metrics").text
        retry = [e for e in evs if e["event_type"] == "action_retry"]
        assert len(retry) == 1 and retry[0]["context"]["reason"] == "lease_expired"
        assert retry[0]["context"]["worker_id"] == "w-1" and retry[0]["attempt"] == 1
        done = [e for e in evs if e["event_type"] == "action_completed"]
        assert [(e["node_name"], e["worker_id"], e["attempt"]) for e in done] == [
            ("hold", "w-2", 2)]
        assert 'noetl_workers{state="alive"} 1.0' in metrics
        assert 'noetl_workers{state="lost"} 1.0' in metrics
    finally:
        gate.write_text("open")
        _stop(srv.procs)
