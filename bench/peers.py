"""``make bench-peers`` (``python -m bench.peers [--quick] [--rounds N] [--write FILE]``):
NoETL distributed side by side with Celery on this machine.

NoETL: ``noetl server start`` + one ``noetl worker start`` (HTTP), both at their defaults, on a
scratch PostgreSQL database. Celery (bench/.peers-venv, see bench/peers-requirements.txt): one
``celery worker`` subprocess at its defaults (prefork, one process per core), Redis as broker and
result backend. The same three workloads on both, in interleaved rounds (the side that goes
first alternates), each result checked:

- ``seq40``: 40 sequential tiny steps (a playbook of python steps / a chain of 40 tasks);
  ms per step, from the request until the last step's result is recorded.
- ``map1000``: a map over 1,000 items then a reduce (an async iterator of python tasks and a
  python step summing them, after a step making the list / a chord of 1,000 tasks with a
  summing callback, the list made by the client); seconds from the request to the sum.
- ``throughput``: 200 runs of 5 sequential steps started together from 8 client threads
  (executions / chains); steps per second from the first request to the last result.

NoETL's end times are its ``execution_completed`` events; Celery's are when the client holds
the results (``get``/``join`` on the Redis backend). Figures are medians over the rounds; the
ratio rows say how many times faster NoETL is (above 1: NoETL ahead)."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

from bench import playbooks
from bench.cluster import Cluster, comm_cpu, commands_problem, database_cpu, tree_cpu
from bench.distributed import _stamp, _wait_terminal
from bench.stats import Row, ratio_row
from noetl.store import Store, open_store

REPO = Path(__file__).resolve().parent.parent
PEERS_PY = REPO / "bench" / ".peers-venv" / "bin" / "python"
CELERY = PEERS_PY.parent / "celery"
REDIS_URL = os.environ.get("NOETL_BENCH_REDIS_URL", "redis://127.0.0.1:6379/12")
OURS = "NoETL server + 1 worker (HTTP, defaults)"
PEER = "Celery 5.7 + Redis (1 worker, defaults)"
SEQ, ITEMS, RUNS, RUN_STEPS, STARTERS = 40, 1000, 200, 5, 8
THROUGHPUT_RATIO = 2.5  # issue 16: at least 2.5 × Celery's steps/s


def log(msg: str) -> None:
    sys.stderr.write(msg + "\n")
    sys.stderr.flush()


def map_reduce(name: str = "map1000") -> str:
    """``make`` → ``each`` (async iterator, tiny python task per item) → ``reduce`` (sum)."""
    text = playbooks.loop(name)
    tail = "    next: [{step: end}]\n  - step: end"
    assert text.count(tail) == 1
    return text.replace(tail, """    next: [{step: reduce}]
  - step: reduce
    type: python
    args: {values: "{{ each }}"}
    code: |
      def main(values):
          return {"sum": sum(values), "count": len(values)}
    next: [{step: end}]
  - step: end""")


class Ours:
    """Server and worker at their defaults (no --processes, no --concurrency)."""

    def __init__(self, store_url: str, tmp: Path):
        self.cluster = Cluster(store_url, tmp)
        self.store: Store | None = None
        self.paths: dict[str, str] = {}

    def __enter__(self) -> Ours:
        self.cluster.start_server(processes=None)
        self.cluster.start_worker(None)
        self.store = open_store(self.cluster.store_url)
        self.paths = {"seq": self.cluster.register(playbooks.sequential(SEQ, "peers_seq")),
                      "map": self.cluster.register(map_reduce()),
                      "tp": self.cluster.register(playbooks.sequential(RUN_STEPS, "peers_tp"))}
        return self

    def __exit__(self, *exc: object) -> None:
        self.cluster.close()
        if self.store is not None:
            self.store.close()

    def _done(self, eid: int) -> float:
        assert self.store is not None
        end = _stamp(self.store, eid, "execution_completed")
        assert end is not None
        return end

    def seq(self) -> float:
        assert self.store is not None
        requested = time.time()
        eid = self.cluster.start(self.paths["seq"])
        _wait_terminal(self.store, [eid], 120)
        return (self._done(eid) - requested) / SEQ * 1000

    def map(self, items: int = ITEMS) -> float:
        assert self.store is not None
        requested = time.time()
        eid = self.cluster.start(self.paths["map"], {"n": items})
        _wait_terminal(self.store, [eid], 600)
        took = self._done(eid) - requested
        desc = self.cluster.http.get(f"/api/executions/{eid}").json()
        got = desc["steps"]["reduce"]["result"]
        assert got == {"sum": items * (items + 1) // 2, "count": items}, got
        return took

    def throughput(self, runs: int = RUNS) -> float:
        assert self.store is not None
        requested = time.time()
        with ThreadPoolExecutor(STARTERS) as pool:
            eids = list(pool.map(lambda _: self.cluster.start(self.paths["tp"]), range(runs)))
        _wait_terminal(self.store, eids, 600)
        return runs * RUN_STEPS / (max(self._done(e) for e in eids) - requested)

    def cpu(self) -> float:
        """CPU seconds so far: server, worker (its supervisor and the worker process it runs,
        by default), PostgreSQL backends of the scratch database."""
        server = self.cluster.server
        return (tree_cpu(server.pid) if server else 0.0) + \
            sum(tree_cpu(w.pid) for w in self.cluster.workers) + \
            database_cpu(urlsplit(self.cluster.store_url).path.lstrip("/"))


class Peer:
    """A Celery worker subprocess and the Celery client (bench/celery_peer.py), both in the
    peers' virtual environment; the client answers one JSON line per request."""

    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.env = {**os.environ, "PYTHONPATH": str(REPO), "NOETL_BENCH_REDIS_URL": REDIS_URL}
        self.worker: subprocess.Popen[bytes] | None = None
        self.client: subprocess.Popen[str] | None = None
        self._log: IO[bytes] | None = None
        self.versions = "?"

    def __enter__(self) -> Peer:
        self._log = open(self.tmp / "celery-worker.log", "wb")  # closed in __exit__
        # its own session: the worker's pool processes are stopped with it (__exit__)
        self.worker = subprocess.Popen([str(CELERY), "-A", "bench.celery_app", "worker"],
                                       cwd=REPO, env=self.env, stdout=self._log,
                                       stderr=subprocess.STDOUT, start_new_session=True)
        self.client = subprocess.Popen([str(PEERS_PY), "-m", "bench.celery_peer"], cwd=REPO,
                                       env=self.env, stdin=subprocess.PIPE,
                                       stdout=subprocess.PIPE, text=True)
        workers = self.ask({"workload": "ping"})["workers"]
        if workers != 1:  # another worker on this broker would take some of the tasks
            raise RuntimeError(f"{workers} Celery workers answer on {REDIS_URL}, not 1 (ours)")
        self.versions = str(self.ask({"workload": "versions"})["versions"])
        return self

    def __exit__(self, *exc: object) -> None:
        if self.client is not None:
            assert self.client.stdin is not None
            self.client.stdin.close()
            try:
                self.client.wait(30)
            except subprocess.TimeoutExpired:
                self.client.kill()
                self.client.wait(5)
        if self.worker is not None and self.worker.poll() is None:
            os.killpg(self.worker.pid, signal.SIGTERM)  # the group this harness started
            try:
                self.worker.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.worker.pid, signal.SIGKILL)
                self.worker.wait(5)
        if self._log is not None:
            self._log.close()

    def ask(self, request: dict[str, Any]) -> dict[str, Any]:
        assert self.client is not None and self.client.stdin and self.client.stdout
        self.client.stdin.write(json.dumps(request) + "\n")
        self.client.stdin.flush()
        line = self.client.stdout.readline()
        if not line:
            tail = (self.tmp / "celery-worker.log").read_text(errors="replace")[-1500:]
            raise RuntimeError(f"the Celery client exited; worker log: {tail}")
        answer: dict[str, Any] = json.loads(line)
        if "error" in answer:
            raise RuntimeError(f"Celery {request['workload']}: {answer['error']}")
        return answer

    def seq(self) -> float:
        return float(self.ask({"workload": "seq", "steps": SEQ})["seconds"]) / SEQ * 1000

    def map(self, items: int = ITEMS) -> float:
        return float(self.ask({"workload": "map", "items": items})["seconds"])

    def throughput(self, runs: int = RUNS) -> float:
        return float(self.ask({"workload": "throughput", "runs": runs, "steps": RUN_STEPS,
                               "starters": STARTERS})["steps_per_s"])

    def cpu(self) -> float:
        assert self.worker is not None
        return tree_cpu(self.worker.pid) + comm_cpu("redis-server")


