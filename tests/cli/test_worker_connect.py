"""``noetl worker start`` against a server that does not answer, as a real subprocess: it
tries again with growing delays (0.5 s, 1 s, 2 s, ... up to 5 s), gives up after
``--connect-timeout`` (``NOETL_WORKER_CONNECT_TIMEOUT``) with exit 1 and a message saying so,
supervised or not, and never leases."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("how", ["option", "env", "no-supervise"])
def test_worker_gives_up_on_an_unreachable_server(tmp_path: Path, how: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NOETL_")}
    env["NOETL_HOME"] = str(tmp_path / "home")
    url = f"http://127.0.0.1:{_closed_port()}"
    args = [sys.executable, "-m", "noetl", "worker", "start", "--server", url]
    if how == "env":
        env["NOETL_WORKER_CONNECT_TIMEOUT"] = "3.5"
    else:
        args += ["--connect-timeout", "3.5"]
    if how == "no-supervise":
        args.append("--no-supervise")
    t0 = time.monotonic()
    p = subprocess.run(args, capture_output=True, text=True, env=env, timeout=60)
    took = time.monotonic() - t0
    assert p.returncode == 1, p.stderr
    assert took >= 3.5  # it waited its patience; the timeout above bounds how long
    assert "Traceback" not in p.stderr
    assert re.search(rf"error: cannot reach the NoETL server at {re.escape(url)}: .*; gave up "
                     r"after \d+ tries in 3\.5 s", p.stderr), p.stderr
    # backing off (0.5 s doubling), not once a second; a wait never outlasts the patience
    # left (under load the third try may come when less than 2 s is left: it waits that)
    waits = [(float(d), float(g)) for d, g in re.findall(
        r"trying again in ([\d.]+) s \(giving up in ([\d.]+) s\)", p.stderr)]
    assert len(waits) >= 3, p.stderr
    for i, (wait, left) in enumerate(waits[:3]):
        assert abs(wait - min(0.5 * 2 ** i, left)) < 0.051, p.stderr
    assert waits[1][0] == 1.0, p.stderr  # (the second comes 0.5 s in: 3 s are left)
    assert "leasing from" not in p.stderr
