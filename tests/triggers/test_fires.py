"""Schedule fires on a real store, at chosen times: what each nominal time becomes (started,
skipped for overlap, missed, caught up, error), recorded once, with the execution knowing its
schedule and nominal time."""

from __future__ import annotations

import random
import string
from collections.abc import Iterator

import pytest

from noetl.engine.core import Engine
from noetl.ids import new_id
from noetl.store import open_store
from noetl.store.trigger_rows import ScheduleRow
from noetl.triggers.schedules import Fired, fire_next

ROUTER = """\
apiVersion: noetl.io/v1
kind: Playbook
metadata: {name: quick}
workflow:
  - step: start
    next: end
  - step: end
"""
# no worker runs here: its python step stays queued, so the execution stays RUNNING
STUCK = """\
apiVersion: noetl.io/v1
kind: Playbook
metadata: {name: stuck}
workflow:
  - step: start
    type: python
    code: |
      def main():
          return 1
"""


@pytest.fixture
def engine(sqlite_url: str) -> Iterator[Engine]:
    eng = Engine(open_store(sqlite_url))
    eng.register(ROUTER)
    eng.register(STUCK)
    yield eng
    eng.store.close()


def _schedule(eng: Engine, path: str, due: float, **kw: str) -> int:
    row = ScheduleRow(schedule_id=new_id(), path=path, version=None, source="api", cron=None,
                      interval=1.0, timezone="UTC", args={"x": 1}, enabled=True,
                      catchup=kw.get("catchup", "skip"), overlap=kw.get("overlap", "skip"),
                      next_run_at=due)
    with eng.store.transaction() as tx:
        tx.insert_schedule(row)
    return row.schedule_id


def _runs(eng: Engine, sid: int) -> list[tuple[float, str, str | None]]:
    with eng.store.read() as tx:
        return sorted((r["nominal_at"], r["outcome"], r["status"])
                      for r in tx.schedule_runs(sid, 1000))


def _fire_all(eng: Engine, t: float, grace: float = 5) -> list[Fired]:
    out = []
    while (f := fire_next(eng, t=t, grace=grace)) is not None:
        out.append(f)
    return out


def test_each_due_time_starts_one_execution_that_knows_its_trigger(engine: Engine) -> None:
    sid = _schedule(engine, "quick", 1000.0)
    assert fire_next(engine, t=999.0) is None  # not due yet
    # claimed at 1010.2 with a grace of 5 s: 1000..1005 are missed; 1006..1010 still run
    fired = _fire_all(engine, 1010.2)
    assert [(f.outcome, f.nominal_at) for f in fired] == [("missed", None)] + [
        ("started", float(n)) for n in range(1006, 1011)]
    assert fired[0].missed == 6
    assert _fire_all(engine, 1010.2) == []  # once per nominal time
    last = fired[-1]
    assert last.execution_id
    with engine.store.read() as tx:
        ex = tx.get_execution(last.execution_id)
        assert ex is not None and ex.status == "COMPLETED" and ex.workload == {"x": 1}
        started = tx.get_events(last.execution_id, 0, 10, "execution_started")[0]
        trigger = {"kind": "schedule", "schedule_id": str(sid), "nominal_at": 1010.0,
                   "outcome": "started"}
        assert started.context["trigger"] == trigger
        row = tx.get_schedule(sid)
        assert row is not None
        assert (row.next_run_at, row.last_status, row.last_execution_id) == \
            (1011.0, "started", last.execution_id)
    runs = _runs(engine, sid)
    assert runs[0] == (1000.0, "missed", None)
    assert runs[1:] == [(float(n), "started", "COMPLETED") for n in range(1006, 1011)]


