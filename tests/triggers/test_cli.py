"""``noetl schedule`` and ``noetl hook`` as real subprocesses, on a store and on a server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.api.conftest import Running

PLAYBOOK = """\
apiVersion: noetl.io/v1
kind: Playbook
metadata: {name: reports/daily}
schedule:
  - cron: "0 2 * * *"
    timezone: Europe/Berlin
workflow:
  - step: start
    next: end
  - step: end
"""
Cli = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NOETL_")}
    env["NOETL_HOME"] = str(tmp_path / "home")
    (tmp_path / "daily.yaml").write_text(PLAYBOOK)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "noetl", *args], capture_output=True,
                              text=True, env=env, cwd=tmp_path, timeout=60)

    return run


def _json(p: subprocess.CompletedProcess[str]) -> object:
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def test_schedule_commands_on_the_store(cli: Cli) -> None:
    assert cli("catalog", "register", "daily.yaml").returncode == 0
    (declared,) = _json(cli("schedule", "list", "--json"))  # type: ignore[misc]
    assert (declared["source"], declared["cron"], declared["timezone"]) == (
        "playbook", "0 2 * * *", "Europe/Berlin")
    added = _json(cli("schedule", "add", "reports/daily", "--interval", "15m", "--set", "x=1",
                      "--overlap", "allow", "--json"))
    assert isinstance(added, dict)
    sid = added["schedule_id"]
    assert (added["source"], added["interval"], added["args"], added["overlap"]) == (
        "api", 900.0, {"x": 1}, "allow")
    nxt = cli("schedule", "next", "reports/daily", "-n", "2")
    assert nxt.returncode == 0 and nxt.stdout.count("CET") + nxt.stdout.count("CEST") == 2
    assert nxt.stdout.count(" UTC") == 2
    paused = _json(cli("schedule", "pause", sid, "--json"))
    assert isinstance(paused, dict) and paused["enabled"] is False
    listed = cli("schedule", "list", "reports/daily")
    assert listed.returncode == 0 and "paused" in listed.stdout and sid in listed.stdout
    assert _json(cli("schedule", "resume", sid, "--json"))["enabled"] is True  # type: ignore[index]
    assert _json(cli("schedule", "runs", sid, "--json")) == []
    assert cli("schedule", "delete", sid).returncode == 0
    gone = cli("schedule", "delete", sid)
    assert gone.returncode == 1 and f"schedule {sid} not found" in gone.stderr
    bad = cli("schedule", "add", "reports/daily", "--cron", "0 2 * *")
    assert bad.returncode == 1 and "five fields" in bad.stderr
    bad = cli("schedule", "add", "nope", "--interval", "1m")
    assert bad.returncode == 1 and "playbook 'nope' not found" in bad.stderr
    assert cli("schedule", "next", "nope").returncode == 1

    hook = _json(cli("hook", "add", "daily-now", "reports/daily", "--secret", "0123456789",
                     "--arg", "day={{ body.day }}", "--json"))
    assert isinstance(hook, dict)
    assert (hook["credential"], hook["args"]) == ("hook.daily-now", {"day": "{{ body.day }}"})
    assert [h["name"] for h in _json(cli("hook", "list", "--json"))] == [  # type: ignore[union-attr]
        "daily-now"]
    assert "hook.daily-now" in cli("credential", "list").stdout
    assert cli("hook", "add", "x", "reports/daily").returncode == 1  # no secret
    assert cli("hook", "delete", "daily-now").returncode == 0
    assert cli("hook", "delete", "daily-now").returncode == 1


def test_schedule_commands_on_a_server(cli: Cli, serve: Callable[..., Running],
                                       tmp_path: Path) -> None:
    api = serve(f"sqlite:///{tmp_path / 'server.db'}")
    s = ["--server", api.url]
    assert cli("catalog", "register", "daily.yaml", *s).returncode == 0
    added = _json(cli("schedule", "add", "reports/daily", "--cron", "30 6 * * MON", *s,
                      "--json"))
    assert isinstance(added, dict) and added["cron"] == "30 6 * * MON"
    items = _json(cli("schedule", "list", "reports/daily", *s, "--json"))
    assert isinstance(items, list) and len(items) == 2
    nxt = _json(cli("schedule", "next", "reports/daily", "-n", "4", *s, "--json"))
    assert isinstance(nxt, list) and [len(x["next_fires"]) for x in nxt] == [4, 4]
    bad = cli("schedule", "pause", "999", *s)
    assert bad.returncode == 1 and "schedule 999 not found" in bad.stderr
