"""Result rows: repeated measurements of one metric, their median/p95 and the target."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field


def p95(values: list[float]) -> float:
    """Nearest-rank 95th percentile (with few runs this is the maximum)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


@dataclass
class Row:
    scenario: str
    store: str
    metric: str
    unit: str
    values: list[float] = field(default_factory=list)
    target: float | None = None  # None: no target (informational)
    higher_is_better: bool = False
    note: str = ""

    @property
    def median(self) -> float | None:
        return statistics.median(self.values) if self.values else None

    @property
    def p95(self) -> float | None:
        return p95(self.values) if self.values else None

    @property
    def met(self) -> str:
        if not self.values:
            return "n/a"
        if self.target is None:
            return "-"
        m = self.median
        assert m is not None
        ok = m >= self.target if self.higher_is_better else m <= self.target
        return "yes" if ok else "no"

    def target_text(self) -> str:
        if self.target is None:
            return "-"
        op = "≥" if self.higher_is_better else "≤"
        return f"{op} {fmt(self.target)} {self.unit}".rstrip()


def fmt(v: float | None) -> str:
    if v is None:
        return "-"
    if v == 0:
        return "0"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    if abs(v) >= 1:
        return f"{v:.2f}"
    return f"{v:.3f}"


def cells(row: Row) -> list[str]:
    """Table cells: scenario, store, metric, median, p95, n, target, met, note."""
    unit = f" {row.unit}" if row.unit else ""
    med = fmt(row.median) + unit if row.values else "-"
    hi = fmt(row.p95) + unit if row.values else "-"
    return [row.scenario, row.store, row.metric, med, hi, str(len(row.values)),
            row.target_text(), row.met, row.note]


HEADERS = ["scenario", "store", "metric", "median", "p95", "n", "target", "met", "note"]


def ratio_row(scenario: str, store: str, metric: str, num: Row, den: Row,
              target: float | None, note: str = "") -> Row:
    """A derived row: ratio of two medians (a single value, so median = p95)."""
    row = Row(scenario, store, metric, "", target=target, note=note)
    if num.median is not None and den.median:
        row.values = [num.median / den.median]
    return row
