"""Bad command-line values as real subprocesses: an unreadable ``@file`` and an out-of-range
``--timeout``, ``-c/--concurrency`` or ``--set`` key exit 2 with a message naming the option
(and the file), never a traceback, and nothing runs. ``noetl run``'s fast path and its Typer
command refuse the same values with the same message."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from noetl.cli import run_cmd

REPO = Path(__file__).resolve().parents[2]
HELLO = REPO / "tests" / "fixtures" / "noetl" / "hello_world" / "hello_world.yaml"
# `python -c` with these arguments runs the Typer app directly, without entry.py's fast path
TYPER_ONLY = ("-c", "import sys; sys.argv[0] = 'noetl'; from noetl.cli.main import main; main()")


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NOETL_")}
    env["NOETL_HOME"] = str(tmp_path / "home")
    # wide enough that Typer's error box never breaks a long temporary path in two (it
    # wrapped at a width the path's length decided: passed or failed with pytest's tmp dir)
    env["COLUMNS"] = "1000"
    return env


def _cli(tmp_path: Path, *args: str, typer_only: bool = False) -> subprocess.CompletedProcess[str]:
    entry = TYPER_ONLY if typer_only else ("-m", "noetl")
    return subprocess.run([sys.executable, *entry, *args], capture_output=True, text=True,
                          env=_env(tmp_path), cwd=tmp_path, timeout=60)


def _flat(text: str) -> str:
    """stderr without the frame Typer draws around its error (and its line breaks)."""
    return re.sub(r"[\s│╭╮╰╯─]+", " ", text)


def _refused(p: subprocess.CompletedProcess[str], *words: str) -> str:
    assert p.returncode == 2, (p.returncode, p.stdout, p.stderr)
    assert "Traceback" not in p.stderr, p.stderr
    msg = _flat(p.stderr)
    for w in words:
        assert w in msg, (w, msg)
    return msg


@pytest.mark.parametrize("kind", ["missing", "folder"])
def test_unreadable_payload_file_exits_2_naming_it(tmp_path: Path, kind: str) -> None:
    target = tmp_path / ("nope.json" if kind == "missing" else "adir")
    if kind == "folder":
        target.mkdir()
    reason = "No such file or directory" if kind == "missing" else "Is a directory"
    _refused(_cli(tmp_path, "run", str(HELLO), "--payload", f"@{target}"),
             "--payload", f"cannot read file '{target}'", reason)
    assert not (tmp_path / "home" / "noetl.db").exists()  # nothing ran


def test_payload_file_that_is_read_is_used(tmp_path: Path) -> None:
    f = tmp_path / "in.json"
    f.write_text('{"message": "from a file"}', encoding="utf-8")
    p = _cli(tmp_path, "run", str(HELLO), "--payload", f"@{f}", "--json", "-q")
    assert p.returncode == 0, p.stderr
    assert "from a file" in p.stdout


def test_credential_and_schedule_unreadable_file_exit_2(tmp_path: Path) -> None:
    missing = tmp_path / "missing.json"
    _refused(_cli(tmp_path, "credential", "add", "c", "-t", "bearer", "-d", f"@{missing}"),
             "--data", f"cannot read file '{missing}'")
    _refused(_cli(tmp_path, "credential", "add", "c", "-t", "bearer", "-d", f"@{tmp_path}"),
             "--data", "Is a directory")
    _refused(_cli(tmp_path, "schedule", "add", "some/path", "--interval", "1m", "--payload",
                  f"@{missing}"), "--payload", f"cannot read file '{missing}'")


BAD_RUN_VALUES = [
    (("--timeout", "0"), ("--timeout", "more than 0 seconds, got 0")),
    (("--timeout", "-1"), ("--timeout", "more than 0 seconds, got -1")),
    (("--timeout", "nan"), ("--timeout",)),
    (("-c", "-3"), ("--concurrency", "at least 1, got -3")),
    (("-c", "0"), ("--concurrency", "at least 1, got 0")),
    (("--set", "=3"), ("--set", "non-empty key", "'=3'")),
    (("--set", "a..b=3"), ("--set", "non-empty key")),
    (("--set", "a=1", "--set", "a.b=2"), ("--set", "'a' is already set")),
]


@pytest.mark.parametrize(("args", "words"), BAD_RUN_VALUES, ids=[" ".join(a) for a, _ in BAD_RUN_VALUES])
def test_run_refuses_bad_values_on_both_paths(tmp_path: Path, args: tuple[str, ...],
                                              words: tuple[str, ...]) -> None:
    assert run_cmd.fast_run([str(HELLO), *args]) is None  # the fast path leaves it to Typer
    fast = _cli(tmp_path, "run", str(HELLO), *args)
    direct = _cli(tmp_path, "run", str(HELLO), *args, typer_only=True)
    msg = _refused(fast, *words)
    error = msg.partition(" Error ")[2]  # after the usage lines, which name the program
    assert error and _refused(direct, *words).partition(" Error ")[2] == error
    assert "still RUNNING" not in msg
    assert not (tmp_path / "home" / "noetl.db").exists()


@pytest.mark.parametrize("command", [("execute", "some/path"), ("rerun", "1"), ("resume", "1")])
def test_other_running_commands_refuse_the_same_values(tmp_path: Path,
                                                       command: tuple[str, ...]) -> None:
    _refused(_cli(tmp_path, *command, "--timeout", "0"), "--timeout", "more than 0 seconds")
    _refused(_cli(tmp_path, *command, "-c", "-3"), "--concurrency", "at least 1")


def test_a_server_refused_at_startup_says_why_without_a_traceback(tmp_path: Path) -> None:
    """One server process (SQLite) as several (PostgreSQL): what it would refuse at startup
    (here an unreadable NOETL_NOTIFY file) is exit 1 with the reason, before uvicorn starts."""
    env = {**_env(tmp_path), "NOETL_NOTIFY": f"@{tmp_path / 'nope.json'}"}
    p = subprocess.run([sys.executable, "-m", "noetl", "server", "start", "--port", "0"],
                       env=env, capture_output=True, text=True, timeout=60)
    assert p.returncode == 1, p.stderr
    assert "error: NOETL_NOTIFY: cannot read" in p.stderr and "nope.json" in p.stderr
    assert "Traceback" not in p.stderr and "startup failed" not in p.stderr
