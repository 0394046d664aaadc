"""Pure: when schedules fire (cron in a time zone across DST, intervals) and what a late claim
means (missed fires, catch-up)."""

from __future__ import annotations

import datetime as dt
import itertools
from zoneinfo import ZoneInfo

import pytest

from noetl.dsl.cron import SpecError, Timing, make_timing, parse_interval
from noetl.triggers.schedules import plan_fire

BERLIN = ZoneInfo("Europe/Berlin")
UTC = dt.UTC


def _utc(*a: int) -> float:
    return dt.datetime(*a, tzinfo=UTC).timestamp()


def _fires(timing: Timing, start: float, n: int) -> list[dt.datetime]:
    return [dt.datetime.fromtimestamp(t, UTC) for t in timing.upcoming(start, n)]


def test_daily_2am_berlin_across_spring_transition() -> None:
    # 2025-03-30: clocks go from 02:00 CET to 03:00 CEST; 02:00 does not exist that day
    t = make_timing("0 2 * * *", timezone="Europe/Berlin")
    got = _fires(t, _utc(2025, 3, 28, 12), 4)
    assert got == [dt.datetime(2025, 3, 29, 1, tzinfo=UTC),   # 02:00 CET = 01:00 UTC
                   dt.datetime(2025, 3, 30, 1, tzinfo=UTC),   # skipped hour: 03:00 CEST
                   dt.datetime(2025, 3, 31, 0, tzinfo=UTC),   # 02:00 CEST = 00:00 UTC
                   dt.datetime(2025, 4, 1, 0, tzinfo=UTC)]
    local = [g.astimezone(BERLIN) for g in got]
    assert [(x.day, x.hour) for x in local] == [(29, 2), (30, 3), (31, 2), (1, 2)]
    assert len({x.date() for x in local}) == 4  # once a day, never twice, never skipped


def test_daily_2am_berlin_across_autumn_transition() -> None:
    # 2025-10-26: 03:00 CEST becomes 02:00 CET; 02:00-03:00 happens twice; fires once
    t = make_timing("0 2 * * *", timezone="Europe/Berlin")
    got = _fires(t, _utc(2025, 10, 24, 12), 4)
    assert got == [dt.datetime(2025, 10, 25, 0, tzinfo=UTC),  # 02:00 CEST
                   dt.datetime(2025, 10, 26, 0, tzinfo=UTC),  # first 02:00 (CEST), once
                   dt.datetime(2025, 10, 27, 1, tzinfo=UTC),  # 02:00 CET = 01:00 UTC
                   dt.datetime(2025, 10, 28, 1, tzinfo=UTC)]
    gaps = {(b - a).total_seconds() / 3600 for a, b in itertools.pairwise(got)}
    assert gaps == {24.0, 25.0}  # the 25-hour day, never a 1-hour repeat


def test_hourly_wildcard_runs_in_both_copies_of_the_repeated_hour() -> None:
    t = make_timing("30 * * * *", timezone="Europe/Berlin")
    got = _fires(t, _utc(2025, 10, 25, 23), 3)
    assert got == [dt.datetime(2025, 10, 25, 23, 30, tzinfo=UTC),
                   dt.datetime(2025, 10, 26, 0, 30, tzinfo=UTC),
                   dt.datetime(2025, 10, 26, 1, 30, tzinfo=UTC)]  # 02:30 CEST, then 02:30 CET


def test_utc_default_aliases_and_next_is_strictly_after() -> None:
    t = make_timing("@daily")
    assert t.timezone == "UTC" and t.cron == "@daily"
    assert t.next_after(_utc(2025, 1, 1)) == _utc(2025, 1, 2)
    assert make_timing("*/15 9-17 * * MON-FRI").next_after(_utc(2025, 3, 28, 9, 15)) \
        == _utc(2025, 3, 28, 9, 30)


def test_intervals_align_to_the_epoch() -> None:
    assert parse_interval("1h30m") == 5400 and parse_interval(90) == 90
    assert parse_interval("2d") == 172800 and parse_interval("1s") == 1
    t = make_timing(interval="15m")
    assert t.next_after(_utc(2025, 1, 1, 10, 7, 3)) == _utc(2025, 1, 1, 10, 15)
    assert t.next_after(_utc(2025, 1, 1, 10, 15)) == _utc(2025, 1, 1, 10, 30)
    one = make_timing(interval=1)
    assert one.upcoming(1000.25, 3) == [1001.0, 1002.0, 1003.0]


@pytest.mark.parametrize(("cron", "interval", "tz", "msg"), [
    (None, None, None, "exactly one of"),
    ("0 2 * *", None, None, "five fields"),
    ("61 * * * *", None, None, "cron '61 * * * *'"),
    ("0 0 30 2 *", None, None, "cron"),
    (None, "5 minutes", None, "duration"),
    (None, 0.5, None, "between 1 s"),
    (None, "400d", None, "366 days"),
    ("0 2 * * *", None, "Europe/Berln", "did you mean 'Europe/Berlin'"),
])
def test_bad_specs_say_why(cron: object, interval: object, tz: object, msg: str) -> None:
    with pytest.raises(SpecError, match=msg.replace("*", r"\*")):
        make_timing(cron, interval, tz)


def test_plan_fire_on_time_late_and_missed() -> None:
    every = make_timing(interval=1)
    on_time = plan_fire(every, 100.0, 100.3, grace=5, catchup="skip")
    assert (on_time.run_at, on_time.missed, on_time.next_run_at) == (100.0, 0, 101.0)
    late = plan_fire(every, 100.0, 104.9, grace=5, catchup="skip")  # within grace: still runs
    assert (late.run_at, late.missed, late.next_run_at) == (100.0, 0, 101.0)
    # down from 100 to 130 with a grace of 5: 100..124 are missed, 125 is due now
    skip = plan_fire(every, 100.0, 130.0, grace=5, catchup="skip")
    assert (skip.run_at, skip.missed, skip.missed_first, skip.missed_last) == \
        (None, 25, 100.0, 124.0)
    assert skip.next_run_at == 125.0
    one = plan_fire(every, 100.0, 130.0, grace=5, catchup="one")
    assert (one.run_at, one.outcome, one.missed, one.missed_first, one.missed_last) == \
        (124.0, "caught_up", 24, 100.0, 123.0)
    assert one.next_run_at == 125.0
    single = plan_fire(every, 100.0, 106.0, grace=5, catchup="one")  # one missed: it runs
    assert (single.run_at, single.missed, single.missed_first) == (100.0, 0, None)


def test_plan_fire_counts_missed_cron_fires() -> None:
    hourly = make_timing("0 * * * *")
    start = _utc(2025, 1, 1, 0)
    p = plan_fire(hourly, start, _utc(2025, 1, 1, 10, 30), grace=60, catchup="skip")
    assert (p.missed, p.missed_last) == (11, _utc(2025, 1, 1, 10))
    assert p.next_run_at == _utc(2025, 1, 1, 11)
