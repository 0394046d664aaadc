"""Database values → JSON values (rows returned by postgres and duckdb steps).

Decimal → int when integral, else float; date/datetime/time → ISO 8601 text; timedelta
(intervals) → seconds as a float; UUID, IP addresses and other objects → text; bytes → base64
text; dicts, lists and tuples recursively.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import math
from typing import Any


def json_safe(v: Any) -> Any:
    if v is None or isinstance(v, (bool, int, str)):
        return v
    if isinstance(v, float):
        return v if math.isfinite(v) else str(v)
    if isinstance(v, decimal.Decimal):
        if not v.is_finite():
            return str(v)
        return int(v) if v == v.to_integral_value() else float(v)
    if isinstance(v, (dt.datetime, dt.date, dt.time)):
        return v.isoformat()
    if isinstance(v, dt.timedelta):
        return v.total_seconds()
    if isinstance(v, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(v)).decode()
    if isinstance(v, dict):
        return {str(k): json_safe(x) for k, x in v.items()}
    if isinstance(v, (list, tuple, set)):
        return [json_safe(x) for x in v]
    return str(v)


def rows_result(columns: list[str], rows: list[tuple[Any, ...]]) -> dict[str, Any]:
    """The ``command_<n>`` shape for a statement that returned rows."""
    return {"status": "success", "columns": columns,
            "rows": [{c: json_safe(x) for c, x in zip(columns, r, strict=False)} for r in rows],
            "row_count": len(rows)}
