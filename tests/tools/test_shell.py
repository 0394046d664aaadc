"""The ``shell`` tool end to end: through ``noetl run`` in a real subprocess and through the
LocalRunner, with its output in the step's log, its exit code in the result, a non-zero exit and
a timeout failing the step (the process killed), and a command that cannot start not retried.
``noetl validate`` knows its keys from the tool spec (a typo is an error, with did-you-mean)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from noetl.domain.records import Event
from noetl.dsl import parse_playbook
from noetl.dsl.schema import playbook_schema
from noetl.local import LocalRunner
from tests.helpers import assert_one_terminal, types_for, wait_until

HEAD = "apiVersion: noetl.io/v1\nkind: Playbook\nmetadata: {name: sh}\n"

Cli = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    env = {**os.environ, "NOETL_HOME": str(tmp_path / "home")}
    for k in ("NOETL_STORE_URL", "NOETL_SERVER_URL"):
        env.pop(k, None)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "noetl", *args], capture_output=True,
                              text=True, env=env, cwd=tmp_path, timeout=120)

    return run


def _file(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "flow.yaml"
    path.write_text(HEAD + textwrap.dedent(body), encoding="utf-8")
    return path


def _run(text: str, store_url: str, timeout: float = 60) -> tuple[dict[str, Any], list[Event],
                                                                   list[dict[str, Any]]]:
    pb = parse_playbook(HEAD + textwrap.dedent(text), "<test>")
    with LocalRunner(store_url, concurrency=2) as runner:
        desc = runner.run(pb, timeout=timeout)
        eid = int(desc["execution_id"])
        with runner.store.read() as tx:
            events = tx.get_events(eid, 0, 10000)
            logs = tx.get_logs(eid)
    assert_one_terminal(events)
    return desc, events, logs


# -- noetl run (a real subprocess) -------------------------------------------------------------
def test_noetl_run_shell_output_exit_code_and_templates(cli: Cli, tmp_path: Path) -> None:
    f = _file(tmp_path, """\
        workload: {who: world}
        workflow:
          - step: start
            type: shell
            command: "echo hello {{ workload.who }}; echo to-stderr >&2"
            next: [argv]
          - step: argv
            type: shell
            command: [printf, "%s|", "a b", "$HOME", "{{ start.exit_code }}"]
            env: {GREETING: hi}
            next: [envs]
          - step: envs
            type: shell
            command: 'printf "$GREETING/%s" "$(pwd)"'
            env: {GREETING: hi}
            cwd: /tmp
        """)
    p = cli("run", str(f), "--json")
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["status"] == "COMPLETED"
    steps = out["steps"]
    assert steps["start"]["result"] == {"exit_code": 0, "stdout": "hello world\n",
                                        "stderr": "to-stderr\n"}
    assert steps["argv"]["result"]["stdout"] == "a b|$HOME|0|"  # a list: no shell, no expansion
    assert out["result"]["stdout"] == "hi//tmp"
    # what the commands wrote is the steps' log, shown as it runs
    assert "hello world" in p.stderr + p.stdout and "to-stderr" in p.stderr + p.stdout


def test_noetl_run_non_zero_exit_fails_with_the_stderr_tail(cli: Cli, tmp_path: Path) -> None:
    f = _file(tmp_path, """\
        workflow:
          - step: start
            type: shell
            command: "echo some output; echo 'disk is full' >&2; exit 3"
        """)
    p = cli("run", str(f), "--json")
    assert p.returncode != 0
    out = json.loads(p.stdout)
    assert out["status"] == "FAILED"
    err = out["steps"]["start"]["error"]
    assert err["type"] == "ShellExit"
    assert err["message"] == "shell: command exited with status 3: disk is full"


def test_noetl_run_timeout_kills_the_command(cli: Cli, tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    f = _file(tmp_path, f"""\
        workflow:
          - step: start
            type: shell
            command: "echo $$ > {pid_file}; exec sleep 60"
            timeout: 1
        """)
    p = cli("run", str(f), "--json")
    out = json.loads(p.stdout)
    assert out["status"] == "FAILED", out
    err = out["steps"]["start"]["error"]
    assert (err["type"], err["message"]) == (
        "TimeoutError", "shell: command timed out after 1 s (process killed)")
    pid = int(pid_file.read_text())
    wait_until(lambda: not Path(f"/proc/{pid}").exists(), 10, "the command's process to end")


# -- noetl validate ---------------------------------------------------------------------------
def test_validate_accepts_shell_keys_and_rejects_a_typo_with_did_you_mean(cli: Cli,
                                                                          tmp_path: Path) -> None:
    good = _file(tmp_path, """\
        workflow:
          - step: start
            type: shell
            command: [ls, -l]
            env: {A: "1"}
            cwd: /tmp
            timeout: 5
            retry: 2
        """)
    p = cli("validate", str(good))
    assert p.returncode == 0, p.stderr
    assert "warning" not in p.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text(HEAD + textwrap.dedent("""\
        workflow:
          - step: start
            type: shell
            comand: "echo hi"
            env: [A]
        """), encoding="utf-8")
    p = cli("validate", str(bad))
    assert p.returncode == 2
    assert "step 'start' (line 7): unknown key 'comand' (did you mean 'command'?)" in p.stderr
    assert "step 'start' (line 5): a shell step needs 'command'" in p.stderr
    assert "step 'start' → env (line 8): must be a mapping, got a list" in p.stderr


def test_the_json_schema_knows_the_shell_keys(tmp_path: Path) -> None:
    schema = playbook_schema()
    doc = yaml.safe_load(HEAD + "workflow:\n  - step: start\n    type: shell\n"
                         "    command: [ls]\n    env: {A: b}\n    cwd: /tmp\n")
    jsonschema.validate(doc, schema)
    doc["workflow"][0]["env"] = ["A"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, schema)
    props = schema["properties"]["workflow"]["items"]["properties"]
    assert "shell: the directory the command runs in" in props["cwd"]["description"]


# -- LocalRunner ------------------------------------------------------------------------------
def test_output_goes_to_the_step_log(sqlite_url: str) -> None:
    desc, _, logs = _run("""\
        workflow:
          - step: start
            type: shell
            command: "echo line-one; echo line-two; echo problem >&2"
        """, sqlite_url)
    assert desc["status"] == "COMPLETED", desc["error"]
    assert desc["result"]["exit_code"] == 0
    got = [(r["step"], r["stream"], r["message"]) for r in logs]
    assert ("start", "stdout", "line-one\nline-two") in got
    assert ("start", "stderr", "problem") in got


def test_a_non_zero_exit_is_retried_as_the_policy_says(sqlite_url: str, tmp_path: Path) -> None:
    count = tmp_path / "count"
    desc, events, _ = _run(f"""\
        workflow:
          - step: start
            type: shell
            command: "echo x >> {count}; exit 1"
            retry: {{max_attempts: 2, initial_delay: 0, jitter: false}}
        """, sqlite_url)
    assert desc["status"] == "FAILED"
    assert count.read_text() == "x\nx\n"
    assert types_for(events, "start").count("action_retry") == 1


def test_a_timeout_kills_the_process_group_and_fails_the_step(sqlite_url: str,
                                                              tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    desc, _, _ = _run(f"""\
        workflow:
          - step: start
            type: shell
            command: "sleep 60 & echo $! > {pid_file}; wait"
            timeout: 0.5
        """, sqlite_url)
    assert desc["status"] == "FAILED"
    assert desc["steps"]["start"]["error"]["message"] == \
        "shell: command timed out after 0.5 s (process killed)"
    pid = int(pid_file.read_text())  # the shell's child, killed with its group
    wait_until(lambda: not Path(f"/proc/{pid}").exists(), 10, "the command's child to end")


def test_a_command_that_cannot_start_runs_once_and_says_why(sqlite_url: str,
                                                            tmp_path: Path) -> None:
    """Issue 11 item 6: the spec marks ShellError non-retryable, so the retry policy does not
    apply: one attempt, no action_retry, the step FAILED with the reason in its events."""
    desc, events, _ = _run(f"""\
        workflow:
          - step: start
            type: shell
            command: [no-such-program-{os.getpid()}]
            retry: {{max_attempts: 5, initial_delay: 0}}
        """, sqlite_url)
    assert desc["status"] == "FAILED"
    step = desc["steps"]["start"]
    assert step["attempts"] == 1
    assert types_for(events, "start").count("action_started") == 1
    assert "action_retry" not in types_for(events, "start")
    failed = [e for e in events if e.event_type == "step_failed"]
    assert failed[0].error_type == "ShellError"
    assert failed[0].error is not None and failed[0].error.startswith(
        f"shell: cannot run 'no-such-program-{os.getpid()}': No such file or directory")
    assert failed[0].error.endswith("(not retryable)")
    missing = tmp_path / "nowhere"
    desc, _, _ = _run(f"""\
        workflow:
          - step: start
            type: shell
            command: "true"
            cwd: {missing}
            retry: 3
        """, sqlite_url)
    assert desc["status"] == "FAILED" and desc["steps"]["start"]["attempts"] == 1
    assert f"in '{missing}'" in desc["steps"]["start"]["error"]["message"]


def _gone(pid: int) -> bool:
    """The process has ended (a zombie not yet reaped by its new parent counts as ended)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] in "ZX"
    except (FileNotFoundError, ProcessLookupError):
        return True


def test_background_children_do_not_outlive_the_step(cli: Cli, tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    f = _file(tmp_path, f"""\
        workflow:
          - step: start
            type: shell
            command: "sleep 123 & echo $! > {pid_file}; echo x"
        """)
    p = cli("run", str(f), "--json", "-q")
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["result"]["stdout"] == "x\n"
    pid = int(pid_file.read_text())
    assert _gone(pid), "sleep 123 outlived its step"  # killed before the step ended


def test_a_command_killed_by_a_signal_says_which(sqlite_url: str) -> None:
    desc, _, _ = _run("""\
        workflow:
          - step: start
            type: shell
            command: "echo going; kill -9 $$"
        """, sqlite_url)
    assert desc["status"] == "FAILED"
    err = desc["steps"]["start"]["error"]
    assert (err["type"], err["message"]) == ("ShellExit",
                                             "shell: command killed by signal 9 (SIGKILL)")
