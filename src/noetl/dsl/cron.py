"""When a schedule fires: a cron expression in an IANA time zone, or a fixed interval.

Cron expressions (five fields, or ``@hourly``/``@daily``/``@weekly``/``@monthly``/``@yearly``)
are evaluated by ``cronsim`` on aware datetimes of :mod:`zoneinfo`, so daylight-saving changes
follow cron's rules: a time skipped by the spring change fires at the first valid minute after
it (``0 2 * * *`` in Europe/Berlin fires at 03:00 that day), a wall time that happens twice in
autumn fires once, at its first occurrence (a job whose hour field is ``*`` runs in both).

An interval fires at every multiple of it counted from 1970-01-01 00:00 UTC (``interval: 1h``
fires on the hour, ``15m`` at :00, :15, :30, :45), so every server computes the same times.
Times are epoch seconds.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

ALIASES = {"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
           "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *",
           "@hourly": "0 * * * *"}
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
MIN_INTERVAL = 1.0
MAX_INTERVAL = 366 * 86400.0
_DURATION = re.compile(r"^\s*(?:(\d+(?:\.\d+)?)\s*([smhdw]))+\s*$")
_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])")


class SpecError(ValueError):
    """A cron expression, interval or time zone that cannot be used (the message says why)."""


def parse_interval(value: object) -> float:
    """Seconds from a number (seconds) or a duration such as ``30s``, ``5m``, ``1h30m``, ``1d``."""
    if isinstance(value, bool):
        raise SpecError(f"interval must be seconds or a duration like '5m', got {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and _DURATION.match(value.lower()):
        seconds = sum(float(n) * UNITS[u] for n, u in _PART.findall(value.lower()))
    elif isinstance(value, str) and value.strip().replace(".", "", 1).isdigit():
        seconds = float(value)
    else:
        raise SpecError(f"interval must be seconds or a duration like '30s', '5m', '1h', "
                        f"'1d', got {value!r}")
    if not math.isfinite(seconds) or not MIN_INTERVAL <= seconds <= MAX_INTERVAL:
        raise SpecError(f"interval must be between {MIN_INTERVAL:g} s and 366 days, got "
                        f"{value!r}")
    return seconds


@lru_cache(maxsize=256)
def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        import difflib
        from zoneinfo import available_timezones

        near = difflib.get_close_matches(str(name), sorted(available_timezones()), n=1)
        hint = f"; did you mean '{near[0]}'?" if near else ""
        raise SpecError(f"unknown time zone {name!r} (an IANA name such as 'UTC' or "
                        f"'Europe/Berlin'{hint})") from None


def _cron_expr(expr: str) -> str:
    text = " ".join(expr.split())
    return ALIASES.get(text.lower(), text)


@dataclass(frozen=True)
class Timing:
    """A cron expression (in ``timezone``) or an interval in seconds."""

    cron: str | None = None
    interval: float | None = None
    timezone: str = "UTC"

    def next_after(self, t: float) -> float:
        """The first fire time strictly after ``t``."""
        if self.interval is not None:
            return (math.floor(t / self.interval) + 1) * self.interval
        from cronsim import CronSim, CronSimError

        start = dt.datetime.fromtimestamp(t, zone(self.timezone))
        try:
            return next(CronSim(_cron_expr(self.cron or ""), start)).timestamp()
        except (CronSimError, StopIteration) as exc:
            raise SpecError(f"cron {self.cron!r}: {exc or 'never fires'}") from None

    def upcoming(self, t: float, n: int) -> list[float]:
        out: list[float] = []
        for _ in range(n):
            t = self.next_after(t)
            out.append(t)
        return out

    def describe(self) -> str:
        if self.interval is not None:
            return f"every {format_interval(self.interval)}"
        return f"cron '{self.cron}' ({self.timezone})"


def format_interval(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def make_timing(cron: object = None, interval: object = None, timezone: object = None) -> Timing:
    """A checked :class:`Timing` (exactly one of ``cron`` / ``interval``); raises SpecError."""
    if (cron is None) == (interval is None):
        raise SpecError("needs exactly one of 'cron' or 'interval'")
    tz = "UTC" if timezone is None else timezone
    if not isinstance(tz, str) or not tz.strip():
        raise SpecError(f"timezone must be an IANA name such as 'Europe/Berlin', got {tz!r}")
    zone(tz)
    if interval is not None:
        return Timing(interval=parse_interval(interval), timezone=tz)
    if not isinstance(cron, str) or not cron.strip():
        raise SpecError(f"cron must be a string such as '0 2 * * *', got {cron!r}")
    timing = Timing(cron=" ".join(cron.split()), timezone=tz)
    if len(_cron_expr(timing.cron or "").split()) != 5:
        raise SpecError(f"cron {cron!r}: needs five fields (minute hour day-of-month month "
                        "day-of-week) or one of " + ", ".join(sorted(ALIASES)))
    timing.next_after(dt.datetime(2000, 1, 1, tzinfo=dt.UTC).timestamp())  # parses it
    return timing
