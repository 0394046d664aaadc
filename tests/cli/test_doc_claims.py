"""What docs/cli.md says a few commands print, checked on the real commands (subprocesses):
``credential list`` shows tags, ``execute --server --no-wait`` prints the id alone on stdout,
``execute -q`` hides the steps' output as ``run -q`` does."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.api.conftest import Running


def _cli(tmp_path: Path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("NOETL_")}
    env["NOETL_HOME"] = str(tmp_path / "home")
    env["COLUMNS"] = "200"  # rich tables at full width

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "noetl", *args], capture_output=True,
                              text=True, env=env, cwd=tmp_path, timeout=60)

    return run


PRINTS = textwrap.dedent("""\
    apiVersion: noetl.io/v1
    kind: Playbook
    metadata: {name: prints, path: tests/cli/prints}
    workflow:
      - step: start
        type: python
        code: |
          def main():
              print("step-output-marker")
              return 1
    """)


def test_credential_list_shows_tags(tmp_path: Path) -> None:
    cli = _cli(tmp_path)
    p = cli("credential", "add", "weather", "-t", "bearer", "-d", '{"token": "t"}',
            "--tag", "weather", "--tag", "prod", "--description", "the api")
    assert p.returncode == 0, p.stderr
    p = cli("credential", "list")
    assert p.returncode == 0, p.stderr
    header = next(line for line in p.stdout.splitlines() if "name" in line and "type" in line)
    assert "tags" in header
    row = next(line for line in p.stdout.splitlines() if "weather" in line and "bearer" in line)
    assert "weather, prod" in row and "the api" in row


def test_execute_no_wait_prints_the_id_alone(tmp_path: Path, api: Running) -> None:
    cli = _cli(tmp_path)
    (tmp_path / "p.yaml").write_text(PRINTS, encoding="utf-8")
    assert cli("catalog", "register", str(tmp_path / "p.yaml"), "--server", api.url).returncode == 0
    p = cli("execute", "tests/cli/prints", "--server", api.url, "--no-wait")
    assert p.returncode == 0, p.stderr
    eid = p.stdout.strip()
    assert eid.isdigit() and p.stdout == eid + "\n"  # usable as ID=$(noetl execute ...)
    assert f"started execution {eid}" in p.stderr
    got = json.loads(cli("status", eid, "--server", api.url, "--json").stdout)
    assert got["execution_id"] == eid  # the server knows it by that id


def test_execute_quiet_hides_the_steps_output(tmp_path: Path) -> None:
    cli = _cli(tmp_path)
    (tmp_path / "p.yaml").write_text(PRINTS, encoding="utf-8")
    assert cli("catalog", "register", str(tmp_path / "p.yaml")).returncode == 0
    loud = cli("execute", "tests/cli/prints")
    assert loud.returncode == 0, loud.stderr
    assert "step-output-marker" in loud.stdout + loud.stderr
    quiet = cli("execute", "tests/cli/prints", "-q")
    assert quiet.returncode == 0, quiet.stderr
    assert "step-output-marker" not in quiet.stdout + quiet.stderr