def problem() -> str | None:
    """Why the comparison cannot run here, or None."""
    if not PEERS_PY.exists() or not CELERY.exists():
        return f"no Celery environment at {PEERS_PY.parent.parent} (run `make bench-peers`)"
    where = urlsplit(REDIS_URL)
    try:
        socket.create_connection((where.hostname or "127.0.0.1", where.port or 6379), 3).close()
    except OSError as exc:
        return f"Redis unreachable at {REDIS_URL}: {exc}"
    return commands_problem()


def compare(rounds: int, seq_runs: int, info: dict[str, str], log_: Any = log) -> list[Row]:
    """The rows of the comparison; ``info`` gets the peers' versions."""
    from bench.stores import scratch_postgres

    rows = {(w, side): Row(w, side, metric, unit, higher_is_better=(w == "throughput"))
            for w, metric, unit in (("seq40", "per step, request → last step recorded", "ms"),
                                    ("map1000", "1,000-item map + reduce, request → sum", "s"),
                                    ("throughput", f"{RUNS} runs × {RUN_STEPS} steps", "steps/s"))
            for side in (OURS, PEER)}
    cpu = {OURS: 0.0, PEER: 0.0}
    with tempfile.TemporaryDirectory(prefix="noetl-peers-") as tmp_name, \
            scratch_postgres() as url:
        tmp = Path(tmp_name)
        (tmp / "ours").mkdir()
        with Ours(url, tmp / "ours") as ours, Peer(tmp) as peer:
            sides = {OURS: ours, PEER: peer}
            info["peers"] = peer.versions
            log_("warm-up")
            for s in sides.values():
                s.seq()
                s.map(100)
                s.throughput(20)
            for rnd in range(rounds):
                order = [OURS, PEER] if rnd % 2 == 0 else [PEER, OURS]
                for side in order:
                    s = sides[side]
                    for _ in range(seq_runs):
                        rows["seq40", side].values.append(s.seq())
                    rows["map1000", side].values.append(s.map())
                    before = s.cpu()
                    rows["throughput", side].values.append(s.throughput())
                    cpu[side] += s.cpu() - before
                log_(f"round {rnd + 1}/{rounds}: " + "; ".join(
                    f"{w} {rows[w, OURS].values[-1]:.3g} vs {rows[w, PEER].values[-1]:.3g}"
                    for w in ("seq40", "map1000", "throughput")))
    steps = rounds * RUNS * RUN_STEPS
    rows["throughput", OURS].note = (f"CPU {cpu[OURS] / steps * 1000:.2f} ms/step "
                                     "(server + worker + the database's PostgreSQL backends)")
    rows["throughput", PEER].note = (f"CPU {cpu[PEER] / steps * 1000:.2f} ms/step "
                                     "(worker processes + Redis)")
    out: list[Row] = []
    for w, target in (("seq40", None), ("map1000", None), ("throughput", THROUGHPUT_RATIO)):
        ours_row, peer_row = rows[w, OURS], rows[w, PEER]
        # times: Celery ÷ NoETL; rates: NoETL ÷ Celery (either way, above 1 = NoETL ahead)
        num, den = (ours_row, peer_row) if w == "throughput" else (peer_row, ours_row)
        ratio = ratio_row(w, "ratio", "NoETL ahead by (× Celery)", num, den, target)
        ratio.higher_is_better = True
        out += [ours_row, peer_row, ratio]
    return out


