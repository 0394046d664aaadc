"""Settings read from ``NOETL_*`` environment variables."""

from __future__ import annotations

import os

DEFAULT_LEASE_SECONDS = float(os.environ.get("NOETL_LEASE_SECONDS", "5"))
MAX_LEASE_EXPIRIES = int(os.environ.get("NOETL_MAX_LEASE_EXPIRIES", "3"))
