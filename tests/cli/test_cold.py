"""``noetl run``'s fast path (``noetl.cli.run_cmd``): it imports only what running a playbook
needs, takes the same options as the Typer command, and leaves help and malformed arguments to
Typer. (How fast it starts is measured in bench/: ``python -m bench --only cold``.)"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import typer

from bench.playbooks import SEQ7
from noetl.cli import run_cmd
from noetl.cli.main import app

# None of these is needed to run a playbook of python steps and templates on SQLite.
NOT_NEEDED = ("typer", "click", "pydantic", "rich", "httpx", "fastapi", "starlette", "uvicorn",
              "psycopg", "psycopg_pool", "cryptography", "prometheus_client", "duckdb",
              "noetl.api", "noetl.client", "noetl.ui",
              # nor these, which it imported until session 7 (docs/benchmarks.md)
              "argparse", "decimal", "concurrent.futures", "noetl.dsl.cron",
              "noetl.store.trigger_rows")


def _cli(tmp_path: Path, *args: str, python_flags: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NOETL_HOME": str(tmp_path / "home")}
    for var in ("NOETL_STORE_URL", "NOETL_SERVER_URL"):
        env.pop(var, None)
    return subprocess.run([sys.executable, *python_flags, "-m", "noetl", *args],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)


def _imported(importtime_stderr: str) -> set[str]:
    return {m.group(1) for m in re.finditer(r"^import time:.*\|\s*(\S+)\s*$", importtime_stderr,
                                            re.MULTILINE)}


def test_noetl_run_imports_only_what_it_needs(tmp_path: Path) -> None:
    pb = tmp_path / "seq7.yaml"
    pb.write_text(SEQ7, encoding="utf-8")
    p = _cli(tmp_path, "run", str(pb), "--json", "--set", "user=bob",
             python_flags=("-X", "importtime"))
    assert p.returncode == 0, p.stderr[-3000:]
    out = json.loads(p.stdout)
    assert out["status"] == "COMPLETED"
    assert out["result"] == {"line": "bob: big"}
    mods = _imported(p.stderr)
    assert "noetl.cli.run_cmd" in mods and "jinja2" in mods  # the fast path ran, templates too
    loaded = sorted(m for m in mods if any(m == n or m.startswith(n + ".") for n in NOT_NEEDED))
    assert not loaded, f"noetl run imported {loaded}"


def _typer_run_options() -> dict[str, tuple[bool, bool, str | None]]:
    """Option string -> (is a flag, repeatable, envvar) of the Typer ``run`` command."""
    cmd = typer.main.get_command(app).commands["run"]
    out = {}
    for p in cmd.params:
        if getattr(p, "param_type_name", None) != "option":
            continue
        for opt in p.opts + p.secondary_opts:
            if opt != "--help":
                out[opt] = (bool(p.is_flag), bool(p.multiple), p.envvar)
    return out


def test_fast_parser_takes_the_typer_commands_options() -> None:
    typer_opts = _typer_run_options()
    fast = {opt: (read is None, opt in run_cmd.REPEATABLE)
            for opt, (_, read) in run_cmd.OPTIONS.items()}
    assert set(fast) == set(typer_opts)
    for opt, (flag, repeat, envvar) in typer_opts.items():
        assert fast[opt] == (flag, repeat), opt
        assert envvar in (None, run_cmd.STORE_ENV) and (envvar is not None) == (opt == "--store")
    defaults = {p.name: p.default for p in typer.main.get_command(app).commands["run"].params}
    assert defaults["concurrency"] == run_cmd.DEFAULT_CONCURRENCY


def test_help_and_malformed_arguments_go_to_typer(tmp_path: Path) -> None:
    pb = tmp_path / "seq7.yaml"
    pb.write_text(SEQ7, encoding="utf-8")
    helped = _cli(tmp_path, "run", "--help")
    assert helped.returncode == 0 and "--concurrency" in helped.stdout
    bad_set = _cli(tmp_path, "run", str(pb), "--set", "no-equals-sign")
    assert bad_set.returncode == 2
    assert "--set expects key=value" in bad_set.stderr
    unknown = _cli(tmp_path, "run", str(pb), "--no-such-option")
    assert unknown.returncode == 2 and "--no-such-option" in unknown.stderr
    assert not (tmp_path / "home" / "noetl.db").exists()  # nothing ran


def test_store_from_the_environment(tmp_path: Path) -> None:
    pb = tmp_path / "seq7.yaml"
    pb.write_text(SEQ7, encoding="utf-8")
    db = tmp_path / "elsewhere.db"
    env = {**os.environ, "NOETL_HOME": str(tmp_path / "home"),
           run_cmd.STORE_ENV: f"sqlite:///{db}"}
    p = subprocess.run([sys.executable, "-m", "noetl", "run", str(pb), "--json"], env=env,
                       capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert p.returncode == 0, p.stderr[-2000:]
    assert db.exists() and not (tmp_path / "home" / "noetl.db").exists()


def test_fast_parser_reads_the_plain_forms_and_leaves_the_rest_to_typer() -> None:
    opts = run_cmd.parse(["--set", "a=1", "pb.yaml", "--set=b=2", "-c", "7", "--timeout=2.5",
                          "-q", "--json", "--merge", "--store", "sqlite:///x.db",
                          "--payload", "{}", "--concurrency=3"])
    assert opts == {"file": Path("pb.yaml"), "sets": ["a=1", "b=2"], "payload": "{}",
                    "as_json": True, "store": "sqlite:///x.db", "concurrency": 3,
                    "merge": True, "timeout": 2.5, "quiet": True}
    assert run_cmd.parse(["pb.yaml"]) == {
        "file": Path("pb.yaml"), "sets": [], "payload": None, "as_json": False, "store": None,
        "concurrency": run_cmd.DEFAULT_CONCURRENCY, "merge": False, "timeout": None,
        "quiet": False}
    assert run_cmd.parse(["pb.yaml", "--timeout=-1"])["timeout"] == -1  # type: ignore[index]
    for argv in (["pb.yaml", "--help"], ["--help"], [], ["a.yaml", "b.yaml"],
                 ["pb.yaml", "--store"], ["pb.yaml", "--timeout", "-1"], ["pb.yaml", "-c4"],
                 ["pb.yaml", "-qc", "4"], ["pb.yaml", "-c=4"], ["pb.yaml", "--json=1"],
                 ["pb.yaml", "--", "x"], ["pb.yaml", "--conc", "2"], ["pb.yaml", "-c", "two"],
                 ["pb.yaml", "--timeout", "soon"], ["pb.yaml", "--set", "--json"]):
        assert run_cmd.parse(argv) is None, argv


ACCEPTED = [
    ["pb.yaml"],
    ["--set", "a=1", "pb.yaml", "--set=b.c=[2]", "-c", "7", "--timeout=2.5", "-q", "--json"],
    ["pb.yaml", "--merge", "--store", "sqlite:///x.db", "--payload", '{"k": 1}',
     "--concurrency=3", "--quiet", "--timeout", "1e3", "--store=sqlite:///y.db"],
    ["-c", " 5 ", "--payload=@args.json", "./dir/pb.yaml", "--set", "x="],
]


@pytest.mark.parametrize("argv", ACCEPTED, ids=[" ".join(a) for a in ACCEPTED])
def test_fast_parser_reads_what_typer_reads(argv: list[str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(run_cmd.STORE_ENV, raising=False)
    params = typer.main.get_command(app).commands["run"].make_context("run", list(argv)).params
    opts = run_cmd.parse(argv)
    assert opts is not None
    assert opts == {"file": params["file"], "sets": list(params["set_"]),
                    "payload": params["payload"], "as_json": params["as_json"],
                    "store": params["store"], "concurrency": params["concurrency"],
                    "merge": params["merge"], "timeout": params["timeout"],
                    "quiet": params["quiet"]}