def section(rows: list[Row], info: dict[str, str], command: str, rounds: int,
            took: float) -> str:
    from bench.report import machine_markdown, markdown_table

    load = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    return "\n".join([
        "## Peers: NoETL distributed and Celery (`make bench-peers`)", "",
        (__doc__ or "").split("\n\n", 1)[1].strip(), "",
        f"Command: `{command}` ({rounds} rounds, {took:.0f} s; load average at the end "
        f"{load}).", "", machine_markdown(info), markdown_table(rows)])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.peers", description=__doc__)
    ap.add_argument("--quick", action="store_true", help="2 rounds")
    ap.add_argument("--rounds", type=int, help="interleaved rounds (default 5, --quick 2)")
    ap.add_argument("--write", metavar="FILE", help="put the section into FILE "
                                                    "(docs/benchmarks.md)")
    args = ap.parse_args(argv)
    why = problem()
    if why:
        log(f"peers: {why}")
        return 2
    from bench.stores import postgres_problem

    why = postgres_problem()
    if why:
        log(f"peers: {why}")
        return 2
    from bench.report import machine, print_table

    info = machine()
    rounds = args.rounds or (2 if args.quick else 5)
    command = "python -m bench.peers " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    started = time.monotonic()
    rows = compare(rounds, 3, info)
    took = time.monotonic() - started
    print_table(rows)
    if args.write:
        from bench.doc import write_peers

        write_peers(Path(args.write), section(rows, info, command, rounds, took))
        log(f"wrote the peers section of {args.write}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