def test_missed_fires_skip_or_catch_up_once(engine: Engine) -> None:
    skip = _schedule(engine, "quick", 100.0)
    one = _schedule(engine, "quick", 100.0, catchup="one")
    # everything was down from 100 to 130; grace 5: 100..124 are missed, 125..130 run
    out = _fire_all(engine, 130.0)
    got = {sid: [(f.outcome, f.nominal_at, f.missed) for f in out if f.schedule_id == sid]
           for sid in (skip, one)}
    on_time = [("started", float(n), 0) for n in range(125, 131)]
    assert got[skip] == [("missed", None, 25), *on_time]
    assert got[one] == [("caught_up", 124.0, 24), *on_time]
    with engine.store.read() as tx:
        skip_runs = tx.schedule_runs(skip, 100)
        one_runs = tx.schedule_runs(one, 100)
    assert [(r["nominal_at"], r["outcome"]) for r in skip_runs[-1:]] == [(100.0, "missed")]
    assert skip_runs[-1]["detail"]["count"] == 25 and skip_runs[-1]["detail"]["last"] == 124.0
    assert [(r["nominal_at"], r["outcome"]) for r in one_runs[-2:]] == [
        (124.0, "caught_up"), (100.0, "missed")]
    assert one_runs[-1]["detail"]["count"] == 24 and one_runs[-1]["detail"]["last"] == 123.0
    assert one_runs[-2]["execution_id"] and one_runs[-2]["status"] == "COMPLETED"


@pytest.mark.parametrize("overlap", ["skip", "allow", "cancel_previous"])
def test_overlap_with_a_run_still_going(engine: Engine, overlap: str) -> None:
    sid = _schedule(engine, "stuck", 500.0, overlap=overlap)
    outs = [fire_next(engine, t=500.0 + i + 0.1, grace=5) for i in range(3)]
    assert all(f is not None for f in outs)
    outcomes = [f.outcome for f in outs if f is not None]
    eids = [f.execution_id for f in outs if f is not None and f.execution_id]
    with engine.store.read() as tx:
        status = [str(tx.get_execution(e).status) for e in eids]  # type: ignore[union-attr]
    if overlap == "skip":
        assert outcomes == ["started", "skipped", "skipped"] and status == ["RUNNING"]
        detail = _runs(engine, sid)
        assert [d[1] for d in detail] == ["started", "skipped", "skipped"]
    elif overlap == "allow":
        assert outcomes == ["started"] * 3 and status == ["RUNNING"] * 3
    else:
        assert outcomes == ["started"] * 3
        assert status == ["CANCELLED", "CANCELLED", "RUNNING"]


def test_a_fire_that_cannot_start_is_recorded_and_the_schedule_goes_on(engine: Engine) -> None:
    sid = _schedule(engine, "no/such/playbook", 700.0)
    f = fire_next(engine, t=700.5, grace=5)
    assert f is not None and f.outcome == "error" and "not found" in (f.error or "")
    assert _runs(engine, sid) == [(700.0, "error", None)]
    with engine.store.read() as tx:
        row = tx.get_schedule(sid)
        assert row is not None and row.next_run_at == 701.0 and row.last_status == "error"
        assert tx.list_executions()[1] == 0


@pytest.mark.postgres
def test_a_fire_whose_start_fails_in_the_database_is_recorded_and_the_next_one_fires(
        fresh_pg_url: str) -> None:
    """The start's writes fail in PostgreSQL (a step name too long for an index), an error
    the database raises only once it answers them: recorded as that fire's error, and a
    schedule due after it still fires (the error escaped the fire and every tick raised it,
    so the broken schedule, oldest due, blocked every other)."""
    rnd = random.Random(1)  # (an incompressible name: the index stores it compressed)
    long = "s" + "".join(rnd.choice(string.ascii_letters + string.digits) for _ in range(6000))
    eng = Engine(open_store(fresh_pg_url))
    try:
        eng.register(ROUTER)
        eng.register(f"""\
apiVersion: noetl.io/v1
kind: Playbook
metadata: {{name: longstep}}
workflow:
  - step: start
    next: [{{step: {long}}}]
  - step: {long}
    type: python
    code: |
      def main():
          return 1
""")
        bad = _schedule(eng, "longstep", 800.0)
        good = _schedule(eng, "quick", 800.2)
        first = fire_next(eng, t=800.5, grace=5)
        assert first is not None and first.schedule_id == bad and first.outcome == "error"
        assert "index" in (first.error or "")
        second = fire_next(eng, t=800.5, grace=5)
        assert second is not None and second.schedule_id == good
        assert second.outcome == "started"
        assert _runs(eng, bad) == [(800.0, "error", None)]
    finally:
        eng.store.close()
