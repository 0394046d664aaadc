"""The ``noetl`` command as a real subprocess: exit codes, --json shape, catalog, status, events."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FIX = REPO / "tests" / "fixtures" / "noetl"


@pytest.fixture
def cli(tmp_path: Path):
    env = {**os.environ, "NOETL_HOME": str(tmp_path / "home")}
    env.pop("NOETL_STORE_URL", None)
    env.pop("NOETL_SERVER_URL", None)

    def run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "noetl", *args], capture_output=True,
                              text=True, env=env, cwd=tmp_path, timeout=timeout)

    return run


def test_run_json_completed(cli) -> None:
    p = cli("run", str(FIX / "control_flow_workbook/control_flow_workbook.yaml"), "--json",
            "--set", "temperature_c=10")
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert set(out) == {"execution_id", "path", "version", "status", "result", "error",
                        "parent_execution_id", "start_time", "end_time", "duration", "steps",
                        "children"}
    assert out["status"] == "COMPLETED"
    assert out["path"] == "tests/fixtures/playbooks/control_flow_workbook"
    assert out["duration"] == pytest.approx(out["end_time"] - out["start_time"])
    cold = out["steps"]["cold_task"]
    assert {k: cold[k] for k in ("status", "result", "error", "attempts")} == {
        "status": "COMPLETED", "result": {"who": "C"}, "error": None, "attempts": 1}
    assert out["start_time"] <= cold["started_at"] <= cold["ended_at"] <= out["end_time"]
    assert cold["duration"] == pytest.approx(cold["ended_at"] - cold["started_at"])
    assert out["children"] == []


def test_run_failed_exit_1(cli, tmp_path: Path) -> None:
    f = tmp_path / "fail.yaml"
    f.write_text("apiVersion: noetl.io/v1\nkind: Playbook\nmetadata: {name: f}\nworkflow:\n"
                 "  - step: start\n    type: python\n    code: |\n      def main():\n"
                 "          raise RuntimeError('kaput')\n")
    p = cli("run", str(f), "--json")
    assert p.returncode == 1
    out = json.loads(p.stdout)
    assert out["status"] == "FAILED"
    assert out["error"]["type"] == "RuntimeError" and out["error"]["message"] == "kaput"
    p2 = cli("run", str(f))
    assert p2.returncode == 1
    assert "kaput" in p2.stdout + p2.stderr


def test_invalid_playbook_exit_2(cli, tmp_path: Path) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text("apiVersion: noetl.io/v1\nkind: Playbook\nmetadata: {name: b}\nworkflow:\n"
                 "  - step: start\n    next: [{step: nowhere}]\n")
    for cmd in (("run", str(f)), ("validate", str(f))):
        p = cli(*cmd)
        assert p.returncode == 2
        assert "bad.yaml" in p.stderr and "unknown step 'nowhere'" in p.stderr
        assert "line 6" in p.stderr


def test_validate_counts_the_steps_in_words(cli, tmp_path: Path) -> None:
    f = tmp_path / "one.yaml"
    f.write_text("apiVersion: noetl.io/v1\nkind: Playbook\nmetadata: {name: one}\nworkflow:\n"
                 "  - step: start\n    type: noop\n")
    p = cli("validate", str(f))
    assert p.returncode == 0 and p.stdout.strip().endswith("valid playbook 'one' (1 step)")
    p = cli("validate", str(FIX / "hello_world/hello_world.yaml"))
    assert p.returncode == 0 and p.stdout.strip().endswith(" steps)"), p.stdout


def test_catalog_execute_status_events(cli) -> None:
    p = cli("catalog", "register", str(FIX / "hello_world/hello_world.yaml"), "--json")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["version"] == 1
    p = cli("catalog", "register", str(FIX / "hello_world/hello_world.yaml"), "--json")
    assert json.loads(p.stdout)["version"] == 2
    p = cli("catalog", "list", "--json")
    entries = json.loads(p.stdout)
    assert [(e["path"], e["version"]) for e in entries] == [
        ("tests/fixtures/playbooks/hello_world", 2), ("tests/fixtures/playbooks/hello_world", 1)]
    p = cli("execute", "tests/fixtures/playbooks/hello_world", "--json", "--set",
            "message=from catalog")
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["steps"]["test_step"]["result"] == {"message": "from catalog"}
    eid = out["execution_id"]
    p = cli("status", eid, "--json")
    assert p.returncode == 0
    assert json.loads(p.stdout)["status"] == "COMPLETED"
    p = cli("events", eid, "--json")
    evs = json.loads(p.stdout)
    assert evs[0]["event_type"] == "execution_started"
    assert evs[-1]["event_type"] == "execution_completed"
    p = cli("status", "123")
    assert p.returncode == 1 and "not found" in p.stderr
    p = cli("execute", "no/such/playbook")
    assert p.returncode == 1 and "not found" in p.stderr


def test_cli_minimal_offers_no_server_worker_or_credential_commands(tmp_path: Path) -> None:
    env = {**os.environ, "NOETL_HOME": str(tmp_path)}
    optional = {"server", "worker", "credential", "schedule", "hook"}
    for minimal, listed in (("1", set()), ("", optional)):
        out = subprocess.run([sys.executable, "-m", "noetl", "--help"], capture_output=True,
                             text=True, env={**env, "NOETL_CLI_MINIMAL": minimal}, timeout=60)
        assert out.returncode == 0, out.stderr
        names = {line.split()[1] for line in out.stdout.splitlines()
                 if line.startswith("│ ") and len(line.split()) > 1}
        assert names & optional == listed
        assert "run" in names


def test_help_text_flows_as_one_paragraph_at_80_columns(tmp_path: Path) -> None:
    """A docstring's line breaks are not kept in --help (they broke sentences mid-way:
    "What the" on one line, "steps write" on the next); its paragraphs are reflowed."""
    env = {**os.environ, "NOETL_HOME": str(tmp_path), "COLUMNS": "80"}
    out = subprocess.run([sys.executable, "-m", "noetl", "--help"], capture_output=True,
                         text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "needed). What the steps write" in out.stdout, out.stdout
